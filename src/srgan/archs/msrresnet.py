"""MSRResNet, BasicSR's modified SRResNet (Wang et al., the ESRGAN paper's PSNR baseline).

SRResNet without BatchNorm: a 3x3 head conv + LeakyReLU(0.1), `num_blocks` conv-ReLU-conv residual
blocks, pixel-shuffle upsampling (one x2/x3 stage, or two x2 stages at x4) with LeakyReLU, a conv
pair at HR, and the bilinearly upsampled input added to the output so the network learns the
residual. Key names are BasicSR's (`conv_first`, `body.N.conv1/conv2`, `upconv1`, `upconv2`,
`conv_hr`, `conv_last`), so its published `.pth` files (MSRResNet_x4, ...) load with strict=True.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srgan.archs.spec import NetworkSpec, numbered, spec_from_shapes
from srgan.errors import SrganError

FP16_SAFE = True
# BasicSR's own class, so its published `.pth` files load here and srgan's load there (spandrel has none).
BASICSR_CLASS = "basicsr.archs.srresnet_arch.MSRResNet"
_SCALES = (2, 3, 4)


class _ResidualBlockNoBN(nn.Module):
    def __init__(self, num_features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(num_features, num_features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x)))


class MSRResNet(nn.Module):
    """(N, C, H, W) -> (N, C, H*scale, W*scale); in_channels == out_channels (the input is added)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, num_features: int = 64, num_blocks: int = 16, scale: int = 4):
        super().__init__()
        if scale not in _SCALES:
            raise SrganError(f"msrresnet: scale {scale} is not supported; use 2, 3 or 4")
        if in_channels != out_channels:
            raise SrganError("msrresnet: in_channels and out_channels must match (the upsampled input is added)")
        self.scale = scale
        self.conv_first = nn.Conv2d(in_channels, num_features, 3, padding=1)
        self.body = nn.Sequential(*(_ResidualBlockNoBN(num_features) for _ in range(num_blocks)))
        stage = 2 if scale == 4 else scale
        self.upconv1 = nn.Conv2d(num_features, num_features * stage * stage, 3, padding=1)
        self.upconv2 = nn.Conv2d(num_features, num_features * 4, 3, padding=1) if scale == 4 else None
        self.pixel_shuffle = nn.PixelShuffle(stage)
        self.conv_hr = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.conv_last = nn.Conv2d(num_features, out_channels, 3, padding=1)
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.body(self.lrelu(self.conv_first(x)))
        for upconv in (self.upconv1, self.upconv2):
            if upconv is not None:
                features = self.lrelu(self.pixel_shuffle(upconv(features)))
        out = self.conv_last(self.lrelu(self.conv_hr(features)))
        return out + F.interpolate(x, scale_factor=float(self.scale), mode="bilinear", align_corners=False)


def describe(state_dict: dict[str, torch.Tensor]) -> NetworkSpec | None:
    """The MSRResNet a BasicSR-named state dict belongs to, or None when it is not one."""
    if not {"conv_first.weight", "body.0.conv1.weight", "upconv1.weight", "conv_hr.weight"} <= state_dict.keys():
        return None
    first = state_dict["conv_first.weight"]
    num_features = first.shape[0]
    scale = 4 if "upconv2.weight" in state_dict else round((state_dict["upconv1.weight"].shape[0] / num_features) ** 0.5)
    return spec_from_shapes(
        "msrresnet",
        in_channels=first.shape[1],
        out_channels=state_dict["conv_last.weight"].shape[0],
        num_features=num_features,
        num_blocks=len(numbered(state_dict, "body")),
        scale=scale,
    )
