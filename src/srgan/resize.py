"""MATLAB-compatible bicubic `imresize` in torch: the one resize used everywhere in srgan.

The SR literature makes its low-resolution inputs with MATLAB's `imresize(img, 1/s, 'bicubic')`, and
published PSNR/SSIM tables are only comparable when the LR images are made the same way. This module
reproduces MATLAB's algorithm:

- the Keys cubic kernel with a = -0.5;
- MATLAB's pixel-centre mapping: output pixel x (1-based) samples input position
  `u = x / scale + 0.5 * (1 - 1 / scale)`;
- on downscaling with antialiasing, the kernel is stretched by 1/scale (a low-pass filter), so each
  output pixel averages over 4/scale input pixels;
- taps that fall outside the image are mirrored back inside (MATLAB's symmetric padding, which repeats
  the edge pixel);
- the weights of each output pixel are normalised to sum to one;
- the two dimensions are resized one after the other, the one with the smaller scale first;
- a uint8 image is resized as MATLAB resizes one: the result of each pass is rounded (halves up) and
  clamped to 0..255 before the next pass. This is what makes the standard LR benchmark files
  (`Set5_LR_bicubic/X4/...`) come out bit-exact; the float path differs from them by up to 2 levels.

The work per dimension is a product with a banded weight matrix, done block by block (see
`_resize_dim`): it costs O(output size x band), runs batched on any device and suits large images.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

# The cubic kernel is non-zero on (-2, 2).
_CUBIC_SUPPORT = 4.0
# Inputs read per block of outputs: wide enough for efficient matmuls, narrow enough that the
# zeros of the banded weight matrix cost little.
_BAND_INPUTS = 128


def _cubic_kernel(distance: Tensor) -> Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's `cubic`)."""
    absolute = distance.abs()
    absolute2 = absolute * absolute
    absolute3 = absolute2 * absolute
    near = (1.5 * absolute3 - 2.5 * absolute2 + 1.0) * (absolute <= 1)
    far = (-0.5 * absolute3 + 2.5 * absolute2 - 4.0 * absolute + 2.0) * ((absolute > 1) & (absolute <= 2))
    return near + far


