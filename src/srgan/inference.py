"""The tiled upscaling engine (`Upscaler`) and the `upscale()` Python API.

Tiling. The image stays in host memory; windows are cut from it, sent to the device a batch at a time,
and their outputs are accumulated on the host. Along each axis, windows of `tile + 2 * overlap + ramp`
input pixels overlap their neighbours; in each window's output, `overlap` pixels along an inner edge
(one shared with a neighbour, not the image border) get weight 0, the next `ramp` pixels rise along a
raised cosine, and the weights of all windows covering a pixel sum to 1. Every pixel that gets weight
therefore saw at least `overlap` pixels of real image around it: for a convolutional network whose
receptive field reaches no further, the tiled output equals the untiled one (up to float rounding).
At the image border a window simply ends, where the network pads exactly as it would untiled. For
networks that see further (RRDBNet), the ramp fades one tile into the next so no seam shows.

Memory. Windows are run one row of windows at a time and blended into a float band as tall as one
window (plus the rows still shared with the next row of windows); rows no later window touches are
handed on finished. `upscale_pixels` quantises them straight into the final (H, W, C) uint8/uint16
array, so a result costs C bytes per output pixel (2C at 16 bits) plus the band, which the tile sets;
nothing image-sized is ever held in float. `check_memory` refuses, before allocating, a result the
machine cannot hold.

Alpha. Colour and alpha are upscaled separately. Fully transparent pixels first get the colour of the
nearest visible ones (a pull-push fill), so at a hard alpha edge the network sees one colour on both
sides and nothing dark or light can bleed into the visible edge. Where the input stored colour under
alpha = 0, a second pass upscales it as given and the output keeps it wherever the upscaled alpha is 0.
Alpha goes through MATLAB bicubic (`alpha="bicubic"`) or through the model as a gray image
(`alpha="model"`); a 4-channel model gets RGBA as is.

Precision. `"auto"` runs fp16 autocast on CUDA for models marked `fp16_safe`, fp32 elsewhere. Half
precision is only used on CUDA: asking for fp16/bf16 on another device warns and runs fp32. A tile
whose half-precision output holds NaN or inf is run again in fp32.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from srgan.errors import SrganError

# Context pixels on each inner side of a tile (input pixels): covers the receptive field of
# SRVGGNetCompact (17) and EDSR-baseline (33), and makes seams invisible for the deeper RRDBNet.
DEFAULT_TILE_OVERLAP = 32
# Tile size on CPU and MPS, where free memory is not measured: keeps a x4 RRDBNet under ~2 GB.
DEFAULT_HOST_TILE = 384
# Bounds of the automatic CUDA tile size, and the smallest tile OOM halving goes down to.
MAX_AUTO_TILE = 2048
MIN_TILE = 16
# Share of free CUDA memory the automatic tile size may fill (the rest absorbs fragmentation).
CUDA_MEMORY_SHARE = 0.6
# Side of the probe tile used to measure CUDA memory per pixel.
PROBE_SIDE = 64
# Below this upscaled alpha a pixel is invisible: it takes the colour stored under transparency.
ALPHA_FLOOR = 1.0 / 512
# How alpha is upscaled next to the colour (models with 4 channels take RGBA themselves).
ALPHA_MODES = ("bicubic", "model")

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

ProgressCallback = Callable[[int, int], None]


def select_device(device: str | torch.device | None = None, *, cpu_hint: str = "--device cpu") -> torch.device:
    """`device` checked for availability, or the best one present (cuda, then mps, then cpu).

    `cpu_hint` tells the user how to ask for the CPU instead (a command-line option, a config key).
    """
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise SrganError(f"device {device!r}: not a device name; use cpu, cuda, cuda:N, mps or auto") from None
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise SrganError(f"device {device}: CUDA is not available on this machine; use {cpu_hint}")
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise SrganError(f"device {device}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif chosen.type == "mps" and not torch.backends.mps.is_available():
        raise SrganError(f"device {device}: Apple MPS is not available on this machine; use {cpu_hint}")
    elif chosen.type not in ("cpu", "cuda", "mps"):
        raise SrganError(f"device {device}: unsupported device type; use cpu, cuda, cuda:N or mps")
    return chosen


def select_precision(precision: str, device: torch.device, *, fp16_safe: bool) -> torch.dtype:
    """The compute dtype for `precision` ("auto", "fp32", "fp16", "bf16") on `device`."""
    if precision == "auto":
        return torch.float16 if device.type == "cuda" and fp16_safe else torch.float32
    if precision not in PRECISIONS:
        raise SrganError(f"precision {precision!r}: unknown; use auto, fp32, fp16 or bf16")
    if precision != "fp32" and device.type != "cuda":
        warnings.warn(f"{precision} is only used on CUDA; running fp32 on {device.type}", UserWarning, stacklevel=3)
        return torch.float32
    return PRECISIONS[precision]


@dataclass(frozen=True)
class _AxisPlan:
    """Where windows start along one image axis, their common length, and their blend weights."""

    starts: list[int]
    window: int
    weights: list[torch.Tensor]  # per window, over its output pixels; they sum to 1 at every pixel


def _ramp_length(overlap: int) -> int:
    return overlap // 2 + 1 if overlap else 0


def _plan_axis(length: int, tile: int, overlap: int, scale: int) -> _AxisPlan:
    ramp = _ramp_length(overlap)
    window = min(length, tile + 2 * overlap + ramp)
    count = max(1, math.ceil((length - 2 * overlap - ramp) / tile)) if window < length else 1
    # Spread windows evenly from border to border; neighbours then overlap by at least 2*overlap+ramp.
    starts = [k * (length - window) // (count - 1) for k in range(count)] if count > 1 else [0]

    rise = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(ramp * scale, dtype=torch.float64) + 0.5) / (ramp * scale))
    profiles = []
    for index in range(count):
        profile = torch.ones(window * scale, dtype=torch.float64)
        if index > 0:  # inner edge on the left: context only, then fade in
            profile[: overlap * scale] = 0
            profile[overlap * scale : (overlap + ramp) * scale] *= rise
        if index < count - 1:  # inner edge on the right
            end = window * scale
            profile[end - overlap * scale :] = 0
            profile[end - (overlap + ramp) * scale : end - overlap * scale] *= rise.flip(0)
        profiles.append(profile)
    total = torch.zeros(length * scale, dtype=torch.float64)
    for start, profile in zip(starts, profiles, strict=True):
        total[start * scale : start * scale + window * scale] += profile
    weights = [
        (profile / total[start * scale : start * scale + window * scale]).float()
        for start, profile in zip(starts, profiles, strict=True)
    ]
    return _AxisPlan(starts, window, weights)


def _grow_band(kept: torch.Tensor | None, channels: int, rows: int, width: int) -> torch.Tensor:
    """A zeroed float band of at least `rows` rows holding `kept` at its top.

    Allocated through numpy so that `tracemalloc` sees it: the memory test bounds what the assembly holds.
    """
    height = max(rows, 0 if kept is None else kept.shape[1])
    band = torch.from_numpy(np.zeros((channels, height, width), np.float32))
    if kept is not None:
        band[:, : kept.shape[1]] = kept
    return band


class Upscaler:
    """Runs a `LoadedModel` over images of any size, tile by tile (see the module docstring).

    `tile`: tile side in input pixels, without the overlap context (None: automatic, from free
    memory on CUDA, `DEFAULT_HOST_TILE` elsewhere; 0: the whole image at once). On CUDA out-of-memory
    the tile is halved and the image retried; the smaller tile is kept for later images.
    `tile_overlap`: context pixels on each inner tile side (default `DEFAULT_TILE_OVERLAP`).
    `batch_tiles`: tiles sent to the device together. The model's module is moved to `device`.
    `runtime`: who runs the network (`srgan.runtimes.RUNTIMES`): "auto" takes, on a CPU, the runtime
    measured fastest for the architecture among those installed and within the memory budget
    (`srgan.runtimes.CPU_CHOICES`), PyTorch elsewhere; a named one is used or refused (SrganError
    saying why). All compute in fp32.
    `self.runtime` records the choice and `self.runtime_reason` why it was made.
    """

    def __init__(
        self,
        model,
        *,
        device: str | torch.device | None = None,
        precision: str = "auto",
        tile: int | None = None,
        tile_overlap: int | None = None,
        batch_tiles: int = 1,
        runtime: str = "auto",
    ):
        from srgan.runtimes import choose_runtime, runtime_module

        if tile is not None and tile < 0:
            raise SrganError(f"tile {tile}: must be 0 (no tiling) or a positive number of pixels")
        if tile_overlap is not None and tile_overlap < 0:
            raise SrganError(f"tile overlap {tile_overlap}: must be 0 or more pixels")
        if batch_tiles < 1:
            raise SrganError(f"batch of tiles {batch_tiles}: must be at least 1")
        self.model = model
        self.device = select_device(device)
        self.compute_dtype = select_precision(precision, self.device, fp16_safe=model.fp16_safe)
        self.tile = tile
        self.tile_overlap = DEFAULT_TILE_OVERLAP if tile_overlap is None else tile_overlap
        self.batch_tiles = batch_tiles
        choice = choose_runtime(runtime, model, self.device.type)
        self.runtime, self.runtime_reason = choice.runtime, choice.reason
        if self.runtime != "torch":
            try:
                self.module = runtime_module(self.runtime, model)
            except Exception as error:  # noqa: BLE001 - an exporter or runtime failure of any kind
                if runtime != "auto":
                    raise
                # auto only ever gains speed from another runtime: PyTorch still computes the same output
                message = str(error).splitlines()[0] if str(error) else type(error).__name__
                warnings.warn(f"{self.runtime} could not take {model.name} ({message}); using PyTorch", stacklevel=2)
                self.runtime, self.runtime_reason = "torch", f"auto: {self.runtime} failed: {message}"
        if self.runtime != "torch":
            self.memory_format = torch.contiguous_format  # the other runtimes read plain NCHW arrays
        else:
            # channels_last is measurably faster for these convolutions on CPU (SRResNet x4: ~1.4 s vs ~2.3 s)
            self.memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
            self.module = model.module.to(self.device, memory_format=self.memory_format).eval()
        self.fp32_fallbacks = 0  # tiles rerun in fp32 after a non-finite half-precision result

    @property
    def scale(self) -> int:
        return self.model.scale

    def upscale_tensor(self, x: torch.Tensor, progress: ProgressCallback | None = None) -> torch.Tensor:
        """(N, C, H, W) float in [0, 1] on the CPU -> (N, C_out, H*scale, W*scale) on the CPU, clamped.

        `progress(done, total)` is called after each batch of tiles.
        """
        if x.dim() != 4 or x.shape[1] != self.model.in_channels:
            raise ValueError(
                f"expected (N, {self.model.in_channels}, H, W) input for {self.model.name}, got {tuple(x.shape)}"
            )
        x = x.detach().to("cpu", torch.float32)
        results = []
        for image in x:
            output = {}

            def keep(top: int, rows: torch.Tensor, output=output) -> None:
                output[top] = rows.clone()

            self.run_tiled(image[None], self._forward, keep, progress)
            results.append(torch.cat([output[top] for top in sorted(output)], dim=1))
        return torch.stack(results)

    def run_tiled(
        self,
        image: torch.Tensor,
        forward: Callable[[torch.Tensor], torch.Tensor],
        emit: Callable[[int, torch.Tensor], None],
        progress: ProgressCallback | None = None,
    ) -> None:
        """Run `forward` over the tiles of a (1, C, H, W) image, blending them band by band.

        `forward` maps a batch of windows (N, C, h, w) to their (N, C_out, h*scale, w*scale) outputs;
        `emit(top, rows)` receives the finished output rows (C_out, n, W*scale), clamped to [0, 1],
        from top to bottom exactly once each. `rows` is reused afterwards: copy what you keep.
        """
        height, width = image.shape[-2:]
        while True:
            tile = self._tile_size(image) or max(height, width)
            try:
                return self._upscale_tiled(image, tile, forward, emit, progress)
            except torch.OutOfMemoryError:
                smaller = tile // 2
                if smaller < MIN_TILE:
                    raise SrganError(
                        f"{self.device}: out of memory even with {tile}-pixel tiles; "
                        "free device memory or use --device cpu"
                    ) from None
            # out of the except block, so the failed attempt's tensors are released before retrying
            self.tile = smaller
            warnings.warn(f"out of memory on {self.device}; retrying with {smaller}-pixel tiles", stacklevel=2)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    def _tile_size(self, image: torch.Tensor) -> int:
        if self.tile is None:
            self.tile = self._auto_tile_size(image.shape[1]) if self.device.type == "cuda" else DEFAULT_HOST_TILE
        return self.tile

    def _auto_tile_size(self, channels: int) -> int:
        """The largest tile whose batch should fit in a share of the free CUDA memory."""
        free_bytes, _ = torch.cuda.mem_get_info(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        baseline = torch.cuda.memory_allocated(self.device)
        self._forward(torch.rand(self.batch_tiles, channels, PROBE_SIDE, PROBE_SIDE))
        bytes_per_pixel = (torch.cuda.max_memory_allocated(self.device) - baseline) / PROBE_SIDE**2
        window = math.isqrt(int(CUDA_MEMORY_SHARE * free_bytes / max(bytes_per_pixel, 1.0)))
        tile = window - 2 * self.tile_overlap - _ramp_length(self.tile_overlap)
        return max(MIN_TILE, min(MAX_AUTO_TILE, tile // 16 * 16))

    def _upscale_tiled(self, image, tile, forward, emit, progress) -> None:
        scale = self.scale
        height, width = image.shape[-2:]
        rows = _plan_axis(height, tile, self.tile_overlap, scale)
        cols = _plan_axis(width, tile, self.tile_overlap, scale)
        total = len(rows.starts) * len(cols.starts)
        expected = (rows.window * scale, cols.window * scale)
        band = None  # blended output rows from band_top down, still open to the next row of windows
        band_top = 0
        done = 0
        for r, row_start in enumerate(rows.starts):
            top = row_start * scale
            for first in range(0, len(cols.starts), self.batch_tiles):
                batch = range(first, min(first + self.batch_tiles, len(cols.starts)))
                inputs = torch.cat(
                    [
                        image[..., row_start : row_start + rows.window, cols.starts[c] : cols.starts[c] + cols.window]
                        for c in batch
                    ]
                )
                results = forward(inputs)
                if tuple(results.shape[-2:]) != expected:
                    raise SrganError(
                        f"{self.model.name}: returned {tuple(results.shape[-2:])} pixels for a "
                        f"{rows.window}x{cols.window} input, not x{scale}; the model file's scale is wrong"
                    )
                if band is None or band.shape[1] < top + expected[0] - band_top:
                    band = _grow_band(band, results.shape[1], top + expected[0] - band_top, width * scale)
                for c, result in zip(batch, results, strict=True):
                    left = cols.starts[c] * scale
                    weight = rows.weights[r][:, None] * cols.weights[c][None, :]
                    band[:, top - band_top : top - band_top + expected[0], left : left + expected[1]] += result * weight
                done += len(batch)
                if progress is not None:
                    progress(done, total)
            finished = rows.starts[r + 1] * scale if r + 1 < len(rows.starts) else height * scale
            emit(band_top, band[:, : finished - band_top].clamp_(0, 1))
            # the rows the next row of windows still adds to move up to the top of a fresh band
            band = _grow_band(band[:, finished - band_top :], band.shape[0], 0, width * scale)
            band_top = finished

    def _forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Run one batch of windows on the device; float32 result on the CPU."""
        batch = inputs.to(self.device).contiguous(memory_format=self.memory_format)
        with torch.inference_mode():
            if self.compute_dtype == torch.float32:
                return self.module(batch).float().cpu()
            with torch.autocast(self.device.type, dtype=self.compute_dtype):
                result = self.module(batch).float()
            broken = ~torch.isfinite(result).flatten(1).all(dim=1)
            if broken.any():
                # half precision overflowed on these tiles: redo just them in fp32
                result[broken] = self.module(batch[broken]).float()
                self.fp32_fallbacks += int(broken.sum())
            return result.cpu()


