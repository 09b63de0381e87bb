"""SRResNet, the generator of SRGAN (Ledig et al., CVPR 2017, arXiv:1609.04802, Fig. 4).

9x9 head conv + PReLU; `num_blocks` residual blocks (conv-BN-PReLU-conv-BN + skip); conv-BN and a
global skip over the whole body; sub-pixel upsampling; 9x9 tail conv. At x4 with the paper's sizes
(64 features, 16 blocks) it has 1,549,462 parameters. The output is not clamped. Untrained, it is
nearest-neighbour upsampling (`srgan.archs.passthrough`).

This module also holds the sub-pixel upsampler shared by the other pixel-shuffle networks (EDSR,
WDRN), with ICNR initialisation against checkerboard artefacts.
"""

from __future__ import annotations

import torch
from torch import nn

from srgan.archs.passthrough import pass_channels_, read_channels_
from srgan.archs.spec import NetworkSpec, numbered, spec_from_shapes
from srgan.errors import SrganError

FP16_SAFE = True
# BasicSR has no SRResNet with BatchNorm (its MSRResNet is `msrresnet`): `.pth` files keep srgan's names.
BASICSR_CLASS = None

# scale -> PixelShuffle factors applied in order; x3 cannot be split into x2 stages
_SUBPIXEL_FACTORS = {2: (2,), 3: (3,), 4: (2, 2), 8: (2, 2, 2)}


def subpixel_factors(scale: int, arch: str) -> tuple[int, ...]:
    """The PixelShuffle factors for `scale`, or a SrganError naming `arch` and the scales it supports."""
    try:
        return _SUBPIXEL_FACTORS[scale]
    except KeyError:
        supported = ", ".join(str(s) for s in _SUBPIXEL_FACTORS)
        raise SrganError(f"{arch}: scale {scale} is not supported; use one of {supported}") from None


@torch.no_grad()
def icnr_(conv: nn.Conv2d, factor: int) -> None:
    """ICNR initialisation (Aitken et al. 2017) of a conv that feeds PixelShuffle(factor).

    Every group of factor**2 output channels that PixelShuffle spreads over one output pixel block
    gets the same kernel, so at initialisation the shuffle is a nearest-neighbour upsampling of a
    normal conv and the output starts free of checkerboard patterns.
    """
    group = factor * factor
    base = torch.empty(conv.out_channels // group, *conv.weight.shape[1:])
    nn.init.kaiming_normal_(base)
    # PixelShuffle reads channel c*factor**2 + k into sub-pixel k of output channel c
    conv.weight.copy_(base.repeat_interleave(group, dim=0))
    if conv.bias is not None:
        conv.bias.zero_()


class SubpixelUpsampler(nn.Sequential):
    """conv(nf -> nf*r^2) -> PixelShuffle(r) [-> activation] for each factor r of `scale`.

    `activation` builds a fresh activation module per stage (None for none). Child indices follow
    BasicSR's `Upsample` when there is no activation (0 conv, 1 shuffle, 2 conv, ...).
    """

    def __init__(self, num_features: int, scale: int, arch: str, activation=None):
        layers: list[nn.Module] = []
        for factor in subpixel_factors(scale, arch):
            conv = nn.Conv2d(num_features, num_features * factor * factor, 3, padding=1)
            icnr_(conv, factor)
            layers += [conv, nn.PixelShuffle(factor)]
            if activation is not None:
                layers.append(activation())
        super().__init__(*layers)


class _ResidualBlock(nn.Module):
    def __init__(self, num_features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(num_features)
        self.act = nn.PReLU()
        self.conv2 = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class SRResNet(nn.Module):
    """SRResNet generator: (N, in_channels, H, W) -> (N, out_channels, H*scale, W*scale)."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_features: int = 64,
        num_blocks: int = 16,
        scale: int = 4,
    ):
        super().__init__()
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(in_channels, num_features, 9, padding=4), nn.PReLU())
        self.body = nn.Sequential(*(_ResidualBlock(num_features) for _ in range(num_blocks)))
        self.body_tail = nn.Sequential(
            nn.Conv2d(num_features, num_features, 3, padding=1), nn.BatchNorm2d(num_features)
        )
        self.upsample = SubpixelUpsampler(num_features, scale, "srresnet", activation=nn.PReLU)
        self.tail = nn.Conv2d(num_features, out_channels, 9, padding=4)
        self._start_as_upsampler(min(in_channels, out_channels, num_features))

    @torch.no_grad()
    def _start_as_upsampler(self, channels: int) -> None:
        # see srgan.archs.passthrough; the last BatchNorm of each residual block and of the body tail
        # starts at weight 0, so every residual branch starts as zero (Goyal et al. 2017, "zero-gamma")
        pass_channels_(self.head[0], channels)
        for block in self.body:
            nn.init.zeros_(block.bn2.weight)
        nn.init.zeros_(self.body_tail[1].weight)
        for module in self.upsample:
            if isinstance(module, nn.Conv2d):
                pass_channels_(module, channels, repeat=module.out_channels // module.in_channels)
        read_channels_(self.tail, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(x)
        features = features + self.body_tail(self.body(features))
        return self.tail(self.upsample(features))


def describe(state_dict: dict[str, torch.Tensor]) -> NetworkSpec | None:
    """The SRResNet an srgan-named state dict belongs to (9x9 head, BN body tail), or None."""
    head = state_dict.get("head.0.weight")
    if head is None or head.shape[-1] != 9 or "body_tail.1.weight" not in state_dict or "tail.weight" not in state_dict:
        return None
    num_features = head.shape[0]
    scale = 1
    for index in numbered(state_dict, "upsample"):
        conv = state_dict.get(f"upsample.{index}.weight")
        if conv is not None and conv.ndim == 4:
            scale *= round((conv.shape[0] / num_features) ** 0.5)
    return spec_from_shapes(
        "srresnet",
        in_channels=head.shape[1],
        out_channels=state_dict["tail.weight"].shape[0],
        num_features=num_features,
        num_blocks=len(numbered(state_dict, "body")),
        scale=scale,
    )
