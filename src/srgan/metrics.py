"""PSNR and SSIM under the protocol of the SR literature, batched so training can validate with them.

Images are (N,C,H,W) float in [0, 1]; scores come back per image as (N,) tensors. The protocol
follows the MATLAB reference code that published tables use (and BasicSR's `calculate_psnr` /
`calculate_ssim` with `test_y_channel=True`):

- 3-channel images are scored on the BT.601 "MATLAB" luma Y = 16 + 65.481 R + 128.553 G + 24.966 B
  (R, G, B in [0, 1], Y on the 0-255 scale), or on RGB with `y_channel=False`;
  1-channel images are scored on their own values;
- `crop_border` pixels are removed from every side first (the convention is crop = scale);
- values are compared on the 0-255 scale without rounding;
- SSIM uses an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, is evaluated only
  where the window fits inside the image (no padding), and averages channels for RGB.

Computation runs in float64: the scores are means over many pixels and published to 4 decimals.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# BT.601 luma for RGB in [0, 1], giving Y in 16..235 on the 0-255 scale.
_Y_WEIGHTS = (65.481, 128.553, 24.966)
_Y_OFFSET = 16.0

_SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03
_PEAK = 255.0


def rgb_to_y(x: Tensor) -> Tensor:
    """(N,3,H,W) RGB in [0, 1] -> (N,1,H,W) BT.601 "MATLAB" luma, also on the [0, 1] scale."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"rgb_to_y: expected (N,3,H,W), got shape {tuple(x.shape)}")
    weights = torch.tensor(_Y_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return ((x * weights).sum(dim=1, keepdim=True) + _Y_OFFSET) / _PEAK


def _prepare(sr: Tensor, hr: Tensor, crop_border: int, y_channel: bool, metric: str) -> tuple[Tensor, Tensor]:
    """Check shapes, pick the scored channels, crop, and move to float64 on the 0-255 scale."""
    if sr.shape != hr.shape:
        raise ValueError(f"{metric}: images differ in shape, {tuple(sr.shape)} vs {tuple(hr.shape)}")
    if sr.dim() != 4 or sr.shape[1] not in (1, 3):
        raise ValueError(f"{metric}: expected (N,1,H,W) or (N,3,H,W), got shape {tuple(sr.shape)}")
    if crop_border < 0:
        raise ValueError(f"{metric}: crop_border must be >= 0, got {crop_border}")
    height, width = sr.shape[-2:]
    if 2 * crop_border >= min(height, width):
        raise ValueError(f"{metric}: crop_border={crop_border} leaves nothing of a {height}x{width} image")
    scored = []
    for image in (sr, hr):
        image = image.double()
        if y_channel and image.shape[1] == 3:
            image = rgb_to_y(image)
        if crop_border:
            image = image[..., crop_border:-crop_border, crop_border:-crop_border]
        scored.append(image * _PEAK)
    return scored[0], scored[1]


def psnr(sr: Tensor, hr: Tensor, *, crop_border: int = 0, y_channel: bool = True) -> Tensor:
    """Peak signal-to-noise ratio in dB per image, (N,) float64; identical images give +inf."""
    sr, hr = _prepare(sr, hr, crop_border, y_channel, "psnr")
    mse = (sr - hr).pow(2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(_PEAK**2 / mse)


def _gaussian_window(device: torch.device) -> Tensor:
    offsets = torch.arange(_SSIM_WINDOW, dtype=torch.float64, device=device) - _SSIM_WINDOW // 2
    window = torch.exp(-(offsets**2) / (2 * _SSIM_SIGMA**2))
    return window / window.sum()


def _gaussian_filter_valid(x: Tensor, window: Tensor) -> Tensor:
    """Separable Gaussian filter of (B,1,H,W) without padding: only positions where the window fits."""
    x = F.conv2d(x, window.view(1, 1, -1, 1))
    return F.conv2d(x, window.view(1, 1, 1, -1))


def ssim(sr: Tensor, hr: Tensor, *, crop_border: int = 0, y_channel: bool = True) -> Tensor:
    """Structural similarity per image, (N,) float64, averaged over the scored channels."""
    sr, hr = _prepare(sr, hr, crop_border, y_channel, "ssim")
    batch, channels, height, width = sr.shape
    if min(height, width) < _SSIM_WINDOW:
        raise ValueError(
            f"ssim: needs at least {_SSIM_WINDOW}x{_SSIM_WINDOW} pixels after cropping, got {height}x{width}"
        )
    c1 = (_SSIM_K1 * _PEAK) ** 2
    c2 = (_SSIM_K2 * _PEAK) ** 2
    window = _gaussian_window(sr.device)
    # Channels become batch entries so one filter call handles every channel of every image.
    x = sr.reshape(batch * channels, 1, height, width)
    y = hr.reshape(batch * channels, 1, height, width)
    mean_x = _gaussian_filter_valid(x, window)
    mean_y = _gaussian_filter_valid(y, window)
    var_x = _gaussian_filter_valid(x * x, window) - mean_x**2
    var_y = _gaussian_filter_valid(y * y, window) - mean_y**2
    covariance = _gaussian_filter_valid(x * y, window) - mean_x * mean_y
    ssim_map = ((2 * mean_x * mean_y + c1) * (2 * covariance + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    )
    return ssim_map.reshape(batch, channels, -1).mean(dim=(1, 2))