def fill_transparent(rgb: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """`rgb` (3, H, W) with each fully transparent pixel given the colour of the visible pixels nearest it.

    Pull-push: visible colour is averaged down a pyramid until every cell has some, then pushed back
    up into the holes only. Visible pixels (alpha > 0) keep their colour exactly.
    """
    import torch.nn.functional as F

    known = (alpha > 0).float()
    if not bool(known.any()):
        return rgb

    def halve(plane: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(plane[None], 2, ceil_mode=True)[0]

    levels = [(rgb * known, known)]
    while bool((levels[-1][1] == 0).any()):
        colour, weight = levels[-1]
        levels.append((halve(colour), halve(weight)))
    colour, weight = levels.pop()
    filled = colour / weight
    for colour, weight in reversed(levels):
        pushed = F.interpolate(filled[None], size=colour.shape[-2:], mode="nearest")[0]
        filled = torch.where(weight > 0, colour / weight.clamp_min(1e-12), pushed)
    return torch.where(known > 0, rgb, filled)


def result_size(height: int, width: int, scale: int, outscale: float | None) -> tuple[int, int]:
    """(height, width) of the upscaled image; `outscale` resizes after the model's own `scale`."""
    if outscale is None:
        return height * scale, width * scale
    size = (round(height * outscale), round(width * outscale))
    if size[0] < 1 or size[1] < 1:
        raise SrganError(f"outscale {outscale:g}: the result would be {size[1]}x{size[0]} pixels; use a larger one")
    return size


def result_bytes(height: int, width: int, channels: int, bit_depth: int, scale: int, outscale: float | None) -> int:
    """Host memory `upscale_pixels` holds for a result, beyond the tile-sized band and the network.

    C bytes per output pixel (2C at 16 bits); with an `outscale` other than the model's, the model-scale
    result is held too while it is resized into the final one.
    """
    per_pixel = channels * (2 if bit_depth == 16 else 1)
    final = math.prod(result_size(height, width, scale, outscale)) * per_pixel
    if outscale is not None and result_size(height, width, scale, outscale) != (height * scale, width * scale):
        final += height * scale * width * scale * per_pixel
    return final


def available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (Linux MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(needed: int, what: str, *, advice: str = "use a smaller --outscale or upscale a crop") -> None:
    """Raise `SrganError` before allocating `needed` bytes the machine does not have available."""
    free = available_memory()
    if free is not None and needed > free:
        raise SrganError(
            f"{what}: needs about {needed / 2**30:.1f} GiB of memory, more than the "
            f"{free / 2**30:.1f} GiB available; {advice}"
        )


def _image_forward(upscaler: Upscaler, alpha_mode: str, keep_hidden: bool, with_alpha: bool):
    """The per-window function for an RGB (+ filled-alpha) image (see the module docstring, Alpha)."""
    from srgan.resize import matlab_bicubic_resize

    if not with_alpha or upscaler.model.in_channels == 4:
        return upscaler._forward

    def forward(windows: torch.Tensor) -> torch.Tensor:
        alpha = windows[:, 3:4]
        colour = upscaler._forward(windows[:, :3])
        if alpha_mode == "model":
            alpha_up = upscaler._forward(alpha.expand(-1, 3, -1, -1)).mean(dim=1, keepdim=True)
        else:
            alpha_up = matlab_bicubic_resize(alpha, scale=upscaler.scale)
        alpha_up = alpha_up.clamp(0, 1)
        if keep_hidden:  # invisible output pixels take the colour the input stored there
            colour = torch.where(alpha_up > ALPHA_FLOOR, colour, upscaler._forward(windows[:, 4:7]))
        return torch.cat([colour, alpha_up], dim=1)

    return forward


def _tiled_image(upscaler, rgb, alpha, alpha_mode, emit, progress) -> int:
    """Run one image through the engine, emitting finished RGB(A) rows; returns the output channels."""
    if alpha_mode not in ALPHA_MODES:
        raise SrganError(f"alpha {alpha_mode!r}: unknown; use one of {', '.join(ALPHA_MODES)}")
    model_channels = upscaler.model.in_channels
    if model_channels not in (3, 4):
        raise SrganError(f"{upscaler.model.name}: takes {model_channels}-channel input; images need 3 or 4")
    with_alpha = alpha is not None and (model_channels == 4 or not bool(alpha.min() >= 1.0))
    if model_channels == 4:
        planes = [rgb, alpha if alpha is not None else torch.ones_like(rgb[:1])]
        keep_hidden = False
    elif with_alpha:
        hidden = (alpha == 0) & (rgb.amax(dim=0, keepdim=True) > 0)
        keep_hidden = bool(hidden.any())
        planes = [fill_transparent(rgb, alpha), alpha, *([rgb] if keep_hidden else [])]
    else:
        planes, keep_hidden = [rgb], False
    forward = _image_forward(upscaler, alpha_mode, keep_hidden, with_alpha)
    image = planes[0] if len(planes) == 1 else torch.cat(planes)  # no copy of a plain RGB image
    upscaler.run_tiled(image[None], forward, emit, progress)
    return 4 if (with_alpha or model_channels == 4) else 3


def upscale_image(
    upscaler: Upscaler,
    rgb: torch.Tensor,
    alpha: torch.Tensor | None = None,
    *,
    outscale: float | None = None,
    alpha_mode: str = "bicubic",
    progress: ProgressCallback | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Upscale one (3, H, W) RGB image and its optional (1, H, W) alpha; float in [0, 1], held whole.

    For files and large images use `upscale_pixels`, which never holds the result in float.
    `outscale` resizes the result to `round(H * outscale) x round(W * outscale)` after the model.
    An opaque alpha (all 1) is upscaled by bicubic without going through the network.
    """
    from srgan.resize import matlab_bicubic_resize

    height, width = rgb.shape[-2:]
    size = result_size(height, width, upscaler.scale, outscale)
    pieces: dict[int, torch.Tensor] = {}
    _tiled_image(upscaler, rgb, alpha, alpha_mode, lambda top, rows: pieces.__setitem__(top, rows.clone()), progress)
    result = torch.cat([pieces[top] for top in sorted(pieces)], dim=1)
    if tuple(result.shape[-2:]) != size:
        result = matlab_bicubic_resize(result, size=size).clamp(0, 1)
    colour = result[:3]
    if alpha is None:
        return colour, None
    if result.shape[0] == 4:
        return colour, result[3:]
    return colour, matlab_bicubic_resize(alpha, size=size).clamp(0, 1)


def upscale_pixels(
    upscaler: Upscaler,
    rgb: torch.Tensor,
    alpha: torch.Tensor | None = None,
    *,
    bit_depth: int = 8,
    outscale: float | None = None,
    alpha_mode: str = "bicubic",
    progress: ProgressCallback | None = None,
    name: str = "image",
) -> np.ndarray:
    """Upscale one image straight into its final (H', W', 3 or 4) uint8 (or uint16) array.

    The result is assembled band by band (see Memory in the module docstring); `check_memory` refuses
    one the machine cannot hold before anything is allocated. `name` labels that message.
    """
    from srgan.resize import resize_array_in_strips

    height, width = rgb.shape[-2:]
    size = result_size(height, width, upscaler.scale, outscale)
    channels = 4 if alpha is not None else 3
    out_w, out_h = size[1], size[0]
    check_memory(
        result_bytes(height, width, channels, bit_depth, upscaler.scale, outscale), f"{name}: a {out_w}x{out_h} result"
    )
    dtype = np.uint16 if bit_depth == 16 else np.uint8
    peak = float(np.iinfo(dtype).max)
    array = np.empty((height * upscaler.scale, width * upscaler.scale, channels), dtype)

    def store(top: int, rows: torch.Tensor) -> None:
        # rows are clamped and discarded after this: quantise in place, no band-sized temporaries
        array[top : top + rows.shape[1], :, : rows.shape[0]] = rows.mul_(peak).round_().permute(1, 2, 0).numpy()

    produced = _tiled_image(upscaler, rgb, alpha, alpha_mode, store, progress)
    if channels == 4 and produced == 3:  # an opaque alpha channel stays opaque
        array[..., 3] = np.iinfo(dtype).max
    if size != array.shape[:2]:
        array = resize_array_in_strips(array, size)
    return array


@lru_cache(maxsize=4)
def _cached_model(name: str):
    from srgan.models import DEFAULT_MODEL, load_model

    return load_model(DEFAULT_MODEL if name == "default" else name)


def upscale(
    image,
    model="default",
    *,
    outscale: float | None = None,
    device: str | None = None,
    precision: str = "auto",
    tile: int | None = None,
    alpha: str = "bicubic",
):
    """Upscale a PIL image or a numpy array and return the same kind.

    `model` is a name or path for `srgan.load_model` ("default": `srgan.models.DEFAULT_MODEL`;
    named models are loaded once and kept) or a `LoadedModel`. Arrays are (H, W) or (H, W, C) with
    C in {1, 2, 3, 4}, uint8, uint16 or float in [0, 1]; the result keeps the dtype and layout.
    PIL images keep gray and alpha (palette and CMYK come back as RGB or RGBA) and the ICC profile.
    `alpha` is how an alpha channel is upscaled: "bicubic" or "model" (through the network, as gray).
    """
    from PIL import Image

    from srgan.imageio import LoadedImage, array_to_pil, match_layout, pil_to_array

    loaded_model = _cached_model(model) if isinstance(model, str) else model
    if isinstance(image, Image.Image):
        array = pil_to_array(image)
    elif isinstance(image, np.ndarray):
        array = image[..., None] if image.ndim == 2 else image
        if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
            raise SrganError(f"array of shape {image.shape}: expected (H, W) or (H, W, C) with C in 1..4")
        if array.dtype not in (np.uint8, np.uint16) and not np.issubdtype(array.dtype, np.floating):
            raise SrganError(f"array of type {array.dtype}: expected uint8, uint16 or float in [0, 1]")
    else:
        raise TypeError(f"upscale() takes a PIL image or a numpy array, not {type(image).__name__}")

    source = LoadedImage(array=array, bit_depth=16 if array.dtype == np.uint16 else 8)
    upscaler = Upscaler(loaded_model, device=device, precision=precision, tile=tile)
    if np.issubdtype(array.dtype, np.floating):
        colour, alpha_up = upscale_image(
            upscaler, source.to_tensor(), source.alpha_tensor(), outscale=outscale, alpha_mode=alpha
        )
        pixels = (colour if alpha_up is None else torch.cat([colour, alpha_up])).permute(1, 2, 0).numpy()
        result = match_layout(pixels.astype(array.dtype), source)
    else:
        pixels = upscale_pixels(
            upscaler,
            source.to_tensor(),
            source.alpha_tensor(),
            bit_depth=source.bit_depth,
            outscale=outscale,
            alpha_mode=alpha,
        )
        result = match_layout(pixels, source)
    if isinstance(image, Image.Image):
        upscaled = array_to_pil(result)
        if image.info.get("icc_profile"):
            upscaled.info["icc_profile"] = image.info["icc_profile"]
        return upscaled
    return result[..., 0] if image.ndim == 2 else result
