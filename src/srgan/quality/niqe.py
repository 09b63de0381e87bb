"""NIQE, the Natural Image Quality Evaluator (Mittal, Soundararajan and Bovik, IEEE SPL 2013), as the
official MATLAB release computes it.

NIQE needs no reference image: it fits a multivariate Gaussian to natural-scene statistics of the
image and reports its distance to the Gaussian of a corpus of pristine photographs. Lower is better.
The pristine model (36 means and a 36x36 covariance) is the official `modelparameters.mat`, in the
`.npz` conversion BasicSR publishes; srgan does not ship it, `srgan models fetch-niqe` downloads it
(see `srgan.downloads.fetch_niqe_params`).

The steps follow the MATLAB code, so that the scores match it (checked against MATLAB's 5.7296 and a
reference table to 1e-3 by `tests/test_quality_niqe.py`):

1. the image becomes 8-bit luma: Y of BT.601 as MATLAB's `rgb2ycbcr` computes it on uint8 images
   (rounded, halves away from zero), or the gray values of a 1-channel image;
2. `crop_border` pixels go from each side, then the image is cut to whole 96x96 blocks
   (the bottom and right remainders go);
3. at two scales (the image, then MATLAB's antialiased bicubic `imresize(im, 0.5)` of it):
   local mean and deviation with a 7x7 Gaussian (sigma 7/6, edges replicated), the normalised
   coefficients `(im - mu) / (sigma + 1)`, and per block (96x96, then 48x48) 18 features: the shape
   and mean scale of an asymmetric generalised Gaussian fitted to the coefficients, and for the
   products of each coefficient with its neighbour in four directions (shifted circularly inside the
   block) the shape, mean and left/right scales of another. Shapes come from the same grid search as
   MATLAB's (0.2 to 10 in steps of 0.001, first best match).
   The local mean and mean square are rounded to single precision and sigma and the coefficients
   computed in single precision: MATLAB's imfilter gives single-precision results (its value on the
   test image is matched to 1e-6 this way, to 4e-4 in double precision), and BasicSR does the same;
4. mean (ignoring NaNs) and covariance (over blocks with no NaN) of the 36 features; the score is
   `sqrt((mu_p - mu) pinv((C_p + C) / 2) (mu_p - mu)^T)`.

Everything else runs in float64, on the CPU.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from srgan.errors import SrganError

BLOCK = 96
FEATURES = 36
_WINDOW_SIDE = 7
_WINDOW_SIGMA = 7 / 6
# (rows, columns) of MATLAB's circshift for the horizontal, vertical and two diagonal neighbours.
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))
_Y_WEIGHTS = (65.481, 128.553, 24.966)


@dataclass(frozen=True)
class NiqeModel:
    """The multivariate Gaussian of pristine images: `mean` (36,) and `covariance` (36, 36), float64."""

    mean: Tensor
    covariance: Tensor
    path: Path


def load_niqe_model(path: str | os.PathLike) -> NiqeModel:
    """Read the pristine model from BasicSR's `niqe_pris_params.npz` (`mu_pris_param`, `cov_pris_param`)."""
    import numpy as np

    source = Path(path)
    if not source.is_file():
        raise SrganError(
            f"{source}: NIQE parameters not found; run `srgan models fetch-niqe` or pass --params FILE"
        )
    try:
        with np.load(source, allow_pickle=False) as arrays:
            mean = np.asarray(arrays["mu_pris_param"], dtype=np.float64).reshape(-1)
            covariance = np.asarray(arrays["cov_pris_param"], dtype=np.float64)
    except (OSError, ValueError, KeyError) as error:
        raise SrganError(
            f"{source}: not a NIQE parameter file ({error}); expected BasicSR's niqe_pris_params.npz "
            "with mu_pris_param and cov_pris_param (`srgan models fetch-niqe` downloads it)"
        ) from None
    if mean.shape != (FEATURES,) or covariance.shape != (FEATURES, FEATURES):
        raise SrganError(
            f"{source}: NIQE parameters have shapes {mean.shape} and {covariance.shape}, expected "
            f"({FEATURES},) and ({FEATURES}, {FEATURES}); use BasicSR's niqe_pris_params.npz"
        )
    return NiqeModel(torch.from_numpy(mean), torch.from_numpy(covariance), source)


