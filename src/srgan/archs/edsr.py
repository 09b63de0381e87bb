"""EDSR (Lim et al., CVPRW 2017, arXiv:1707.02921).

SRResNet without BatchNorm: residual blocks conv-ReLU-conv whose branch is multiplied by
`res_scale` (0.1 for the 32x256 model, which otherwise trains unstably; 1 for the baseline), a
global skip over the body, and a sub-pixel upsampler. The input has the DIV2K RGB mean subtracted
and is scaled to 0-255 inside the network, as both reference implementations do, so weights
trained there keep their meaning. At x4: baseline (16 blocks x 64) 1,517,571 parameters, EDSR
(32 x 256) 43,089,923.

Parameter names follow BasicSR's EDSR (`conv_first`, `body.N.conv1/conv2`, `conv_after_body`,
`upsample.K`, `conv_last`); the mean is a non-persistent buffer, as BasicSR keeps it out of the
state dict too.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from srgan.archs.srresnet import SubpixelUpsampler
from srgan.archs.spec import NetworkSpec, numbered, spec_from_shapes
from srgan.errors import SrganError

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)
FP16_SAFE = True
# BasicSR's EDSR class loads srgan's EDSR weights with strict=True, so `.pth` files use these names
# (spandrel has no EDSR).
BASICSR_CLASS = "basicsr.archs.edsr_arch.EDSR"
# The residual scaling is not in the weights; the paper's large model (32 x 256) is the one that uses 0.1.
_LARGE_MODEL = (32, 256)


class _ResidualBlock(nn.Module):
    def __init__(self, num_features: int, res_scale: float):
        super().__init__()
        self.conv1 = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.conv2(self.relu(self.conv1(x)))


class EDSR(nn.Module):
    """(N, in_channels, H, W) in [0, 1] -> (N, out_channels, H*scale, W*scale), not clamped."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_features: int = 64,
        num_blocks: int = 16,
        res_scale: float = 1.0,
        scale: int = 4,
        pixel_range: float = 255.0,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
    ):
        super().__init__()
        if not (len(rgb_mean) == in_channels == out_channels):
            raise SrganError(
                f"edsr: rgb_mean has {len(rgb_mean)} values for {in_channels} input and {out_channels} output "
                "channels; give one mean per channel with in_channels == out_channels"
            )
        self.scale = scale
        self.pixel_range = pixel_range
        self.register_buffer("mean", torch.tensor(rgb_mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.conv_first = nn.Conv2d(in_channels, num_features, 3, padding=1)
        self.body = nn.Sequential(*(_ResidualBlock(num_features, res_scale) for _ in range(num_blocks)))
        self.conv_after_body = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.upsample = SubpixelUpsampler(num_features, scale, "edsr")
        self.conv_last = nn.Conv2d(num_features, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.mean.to(x.dtype)
        features = self.conv_first((x - mean) * self.pixel_range)
        features = features + self.conv_after_body(self.body(features))
        return self.conv_last(self.upsample(features)) / self.pixel_range + mean


def describe(state_dict: dict[str, torch.Tensor]) -> NetworkSpec | None:
    """The EDSR a BasicSR-named state dict belongs to, or None when it is not one.

    `res_scale` leaves no trace in the weights: 0.1 is assumed for the paper's 32 x 256 model and
    1 otherwise (the two published configurations); srgan's own files record it.
    """
    if not {"conv_first.weight", "body.0.conv1.weight", "conv_after_body.weight", "conv_last.weight"} <= state_dict.keys():
        return None
    first = state_dict["conv_first.weight"]
    num_features = first.shape[0]
    upsample = [state_dict[f"upsample.{index}.weight"] for index in numbered(state_dict, "upsample")]
    factors = [round((conv.shape[0] / num_features) ** 0.5) for conv in upsample]
    scale = 1
    for factor in factors:
        scale *= factor
    num_blocks = len(numbered(state_dict, "body"))
    return spec_from_shapes(
        "edsr",
        in_channels=first.shape[1],
        out_channels=state_dict["conv_last.weight"].shape[0],
        num_features=num_features,
        num_blocks=num_blocks,
        res_scale=0.1 if (num_blocks, num_features) == _LARGE_MODEL else 1.0,
        scale=scale,
    )