def _contributions(in_length: int, out_length: int, scale: float, antialias: bool) -> tuple[Tensor, Tensor]:
    """Input indices (0-based) and weights, both (out_length, taps), for one dimension.

    Computed in float64 on the CPU: the index math must match MATLAB's double precision exactly, and the
    tables are tiny next to the image.
    """
    stretch = antialias and scale < 1
    kernel_width = _CUBIC_SUPPORT / scale if stretch else _CUBIC_SUPPORT
    # 1-based output coordinates and their positions in input space, as MATLAB computes them.
    x = torch.arange(1, out_length + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left.unsqueeze(1) + torch.arange(taps, dtype=torch.float64).unsqueeze(0)
    distance = u.unsqueeze(1) - indices
    weights = scale * _cubic_kernel(scale * distance) if stretch else _cubic_kernel(distance)
    weights = weights / weights.sum(dim=1, keepdim=True)
    # Mirror out-of-range taps: the sequence 1..n, n..1 repeated (edge pixel included twice).
    mirrored = torch.cat([torch.arange(in_length), torch.arange(in_length - 1, -1, -1)])
    zero_based = (indices.long() - 1).remainder(2 * in_length)
    return mirrored[zero_based], weights


def _round_to_uint8_range(x: Tensor) -> Tensor:
    """MATLAB's double -> uint8 conversion: round halves up, saturate at 0 and 255."""
    return torch.floor(x + 0.5).clamp_(0, 255)


def _resize_dim(x: Tensor, dim: int, out_length: int, scale: float, antialias: bool) -> Tensor:
    """Resize along `dim` (height or width) as a banded matrix product, one block of outputs at a time.

    Each block of outputs reads only a narrow band of inputs, so a small dense weight matrix times that
    band does the work on the fast matmul kernels of any device, without ever forming the full
    (out x in) matrix that would be quadratic in the image size.
    """
    indices, weights = _contributions(x.shape[dim], out_length, scale, antialias)
    along_height = dim == x.dim() - 2
    block_length = max(1, round(_BAND_INPUTS * scale))
    pieces = []
    for start in range(0, out_length, block_length):
        block_indices = indices[start : start + block_length]
        first, last = int(block_indices.min()), int(block_indices.max())
        # Mirrored taps can hit the same input twice; scatter_add sums their weights.
        block = torch.zeros(len(block_indices), last - first + 1, dtype=torch.float64)
        block.scatter_add_(1, block_indices - first, weights[start : start + block_length])
        block = block.to(device=x.device, dtype=x.dtype)
        band = x.narrow(dim, first, last - first + 1)
        pieces.append(block @ band if along_height else band @ block.T)
    return torch.cat(pieces, dim=dim)


def matlab_bicubic_resize(
    x: Tensor,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> Tensor:
    """Resize (N,C,H,W) or (C,H,W) images like MATLAB's `imresize(..., 'bicubic')`.

    Give either `scale` (< 1 shrinks; the output is `ceil(H * scale) x ceil(W * scale)`, as in MATLAB)
    or `size=(height, width)` (each dimension then uses its own scale, out / in).

    Floating-point input keeps its dtype and range; values are not clamped (bicubic overshoots
    slightly at edges; callers that need [0, 1] clamp themselves). uint8 input (0..255) returns uint8,
    computed in float64 with MATLAB's rounding after each pass, which matches MATLAB on 8-bit images
    exactly; it needs a device with float64 (CPU, CUDA).
    """
    if (scale is None) == (size is None):
        raise ValueError("matlab_bicubic_resize: give exactly one of scale= or size=")
    if x.dim() not in (3, 4):
        raise ValueError(f"matlab_bicubic_resize: expected (C,H,W) or (N,C,H,W), got shape {tuple(x.shape)}")
    is_uint8 = x.dtype == torch.uint8
    if not (x.is_floating_point() or is_uint8):
        raise ValueError(f"matlab_bicubic_resize: expected a floating-point or uint8 tensor, got {x.dtype}")
    in_height, in_width = x.shape[-2:]
    if size is not None:
        out_height, out_width = int(size[0]), int(size[1])
        if out_height < 1 or out_width < 1:
            raise ValueError(f"matlab_bicubic_resize: size must be positive, got {size}")
        scales = (out_height / in_height, out_width / in_width)
    else:
        if scale <= 0:
            raise ValueError(f"matlab_bicubic_resize: scale must be positive, got {scale}")
        out_height, out_width = math.ceil(in_height * scale), math.ceil(in_width * scale)
        scales = (float(scale), float(scale))

    height_dim, width_dim = x.dim() - 2, x.dim() - 1
    passes = [(height_dim, out_height, scales[0]), (width_dim, out_width, scales[1])]
    # MATLAB resizes the dimension with the smaller scale first (height first on a tie). In float the
    # order does not change the result, but with uint8 rounding between passes it does; it is also the
    # cheaper order when downscaling.
    passes.sort(key=lambda resize_pass: resize_pass[2])
    if is_uint8:
        x = x.double()
    for dim, out_length, dim_scale in passes:
        x = _resize_dim(x, dim, out_length, dim_scale, antialias)
        if is_uint8:
            x = _round_to_uint8_range(x)
    return x.to(torch.uint8) if is_uint8 else x


def resize_array_in_strips(array, size: tuple[int, int], *, strip_rows: int = 256):
    """Resize an (H, W, C) uint8/uint16 numpy image to `size` (height, width), a strip of rows at a time.

    The same float resize as `matlab_bicubic_resize` (antialiased), rounded back to the input's type;
    only one strip of rows is ever in float, so a large image costs no more than its two integer copies.
    """
    import numpy as np

    in_height, in_width, _ = array.shape
    out_height, out_width = size
    peak = float(np.iinfo(array.dtype).max)
    indices, weights = _contributions(in_height, out_height, out_height / in_height, True)
    result = np.empty((out_height, out_width, array.shape[2]), array.dtype)
    for start in range(0, out_height, strip_rows):
        strip_indices = indices[start : start + strip_rows]
        first, last = int(strip_indices.min()), int(strip_indices.max())
        block = torch.zeros(len(strip_indices), last - first + 1, dtype=torch.float64)
        block.scatter_add_(1, strip_indices - first, weights[start : start + strip_rows])
        band = torch.from_numpy(np.ascontiguousarray(array[first : last + 1])).permute(2, 0, 1).float() / peak
        rows = _resize_dim(block.float() @ band, 2, out_width, out_width / in_width, True)
        pixels = rows.clamp_(0, 1).mul_(peak).round_().permute(1, 2, 0).numpy()
        result[start : start + len(strip_indices)] = pixels.astype(array.dtype)
    return result


class BicubicUpsampler(nn.Module):
    """The no-weights baseline model: MATLAB bicubic upscaling by `scale` (`--model bicubic`)."""

    def __init__(self, scale: int = 4):
        super().__init__()
        if scale <= 0:
            raise ValueError(f"BicubicUpsampler: scale must be positive, got {scale}")
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return matlab_bicubic_resize(x, scale=self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"