def luma_8bit(images: Tensor) -> Tensor:
    """(N,3,H,W) or (N,1,H,W) in [0, 1] -> (N,H,W) float64 8-bit levels, as MATLAB's uint8 `rgb2ycbcr` Y."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"niqe: expected (N,1,H,W) or (N,3,H,W), got shape {tuple(images.shape)}")
    levels = images.detach().to("cpu", torch.float64) * 255.0
    if levels.shape[1] == 3:
        weights = torch.tensor(_Y_WEIGHTS, dtype=torch.float64).view(1, 3, 1, 1) / 255.0
        levels = (levels * weights).sum(dim=1, keepdim=True) + 16.0
    # MATLAB rounds halves away from zero (torch.round rounds them to even); levels are >= 0.
    return torch.floor(levels[:, 0] + 0.5)


def niqe(images: Tensor, model: NiqeModel, *, crop_border: int = 0) -> Tensor:
    """NIQE of each image of (N,C,H,W) in [0, 1] (C = 3 scored on Y, C = 1 on its values) -> (N,) float64.

    Raises ValueError when an image, after `crop_border`, holds fewer than two 96x96 blocks.
    """
    if crop_border < 0:
        raise ValueError(f"niqe: crop_border must be >= 0, got {crop_border}")
    luma = luma_8bit(images)
    if crop_border:
        luma = luma[:, crop_border:-crop_border, crop_border:-crop_border]
    return torch.stack([niqe_of_luma(image, model) for image in luma])


def niqe_of_luma(luma: Tensor, model: NiqeModel) -> Tensor:
    """NIQE of one (H,W) image of 8-bit luma levels (0-255, float): a 0-d float64 tensor."""
    height, width = luma.shape
    rows, cols = height // BLOCK, width // BLOCK
    if rows * cols < 2:
        raise ValueError(
            f"niqe: a {height}x{width} image holds {rows * cols} block(s) of {BLOCK}x{BLOCK}; NIQE needs at least 2"
        )
    image = luma.to("cpu", torch.float64)[: rows * BLOCK, : cols * BLOCK]
    features = []
    for level in (1, 2):
        features.append(_scale_features(image, BLOCK // level))
        if level == 1:
            image = _half_size(image)
    features = torch.cat(features, dim=1)
    mean = torch.nanmean(features, dim=0)
    complete = features[~torch.isnan(features).any(dim=1)]
    covariance = torch.cov(complete.T)
    difference = (model.mean - mean).view(1, -1)
    inverse = torch.linalg.pinv((model.covariance + covariance) / 2)
    return torch.sqrt(difference @ inverse @ difference.T).view(())


def _half_size(image: Tensor) -> Tensor:
    from srgan.resize import matlab_bicubic_resize

    return matlab_bicubic_resize(image[None], scale=0.5)[0]


def _gaussian_window() -> Tensor:
    """MATLAB's fspecial('gaussian', 7, 7/6), normalised to sum 1."""
    offsets = torch.arange(_WINDOW_SIDE, dtype=torch.float64) - _WINDOW_SIDE // 2
    window = torch.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * _WINDOW_SIGMA**2))
    return window / window.sum()


def _local_filter(image: Tensor) -> Tensor:
    """imfilter(image, window, 'replicate'): same size, edges repeated."""
    pad = _WINDOW_SIDE // 2
    padded = F.pad(image[None, None], (pad, pad, pad, pad), mode="replicate")
    return F.conv2d(padded, _gaussian_window()[None, None])[0, 0]


def _scale_features(image: Tensor, block: int) -> Tensor:
    """(blocks, 18) features of one scale; blocks in row-major order of the block grid."""
    # The local statistics are kept to single precision, as MATLAB's imfilter returns them (and as
    # BasicSR computes them): where the image is flat, sigma is the root of a difference of two
    # nearly equal numbers, and NIQE of flat images depends on how that difference is rounded.
    # In float64 throughout, MATLAB's 5.7296 on baboon moves by 4e-4 and flat images by up to 0.3.
    mu = _local_filter(image).float()
    mean_square = _local_filter(image * image).float()
    sigma = torch.sqrt((mean_square - mu * mu).abs())
    coefficients = ((image.float() - mu) / (sigma + 1)).double()
    rows, cols = image.shape[0] // block, image.shape[1] // block
    blocks = coefficients.reshape(rows, block, cols, block).permute(0, 2, 1, 3).reshape(rows * cols, block, block)
    shape, left, right = _fit_aggd(blocks.flatten(1))
    columns = [shape, (left + right) / 2]
    for shift in _SHIFTS:
        products = blocks * torch.roll(blocks, shifts=shift, dims=(1, 2))
        shape, left, right = _fit_aggd(products.flatten(1))
        mean = (right - left) * torch.exp(torch.lgamma(2 / shape) - torch.lgamma(1 / shape))
        columns += [shape, mean, left, right]
    return torch.stack(columns, dim=1)


@functools.cache
def _shape_grid() -> tuple[Tensor, Tensor]:
    """MATLAB's shapes 0.2:0.001:10 and Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)) for each."""
    grid = 0.2 + 0.001 * torch.arange(9801, dtype=torch.float64)
    ratio = torch.exp(2 * torch.lgamma(2 / grid) - torch.lgamma(1 / grid) - torch.lgamma(3 / grid))
    return grid, ratio


def _fit_aggd(values: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Shape and left / right scales of an asymmetric generalised Gaussian fitted to each row, by
    MATLAB's grid search (estimateaggdparam: shapes 0.2:0.001:10, the first best match)."""
    grid, grid_ratio = _shape_grid()
    negative, positive = values < 0, values > 0
    left_std = torch.sqrt((values.pow(2) * negative).sum(dim=1) / negative.sum(dim=1))
    right_std = torch.sqrt((values.pow(2) * positive).sum(dim=1) / positive.sum(dim=1))
    skew = left_std / right_std
    ratio = values.abs().mean(dim=1) ** 2 / values.pow(2).mean(dim=1)
    normalised = ratio * (skew**3 + 1) * (skew + 1) / (skew**2 + 1) ** 2
    shape = grid[(grid_ratio[None, :] - normalised[:, None]).pow(2).argmin(dim=1)]
    to_scale = torch.exp(0.5 * (torch.lgamma(1 / shape) - torch.lgamma(3 / shape)))
    return shape, left_std * to_scale, right_std * to_scale
