"""Discriminators: SRGAN's VGG-style classifier and a critic on frozen VGG19 features.

`SRGANDiscriminator` (Ledig et al. 2017, Fig. 4): eight 3x3 convs, 64 -> 512 channels, stride 2
where the width stays and stride 1 where it doubles (64, 64s2, 128, 128s2, 256, 256s2, 512, 512s2),
BatchNorm on all but the first, LeakyReLU 0.2, then dense 1024 -> LeakyReLU -> dense 1. It returns
logits (N, 1); the losses apply the sigmoid. The first dense layer ties the network to one input
size (96 for SRGAN, 128 for ESRGAN); `any_size=True` average-pools the last feature map to that
size's grid first, so any input of at least 16 pixels works with the same weights.

`VGGFeatureDiscriminator` is the critic of the WDRN recipe: it classifies the features a frozen,
pretrained VGG19 extracts from its input. With `norm="none"` it suits WGAN-GP, whose gradient
penalty is defined per sample and is broken by BatchNorm's mixing of the batch.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from srgan.archs.vgg import VGGFeatureExtractor
from srgan.errors import SrganError

NORMS = ("batch", "none")


def _check_norm(norm: str, arch: str) -> None:
    if norm not in NORMS:
        raise SrganError(f"{arch}: unknown norm {norm!r}; use 'batch' or 'none' ('none' for WGAN-GP)")


def _conv_block(in_ch: int, out_ch: int, stride: int, norm: bool) -> list[nn.Module]:
    # a conv bias followed by BatchNorm is cancelled by the mean subtraction, so leave it out
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(out_ch))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return layers


class SRGANDiscriminator(nn.Module):
    """(N, in_channels, input_size, input_size) -> logits (N, 1)."""

    def __init__(
        self,
        in_channels: int = 3,
        num_features: int = 64,
        input_size: int = 96,
        any_size: bool = False,
        norm: str = "batch",
    ):
        super().__init__()
        _check_norm(norm, "srgan_discriminator")
        if input_size < 16 or input_size % 16:
            raise SrganError(
                f"srgan_discriminator: input_size {input_size} must be a multiple of 16 (four stride-2 convs)"
            )
        self.input_size = input_size
        self.any_size = any_size
        widths = [num_features, num_features * 2, num_features * 4, num_features * 8]
        layers: list[nn.Module] = []
        channels = in_channels
        for block, width in enumerate(widths):
            # SRGAN has no BatchNorm after the very first conv
            layers += _conv_block(channels, width, stride=1, norm=norm == "batch" and block > 0)
            layers += _conv_block(width, width, stride=2, norm=norm == "batch")
            channels = width
        self.features = nn.Sequential(*layers)
        grid = input_size // 16
        self.pool = nn.AdaptiveAvgPool2d(grid) if any_size else nn.Identity()
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * grid * grid, 1024),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(1024, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.any_size and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise SrganError(
                f"srgan_discriminator: got {x.shape[-2]}x{x.shape[-1]} patches but it was built for "
                f"{self.input_size}x{self.input_size}; build it with input_size={x.shape[-1]} "
                "(HR patch size) or any_size=True"
            )
        return self.classifier(self.pool(self.features(x)))


class VGGFeatureDiscriminator(nn.Module):
    """Critic on frozen VGG19 features: (N, 3, H, W) RGB in [0, 1] -> logits (N, 1), any H, W.

    Pass a ready `feature_extractor`, or `layer`, `weights_path` and `convention` to build one.
    The extractor is frozen (its weights are buffers, and VGG19 has no BatchNorm or dropout that
    train/eval mode would change); only the small conv head behind it trains.
    Gradients still flow through it to the input, as the gradient penalty needs.
    """

    def __init__(
        self,
        feature_extractor: VGGFeatureExtractor | None = None,
        *,
        layer: str = "relu3_4",
        weights_path: str | Path | None = None,
        convention: str = "caffe",
        num_features: int = 64,
        norm: str = "none",
    ):
        super().__init__()
        _check_norm(norm, "vgg_feature_discriminator")
        if feature_extractor is None:
            if weights_path is None:
                raise SrganError(
                    "vgg_feature_discriminator: no VGG19 weights; set weights_path (e.g. "
                    "../shared/weights/vgg19_imagenet_conv1-conv3_caffe.safetensors) or pass a feature extractor"
                )
            feature_extractor = VGGFeatureExtractor(layer, weights_path, convention)
        if len(feature_extractor.layers) != 1:
            raise SrganError("vgg_feature_discriminator: the feature extractor must return exactly one layer")
        self.feature_extractor = feature_extractor
        self.layer = feature_extractor.layers[0]
        in_ch = feature_extractor.out_channels[self.layer]
        use_bn = norm == "batch"
        self.head = nn.Sequential(
            *_conv_block(in_ch, num_features, stride=1, norm=False),
            *_conv_block(num_features, num_features * 2, stride=2, norm=use_bn),
            *_conv_block(num_features * 2, num_features * 2, stride=2, norm=use_bn),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(num_features * 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.feature_extractor(x)[self.layer])
