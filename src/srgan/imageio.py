"""Reading and writing images at the package's edge.

Inside srgan an image is a float RGB tensor in [0, 1]; on disk it can be gray, gray+alpha, RGB, RGBA,
palette, CMYK, 8 or 16 bits, rotated by an EXIF tag and tagged with an ICC profile. `read_image`
turns any of these into a `LoadedImage` (pixels as stored, plus what is needed to write the result
back the same way) and `write_image` writes pixels in the mode, bit depth, format and colour profile
of the original. Bad files raise `SrganError` naming the file and the cause.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from srgan.errors import SrganError
from srgan.fileutil import atomic_write, atomic_write_bytes

# Inputs above this many pixels are refused before decoding (a 10000 x 10000 photo fits).
DEFAULT_MAX_PIXELS = 100_000_000

# Formats whose Pillow writer stores 16-bit gray ("I;16"); every other format gets 8 bits.
_SIXTEEN_BIT_GRAY_FORMATS = {"PNG", "TIFF"}
# Formats that cannot store an alpha channel: alpha is composited over white before writing.
_NO_ALPHA_FORMATS = {"JPEG", "PPM"}
# Pillow modes that are read as RGB (their colour model has no other home in the package).
_CONVERT_TO_RGB_MODES = {"CMYK", "YCbCr", "LAB", "HSV", "RGBX"}


@dataclass
class LoadedImage:
    """An image as stored on disk, with what is needed to write a result back the same way.

    `array` is (H, W, C) uint8 or uint16 with C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA);
    float arrays in [0, 1] are accepted too (the Python API wraps caller's arrays this way).
    """

    array: np.ndarray
    format: str | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    bit_depth: int = 8
    path: Path | None = None
    frames: int = 1  # frames in the file (animated GIF/PNG/WebP); only the first is read

    @property
    def height(self) -> int:
        return self.array.shape[0]

    @property
    def width(self) -> int:
        return self.array.shape[1]

    @property
    def has_alpha(self) -> bool:
        return self.array.shape[2] in (2, 4)

    @property
    def is_gray(self) -> bool:
        return self.array.shape[2] in (1, 2)

    def to_tensor(self) -> torch.Tensor:
        """The colour channels as a (3, H, W) float32 RGB tensor in [0, 1]; gray is repeated."""
        color = self.array[..., :1] if self.is_gray else self.array[..., :3]
        tensor = _array_to_float_tensor(color)
        return tensor.expand(3, -1, -1).contiguous() if self.is_gray else tensor

    def alpha_tensor(self) -> torch.Tensor | None:
        """The alpha channel as a (1, H, W) float32 tensor in [0, 1], or None without alpha."""
        if not self.has_alpha:
            return None
        return _array_to_float_tensor(self.array[..., -1:])


def _array_to_float_tensor(array: np.ndarray) -> torch.Tensor:
    peak = 1.0 if np.issubdtype(array.dtype, np.floating) else float(np.iinfo(array.dtype).max)
    chw = np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32)
    return torch.from_numpy(chw).div_(peak)


def read_image(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read and fully decode an image file; EXIF orientation applied, palette expanded.

    `max_pixels` (None: no limit) refuses huge images before their pixels are decoded. Raises
    `SrganError` naming the file for a missing, empty, truncated, unreadable or too large input.
    """
    path = Path(path)
    if not path.exists():
        raise SrganError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise SrganError(f"{path}: is a folder, not an image file; pass the image files inside it")
    if path.stat().st_size == 0:
        raise SrganError(f"{path}: file is empty (0 bytes); re-export or re-download the image")
    # srgan's own limit (checked below from the header) is the guard; Pillow's decompression-bomb
    # refusal would otherwise undercut it, or quote Pillow's limit instead of the one the user can change.
    Image.MAX_IMAGE_PIXELS = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except UnidentifiedImageError:
            raise SrganError(f"{path}: not an image file (or a format Pillow cannot read)") from None
        except OSError as error:
            raise SrganError(f"{path}: cannot be opened ({error})") from None
        with image:
            pixel_count = image.width * image.height
            if max_pixels and pixel_count > max_pixels:
                raise SrganError(
                    f"{path}: image has {pixel_count:,} pixels ({image.width}x{image.height}), over srgan's "
                    f"limit of {max_pixels:,}; raise --max-pixels if this is intended"
                )
            sixteen_bit_colour = _is_sixteen_bit_colour_png(image)
            image_format = image.format
            frames = getattr(image, "n_frames", 1)
            try:
                image.load()  # decode everything now so a truncated file fails here, not later
                upright = ImageOps.exif_transpose(image)
                orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
            except (OSError, SyntaxError, ValueError, EOFError) as error:
                raise SrganError(f"{path}: image data is truncated or corrupt ({error})") from None
    if sixteen_bit_colour:
        # Pillow's decode above checked the file and gave the upright EXIF; it kept only 8 bits, though.
        array = _read_png16(path, orientation)
    else:
        array = pil_to_array(upright, source=path)
    return LoadedImage(
        array=array,
        format=image_format,
        icc_profile=image.info.get("icc_profile") if image.mode != "CMYK" else None,
        exif=upright.info.get("exif"),
        bit_depth=16 if array.dtype == np.uint16 else 8,
        path=path,
        frames=frames,
    )


def pil_to_array(image: Image.Image, *, source: str | os.PathLike = "image") -> np.ndarray:
    """Pixels of a PIL image as (H, W, C) uint8 or uint16, C in {1, 2, 3, 4}, in the package's modes."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        pass
    elif mode == "1":
        image = image.convert("L")
    elif mode in ("P", "PA"):
        has_transparency = mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if has_transparency else "RGB")
    elif mode == "La":
        image = image.convert("LA")
    elif mode == "RGBa":
        image = image.convert("RGBA")
    elif mode in _CONVERT_TO_RGB_MODES:
        image = image.convert("RGB")
    elif mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16)[..., None]
    elif mode == "I":
        # 32-bit integer gray (some TIFF writers use it for 16-bit data): keep the 16-bit range.
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16)[..., None]
    else:
        raise SrganError(f"{source}: pixel mode {mode!r} is not supported; convert it to 8- or 16-bit RGB first")
    array = np.asarray(image)
    return array[..., None] if array.ndim == 2 else array


def array_to_pil(array: np.ndarray) -> Image.Image:
    """The inverse of `pil_to_array` for what Pillow can hold (any 8-bit layout, 16-bit gray)."""
    if array.dtype == np.uint16 and array.shape[2] != 1:
        raise ValueError("Pillow holds 16 bits only for gray images")
    # Pillow infers L / LA / RGB / RGBA / I;16 from the dtype and the channel count
    return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)


def tensor_to_array(pixels: torch.Tensor, bit_depth: int = 8) -> np.ndarray:
    """A (C, H, W) float tensor in [0, 1] as an (H, W, C) uint8 (bit_depth 8) or uint16 (16) array."""
    return quantize(pixels.detach().to("cpu", torch.float32).permute(1, 2, 0).numpy(), bit_depth)


def quantize(pixels: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """Float pixels in [0, 1] (clamped) as uint8 (bit_depth 8) or uint16 (16), rounded to nearest."""
    dtype = np.uint16 if bit_depth == 16 else np.uint8
    peak = float(np.iinfo(dtype).max)
    return np.rint(np.clip(pixels, 0.0, 1.0) * peak).astype(dtype)


def write_image(
    path: str | os.PathLike,
    pixels: torch.Tensor | np.ndarray,
    *,
    like: LoadedImage | None = None,
    format: str | None = None,
    compress_level: int = 6,
    quality: int = 95,
) -> None:
    """Write pixels atomically, in the mode, bit depth and ICC profile of `like` where the format allows.

    `pixels` is a (C, H, W) float tensor in [0, 1] or an (H, W, C) array (uint8, uint16 or float in
    [0, 1]), C in {1, 2, 3, 4}.
    The format is `format`, else the extension of `path`, else that of `like`. With `like` gray, colour
    pixels are averaged back to gray; with `like` without alpha, alpha is dropped. Formats that cannot
    hold alpha (JPEG) get the image composited over white. 16 bits are kept for PNG (and TIFF gray);
    other formats are written with 8 bits. `compress_level` is PNG's zlib level, 0 (none) to 9
    (smallest, slowest); other formats ignore it. `quality` (1-100) is JPEG's and WebP's.
    """
    path = Path(path)
    image_format = _resolve_format(path, format, like)
    bit_depth = like.bit_depth if like is not None else _bit_depth_of(pixels)
    if isinstance(pixels, torch.Tensor):
        if pixels.dim() != 3:
            raise ValueError(f"expected (C, H, W) pixels, got shape {tuple(pixels.shape)}")
        pixels = tensor_to_array(pixels, bit_depth)
    elif np.issubdtype(pixels.dtype, np.floating):
        pixels = quantize(pixels, bit_depth)
    array = match_layout(pixels, like)
    if array.shape[2] not in (1, 2, 3, 4) or array.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"cannot write pixels of shape {array.shape} and type {array.dtype}")
    if image_format in _NO_ALPHA_FORMATS and array.shape[2] in (2, 4):
        array = _composite_over_white(array)
    if array.dtype == np.uint16 and not _keeps_sixteen_bits(image_format, array.shape[2]):
        array = np.rint(array / 257.0).astype(np.uint8)

    save_options = _save_options(image_format, like, compress_level, quality)
    if array.dtype == np.uint16 and array.shape[2] != 1:
        png = _encode_png16(array, icc_profile=save_options.get("icc_profile"), compress_level=compress_level)
        atomic_write_bytes(path, png)
    else:
        with atomic_write(path) as temp_path:
            array_to_pil(array).save(temp_path, format=image_format, **save_options)


def _resolve_format(path: Path, format: str | None, like: LoadedImage | None) -> str:
    if format:
        requested = format.upper()
        aliases = {"JPG": "JPEG", "TIF": "TIFF"}
        return aliases.get(requested, requested)
    by_extension = Image.registered_extensions().get(path.suffix.lower())
    if by_extension:
        return by_extension
    if like is not None and like.format:
        return like.format
    raise SrganError(f"{path}: unknown image extension {path.suffix!r}; use .png, .jpg, .webp or .tif")


def _bit_depth_of(pixels: torch.Tensor | np.ndarray) -> int:
    return 16 if isinstance(pixels, np.ndarray) and pixels.dtype == np.uint16 else 8


def match_layout(array: np.ndarray, like: LoadedImage | None) -> np.ndarray:
    """(H, W, C) pixels with the channels of `like`: gray stays gray, alpha only where `like` has it."""
    if array.ndim == 2:
        array = array[..., None]
    if like is None:
        return array
    has_alpha = array.shape[2] in (2, 4)
    color = array[..., :-1] if has_alpha else array
    alpha = array[..., -1:] if has_alpha else None
    if like.is_gray and color.shape[2] == 3:
        gray = color.mean(axis=2, keepdims=True)
        color = (gray if np.issubdtype(array.dtype, np.floating) else np.rint(gray)).astype(array.dtype)
    elif not like.is_gray and color.shape[2] == 1:
        color = np.repeat(color, 3, axis=2)
    if like.has_alpha and alpha is not None:
        return np.concatenate([color, alpha], axis=2)
    return color


def _composite_over_white(array: np.ndarray) -> np.ndarray:
    peak = float(np.iinfo(array.dtype).max)
    color = array[..., :-1].astype(np.float32)
    coverage = array[..., -1:].astype(np.float32) / peak
    return np.rint(color * coverage + peak * (1.0 - coverage)).astype(array.dtype)


def _keeps_sixteen_bits(image_format: str, channels: int) -> bool:
    if channels == 1:
        return image_format in _SIXTEEN_BIT_GRAY_FORMATS
    return image_format == "PNG"


def _save_options(image_format: str, like: LoadedImage | None, compress_level: int, quality: int) -> dict:
    options: dict = {}
    if image_format in ("JPEG", "WEBP"):
        options["quality"] = quality
    if image_format == "PNG":
        options["compress_level"] = compress_level
    if like is not None and like.icc_profile and image_format in ("PNG", "JPEG", "WEBP", "TIFF"):
        options["icc_profile"] = like.icc_profile
    if like is not None and like.exif and image_format in ("PNG", "JPEG", "WEBP"):
        options["exif"] = like.exif
    return options


# --- 16-bit colour PNG ------------------------------------------------------------------------------
# Pillow has no 16-bit RGB mode and keeps only the top 8 bits of these PNGs, so their pixels go through
# libvips (pyvips): an 8 MB wheel that reads and writes 16-bit RGB, RGBA and gray+alpha with their ICC
# profile and applies EXIF orientation, as fast as the rejected OpenCV (150 MB installed, no gray+alpha
# writer) and imagecodecs (80 MB, no ICC profile); pypng, pure Python, decodes ~40x slower
# (benchmarks/png16_io.py). Imported on first use, as it loads a native library.

# Pillow's raw modes for the 16-bit PNGs whose 16 bits it cannot hold (16-bit gray, "I;16B", it can).
_SIXTEEN_BIT_COLOUR_PNG_RAWMODES = {"RGB;16B", "RGBA;16B", "LA;16B"}


def _is_sixteen_bit_colour_png(image: Image.Image) -> bool:
    """Whether an opened, not yet loaded, image is a PNG whose colour samples have 16 bits."""
    if image.format != "PNG" or not image.tile:
        return False
    _, _, _, rawmode = image.tile[0]
    return rawmode in _SIXTEEN_BIT_COLOUR_PNG_RAWMODES


def _read_png16(path: Path, orientation: int) -> np.ndarray:
    """Decode a 16-bit PNG to an (H, W, C) uint16 array turned upright by the EXIF `orientation` (1-8)."""
    import pyvips

    try:
        image = pyvips.Image.pngload_buffer(path.read_bytes(), fail_on="truncated").copy()
        # libvips reads EXIF only ahead of the pixel data; Pillow also finds it after, where PNG allows it
        image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
        array = image.autorot().numpy()
    except pyvips.Error as error:
        reason = str(error).splitlines()[0]
        raise SrganError(f"{path}: image data is truncated or corrupt ({reason})") from None
    return array[..., None] if array.ndim == 2 else array


def _encode_png16(array: np.ndarray, *, icc_profile: bytes | None, compress_level: int) -> bytes:
    """A 16-bit gray+alpha, RGB or RGBA (H, W, C) uint16 array as PNG file bytes."""
    import pyvips

    interpretation = "grey16" if array.shape[2] == 2 else "rgb16"
    image = pyvips.Image.new_from_array(np.ascontiguousarray(array)).copy(interpretation=interpretation)
    if icc_profile:
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", icc_profile)
    return image.pngsave_buffer(compression=compress_level)
