"""WDRN, the project's weighted dense residual network.

Design
------
WDRN keeps the EDSR/RDN outline (no BatchNorm, a shallow conv, a deep body with a global skip, a
sub-pixel tail) and changes how feature maps are combined. Where a dense block would concatenate
earlier maps as they are, and a residual network would add them element-wise, WDRN concatenates
them after scaling each by its own learnable weight (`WeightedConcat`). The weights start at 1
(plain concatenation); training can turn a map down or up, so the network learns how much each
earlier stage should contribute without that choice being folded into one big fused kernel.

- `WeightedDenseBlock`: `num_layers` 3x3 convs with `growth_channels` outputs each; conv k sees the
  weighted concatenation of the block input and the outputs of convs 1..k-1. A 1x1 conv fuses the
  weighted concatenation of all of them back to `num_features`, and the result, scaled by
  `res_scale` (0.2, the stabiliser ESRGAN found for deep BN-free nets), is added to the block input.
- Global fusion: the outputs of all blocks are combined by another weighted concatenation, a 1x1
  conv and a 3x3 conv, then added to the shallow features (global skip).
- Tail: ICNR-initialised conv + PixelShuffle stages (x2, x3, x4, x8), then a 3x3 conv to RGB.
- Untrained, the network is nearest-neighbour upsampling (`srgan.archs.passthrough`).

`wdrn_x4` (64 features, 8 blocks of 4 layers, growth 32) has about 1.5 M parameters, the size of
SRResNet and EDSR-baseline, so it can be compared with them at equal budget.
"""

from __future__ import annotations

import torch
from torch import nn

from srgan.archs.passthrough import pass_channels_, read_channels_, zero_rows_
from srgan.archs.spec import NetworkSpec, numbered, spec_from_shapes
from srgan.archs.srresnet import SubpixelUpsampler

FP16_SAFE = False  # not yet validated in half precision
BASICSR_CLASS = None  # srgan's own network: no BasicSR layout exists, `.pth` files keep srgan's names


class WeightedConcat(nn.Module):
    """Concatenate `num_inputs` feature maps along channels, each multiplied by a learnable scalar."""

    def __init__(self, num_inputs: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_inputs))

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([self.weight[i] * feature_map for i, feature_map in enumerate(maps)], dim=1)


class WeightedDenseBlock(nn.Module):
    """Densely connected convs joined by weighted concatenation, a 1x1 fusion and a scaled residual."""

    def __init__(self, num_features: int, growth_channels: int, num_layers: int, res_scale: float):
        super().__init__()
        self.concats = nn.ModuleList(WeightedConcat(k + 1) for k in range(num_layers))
        self.convs = nn.ModuleList(
            nn.Conv2d(num_features + k * growth_channels, growth_channels, 3, padding=1) for k in range(num_layers)
        )
        self.act = nn.LeakyReLU(0.2, inplace=True)
        self.fusion_concat = WeightedConcat(num_layers + 1)
        self.fusion = nn.Conv2d(num_features + num_layers * growth_channels, num_features, 1)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = [x]
        for concat, conv in zip(self.concats, self.convs):
            maps.append(self.act(conv(concat(maps))))
        return x + self.res_scale * self.fusion(self.fusion_concat(maps))


class WDRN(nn.Module):
    """(N, in_channels, H, W) -> (N, out_channels, H*scale, W*scale), not clamped."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_features: int = 64,
        num_blocks: int = 8,
        num_layers: int = 4,
        growth_channels: int = 32,
        res_scale: float = 0.2,
        scale: int = 4,
    ):
        super().__init__()
        self.scale = scale
        self.conv_first = nn.Conv2d(in_channels, num_features, 3, padding=1)
        self.blocks = nn.ModuleList(
            WeightedDenseBlock(num_features, growth_channels, num_layers, res_scale) for _ in range(num_blocks)
        )
        self.global_concat = WeightedConcat(num_blocks)
        self.global_fusion = nn.Sequential(
            nn.Conv2d(num_blocks * num_features, num_features, 1),
            nn.Conv2d(num_features, num_features, 3, padding=1),
        )
        self.upsample = SubpixelUpsampler(num_features, scale, "wdrn")
        self.conv_last = nn.Conv2d(num_features, out_channels, 3, padding=1)
        self._start_as_upsampler(min(in_channels, out_channels, num_features))

    def _start_as_upsampler(self, channels: int) -> None:
        # see srgan.archs.passthrough: the shallow maps carrying the image pass the global skip and the tail
        pass_channels_(self.conv_first, channels)
        zero_rows_(self.global_fusion[1], channels)
        for module in self.upsample:
            if isinstance(module, nn.Conv2d):
                pass_channels_(module, channels, repeat=module.out_channels // module.in_channels)
        read_channels_(self.conv_last, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shallow = self.conv_first(x)
        block_outputs = []
        features = shallow
        for block in self.blocks:
            features = block(features)
            block_outputs.append(features)
        deep = shallow + self.global_fusion(self.global_concat(block_outputs))
        return self.conv_last(self.upsample(deep))


def describe(state_dict: dict[str, torch.Tensor]) -> NetworkSpec | None:
    """The WDRN an srgan-named state dict belongs to, or None. `res_scale` is not in the weights
    (its default 0.2 is assumed); srgan's own files record it."""
    if not {"conv_first.weight", "blocks.0.convs.0.weight", "global_concat.weight"} <= state_dict.keys():
        return None
    first = state_dict["conv_first.weight"]
    num_features = first.shape[0]
    scale = 1
    for index in numbered(state_dict, "upsample"):
        scale *= round((state_dict[f"upsample.{index}.weight"].shape[0] / num_features) ** 0.5)
    return spec_from_shapes(
        "wdrn",
        in_channels=first.shape[1],
        out_channels=state_dict["conv_last.weight"].shape[0],
        num_features=num_features,
        num_blocks=len(numbered(state_dict, "blocks")),
        num_layers=len(numbered(state_dict, "blocks.0.convs")),
        growth_channels=state_dict["blocks.0.convs.0.weight"].shape[0],
        scale=scale,
    )
