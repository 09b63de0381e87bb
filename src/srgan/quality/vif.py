"""VIFp, the pixel-domain Visual Information Fidelity (Sheikh and Bovik, IEEE TIP 2006), through sewar.

VIF models the reference as a Gaussian scale mixture seen through a noisy visual channel and reports
how much of the information the reference carries survives in the test image: 1 for an identical
image, lower for distorted ones (above 1 for a contrast-enhanced copy). Higher is better. The
computation is `sewar.full_ref.vifp` (the `vif` extra: `pip install "srgan[vif]"`), four scales with
Gaussian windows of 17, 9, 5 and 3 pixels (sigma = side / 5), visual noise variance 2, as in Sheikh's
`vifvec` pixel-domain MATLAB code. srgan scores it like PSNR: on the 0-255 BT.601 Y channel (or each
RGB channel, averaged), 1-channel images on their own values, after `crop_border`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from srgan.errors import SrganError
from srgan.metrics import rgb_to_y

# Each scale filters 'valid' and halves: the 17, 9, 5 and 3 pixel windows all fit from 65 pixels on.
_MIN_SIDE = 65


def vif(sr: Tensor, hr: Tensor, *, crop_border: int = 0, y_channel: bool = True) -> Tensor:
    """VIFp of each image of (N,C,H,W) `sr` against `hr` (both in [0, 1]) -> (N,) float64.

    Raises ValueError for mismatched shapes or a crop that leaves less than 65x65 pixels.
    """
    try:
        from sewar.full_ref import vifp
    except ImportError:
        raise SrganError('VIF: needs the sewar package; pip install "srgan[vif]"') from None
    if sr.shape != hr.shape or sr.dim() != 4 or sr.shape[1] not in (1, 3):
        raise ValueError(f"vif: expected two (N,1|3,H,W) images of one shape, got {tuple(sr.shape)} and {tuple(hr.shape)}")
    if crop_border < 0:
        raise ValueError(f"vif: crop_border must be >= 0, got {crop_border}")
    scored = []
    for image in (sr, hr):
        image = image.detach().to("cpu", torch.float64)
        if y_channel and image.shape[1] == 3:
            image = rgb_to_y(image)
        if crop_border:
            image = image[..., crop_border:-crop_border, crop_border:-crop_border]
        scored.append(image * 255.0)
    if min(scored[0].shape[-2:]) < _MIN_SIDE:
        raise ValueError(
            f"vif: needs at least {_MIN_SIDE}x{_MIN_SIDE} pixels after cropping, got {tuple(scored[0].shape[-2:])}"
        )
    values = [
        vifp(reference.permute(1, 2, 0).numpy(), test.permute(1, 2, 0).numpy())
        for test, reference in zip(scored[0], scored[1])
    ]
    return torch.tensor(values, dtype=torch.float64)
