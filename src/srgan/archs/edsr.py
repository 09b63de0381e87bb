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
from srgan.errors import SrganError

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


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
