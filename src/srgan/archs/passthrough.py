"""Initialisation that makes an untrained network without an input skip start as nearest-neighbour upsampling.

SRResNet, RRDBNet and WDRN add nothing of the input image to their output: the image reaches it only
through the first conv, the body, the upsampler and the last conv. Randomly initialised, that path
carries noise, and training first has to discover how to reproduce the colours at all; a small
SRResNet trained for 300 iterations ended 8-12 dB below bicubic on Set5, with washed-out colours.

Here the first `channels` feature maps carry the input image unchanged along that path (centre tap 1,
nothing else, zero bias), residual branches that would add to them start at zero, and the last conv
reads them back while the other features enter it scaled down. The untrained network is then
nearest-neighbour upsampling plus a small learned term, and the same small SRResNet ends above
bicubic in those 300 iterations. The activations on the path (PReLU, LeakyReLU) pass the
non-negative image values unchanged. Only the initial values change: layers, shapes and state-dict
keys stay those of the papers, and loading trained weights replaces them all.
"""

from __future__ import annotations

import torch
from torch import nn

# how much the last conv hears of the features that do not carry the image at initialisation
OTHER_FEATURES_SCALE = 0.1


def _centre(conv: nn.Conv2d) -> tuple[int, int]:
    return conv.kernel_size[0] // 2, conv.kernel_size[1] // 2


# A 3x3 kernel that, after nearest x2 upsampling, makes the result bilinear x2 upsampling
# (align_corners=False): the samples a a b b become a, (3a + b)/4, (a + 3b)/4, b.
BILINEAR_AFTER_NEAREST_X2 = torch.outer(torch.tensor([1.0, 2.0, 1.0]), torch.tensor([1.0, 2.0, 1.0])) / 16


@torch.no_grad()
def pass_channels_(
    conv: nn.Conv2d, channels: int, *, repeat: int = 1, source_stride: int = 1, kernel: torch.Tensor | None = None
) -> None:
    """Output channels c*repeat ... c*repeat+repeat-1 of `conv` copy input channel c*source_stride (c < channels).

    `repeat` = r**2 for a conv feeding PixelShuffle(r), so the shuffle spreads each copied map over its
    r x r output block (nearest upsampling); `source_stride` = f**2 after a pixel-unshuffle by f, to copy
    one sample of each f x f block. `kernel` (odd-sized, centred) filters the copied map instead of the
    plain copy. The other output channels keep their initialisation.
    """
    top, left = _centre(conv)
    kernel = torch.ones(1, 1) if kernel is None else kernel
    rows, cols = kernel.shape[0] // 2, kernel.shape[1] // 2
    conv.weight[: channels * repeat].zero_()
    if conv.bias is not None:
        conv.bias[: channels * repeat].zero_()
    for channel in range(channels):
        conv.weight[channel * repeat : (channel + 1) * repeat, channel * source_stride,
                    top - rows : top + rows + 1, left - cols : left + cols + 1] = kernel


@torch.no_grad()
def zero_rows_(conv: nn.Conv2d, channels: int) -> None:
    """A residual branch ending in `conv` adds nothing to the first `channels` maps at initialisation."""
    conv.weight[:channels].zero_()
    if conv.bias is not None:
        conv.bias[:channels].zero_()


@torch.no_grad()
def read_channels_(conv: nn.Conv2d, channels: int) -> None:
    """The last conv: output c starts as input map c, plus the other maps scaled by OTHER_FEATURES_SCALE."""
    top, left = _centre(conv)
    conv.weight.mul_(OTHER_FEATURES_SCALE)
    conv.weight[:, :channels].zero_()
    if conv.bias is not None:
        conv.bias.zero_()
    for channel in range(min(channels, conv.out_channels)):
        conv.weight[channel, channel, top, left] = 1.0
