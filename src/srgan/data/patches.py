"""Random training patches: positions, flips/rotations, and LR made from HR, shared by both samplers.

Geometry rules that keep every LR/HR pair aligned:

- HR patch origins are multiples of `scale`, so the LR patch starts at exactly `origin / scale`.
- Augmentation is one of the 8 flips/90-degree rotations of the square, applied to LR and HR alike.
- For HR-only data the LR patch is what cropping the LR of the *whole* image would give (the DIV2K
  and benchmark protocol: LR = MATLAB bicubic of the full HR image, 8-bit), not the downscale of the
  cut-out HR patch, whose border pixels would see mirrored padding instead of the real neighbours. It
  is computed from the HR patch plus `LR_CONTEXT` LR pixels of real surroundings on each side (mirrored
  at the image border exactly as MATLAB mirrors the whole image), then the context is dropped. This
  costs one small resize per patch and needs no stored whole-image LR, so it works for cached and
  uncached images alike and batches on a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from srgan.errors import SrganError
from srgan.resize import matlab_bicubic_resize

# Flips and 90-degree rotations of a square: the 8 elements of its symmetry group.
DIHEDRAL_TRANSFORMS = 8

# LR pixels of surrounding image kept around a patch while downscaling. The antialiased bicubic kernel
# for a downscale by s spans 4 LR pixels (2 each side), so 3 leaves every kept pixel unaffected by the
# edge of the context.
LR_CONTEXT = 3


def apply_dihedral(pixels: Tensor, code: int) -> Tensor:
    """Transform square images (..., S, S) by one of the 8 flips/rotations, `code` in 0..7.

    Bit 2 transposes, bit 1 flips vertically, bit 0 flips horizontally (in that order); code 0 is the
    identity. Flips and transposes commute with MATLAB's bicubic resize, so transforming an HR patch
    and its LR patch with the same code keeps them a valid pair.
    """
    if code & 4:
        pixels = pixels.transpose(-2, -1)
    flip_dims = [dim for bit, dim in ((2, -2), (1, -1)) if code & bit]
    return pixels.flip(flip_dims) if flip_dims else pixels


def origin_range(length: int, hr_patch: int, scale: int, inner_fraction: float | None) -> tuple[int, int]:
    """Lowest and highest patch origin along an axis of `length` HR pixels, both multiples of `scale`.

    With `inner_fraction` f, the patch lies inside the centred f * length stretch of the axis (the
    face-patch strategy: for centred subjects, keep patches off the background). Where that stretch is
    shorter than the patch, the patch is centred on the axis.
    """
    if inner_fraction is None:
        return 0, (length - hr_patch) // scale * scale
    margin = length * (1 - inner_fraction) / 2
    low = math.ceil(margin / scale) * scale
    high = math.floor((length - margin - hr_patch) / scale) * scale
    if low > high:
        low = high = (length - hr_patch) // 2 // scale * scale
    return low, high


def origin_from_uniform(uniform: float, low: int, high: int, scale: int) -> int:
    """Map a uniform draw in [0, 1) to one of the origins low, low + scale, ..., high."""
    steps = (high - low) // scale + 1
    return low + scale * min(int(uniform * steps), steps - 1)


def patch_origin(
    image_size: tuple[int, int], uniforms: Sequence[float], hr_patch: int, scale: int, inner_fraction: float | None
) -> tuple[int, int]:
    """(top, left) of a patch in an image of `image_size` (height, width), from two uniform draws in [0, 1)."""
    top, left = (
        origin_from_uniform(uniform, *origin_range(length, hr_patch, scale, inner_fraction), scale)
        for length, uniform in zip(image_size, uniforms)
    )
    return top, left


def check_scale(scale: int) -> None:
    if not isinstance(scale, int) or scale < 1:
        raise SrganError(f"scale={scale}: must be a positive integer such as 2, 3 or 4")


def check_patch_size(hr_patch: int, scale: int) -> None:
    check_scale(scale)
    if hr_patch < scale or hr_patch % scale:
        raise SrganError(f"hr_patch={hr_patch}: must be a positive multiple of scale={scale}, e.g. {scale * 24}")


def check_inner_fraction(inner_fraction: float | None) -> None:
    if inner_fraction is not None and not 0 < inner_fraction <= 1:
        raise SrganError(f"inner_fraction={inner_fraction}: must be in (0, 1], e.g. 0.5 for the inner half")


def _mirrored_indices(start: int, count: int, length: int, device: torch.device) -> Tensor:
    """Indices start .. start+count-1 folded back into 0..length-1 like MATLAB's symmetric padding."""
    indices = torch.arange(start, start + count, device=device).remainder(2 * length)
    return torch.where(indices >= length, 2 * length - 1 - indices, indices)


def crop_with_context(image: Tensor, top: int, left: int, hr_patch: int, scale: int) -> Tensor:
    """The (C, P + 2c, P + 2c) HR region around a patch, c = LR_CONTEXT * scale, mirrored at image borders."""
    context = LR_CONTEXT * scale
    height, width = image.shape[-2:]
    rows = _mirrored_indices(top - context, hr_patch + 2 * context, height, image.device)
    columns = _mirrored_indices(left - context, hr_patch + 2 * context, width, image.device)
    return image[:, rows][:, :, columns]


def lr_from_context_crops(crops: Tensor, scale: int) -> Tensor:
    """uint8 LR patches from `crop_with_context` outputs, (C,S,S) or (N,C,S,S): MATLAB bicubic, context dropped.

    The uint8 path of the resize rounds like MATLAB on 8-bit images, so the result equals an LR file
    made by `imresize(hr, 1/scale)` and cropped to the patch.
    """
    lr = matlab_bicubic_resize(crops, scale=1 / scale)
    return lr[..., LR_CONTEXT:-LR_CONTEXT, LR_CONTEXT:-LR_CONTEXT]
