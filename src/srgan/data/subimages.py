"""One-time preparation of large photos: clean JPEGs by downscaling, cut overlapping sub-images.

Training on whole multi-megapixel photos wastes memory and decode time, so, as is usual for DIV2K,
each photo is cut once into overlapping square sub-images (480 px every 240 px) saved as PNG, and
training reads those. JPEG sources are first downscaled with antialiasing (MATLAB bicubic) by
`jpeg_predownscale`: averaging blocks of pixels removes most compression artefacts, which the model
would otherwise learn to reproduce. PNG and other lossless sources keep their resolution.

The output folder is keyed by a hash of the source files (path, size, modification time) and of the
parameters, so changing either prepares a new set. A manifest written last, atomically, marks a
complete preparation: a folder without one is the remnant of an interrupted run and is redone.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import torch
from torch import Tensor

from srgan.data.files import FoldersArg, as_path_list, images_in_folder, is_image_file, unique_folder_labels
from srgan.data.patches import check_scale
from srgan.data.store import progress_bar, to_uint8
from srgan.errors import SrganError
from srgan.fileutil import atomic_write_bytes
from srgan.imageio import read_image, write_image
from srgan.resize import matlab_bicubic_resize

MANIFEST_NAME = "manifest.json"
# Bump when the output of a given source and parameter set changes, so old caches are not reused.
_PREPARATION_VERSION = 1


def _source_files(sources: FoldersArg) -> list[tuple[str, Path, Path]]:
    """(label, root, file) for every image: folders scanned recursively, single files taken as given."""
    roots = as_path_list(sources)
    if not roots:
        raise SrganError("no sources given; pass the folders or image files to prepare")
    for root in roots:
        if not (root.is_dir() or (root.is_file() and is_image_file(root))):
            raise SrganError(f"{root}: not an image file or folder; check the path")
    # Files given one by one are grouped under their folder's label.
    folders = list(dict.fromkeys(root if root.is_dir() else root.parent for root in roots))
    labels = dict(zip(folders, unique_folder_labels(folders)))
    entries = []
    for root in roots:
        if root.is_dir():
            entries += [(labels[root], root, path) for path in images_in_folder(root)]
        else:
            entries.append((labels[root.parent], root.parent, root))
    return entries


def _cache_key(entries: list[tuple[str, Path, Path]], parameters: dict) -> str:
    described = []
    for label, _, path in entries:
        stat = path.stat()
        described.append([label, str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    text = json.dumps({"version": _PREPARATION_VERSION, "parameters": parameters, "sources": described})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _is_complete(folder: Path) -> bool:
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
        return all((folder / name).is_file() for name in manifest["subimages"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def subimage_origins(length: int, subimage_size: int, step: int) -> list[int]:
    """Origins of overlapping windows every `step` pixels, plus one flush with the far edge if needed.

    An axis shorter than a window gets a single window from 0 (the caller shortens it to fit).
    """
    if length < subimage_size:
        return [0]
    origins = list(range(0, length - subimage_size + 1, step))
    if origins[-1] + subimage_size < length:
        origins.append(length - subimage_size)
    return origins


def _cleaned_pixels(path: Path, jpeg_predownscale: float) -> Tensor:
    """The source as (3, H, W) uint8, downscaled by `jpeg_predownscale` if it is a JPEG."""
    loaded = read_image(path)
    if loaded.format != "JPEG" or jpeg_predownscale == 1:
        return to_uint8(loaded.to_tensor())
    pixels = loaded.to_tensor()
    # One channel at a time in float32: a 35-megapixel photo would need several GiB in one pass.
    channels = [matlab_bicubic_resize(channel, scale=1 / jpeg_predownscale) for channel in pixels.split(1)]
    return to_uint8(torch.cat(channels))


def _write_subimage(path: Path, pixels: Tensor) -> None:
    """Write a (3, H, W) uint8 crop as PNG, atomically.

    zlib level 1 instead of the default 6: on photos it writes about 4x faster for files about
    10% larger, which matters for the ~1,600 crops of a training set; there is no metadata to keep.
    """
    write_image(path, pixels.permute(1, 2, 0).numpy(), compress_level=1)


def prepare_subimages(
    sources: FoldersArg,
    cache_dir: str | Path,
    *,
    scale: int,
    subimage_size: int = 480,
    step: int = 240,
    jpeg_predownscale: float = 2.0,
    min_size: int = 128,
    progress: bool | None = None,
) -> Path:
    """Cut the images of `sources` (folders, scanned recursively, or files) into sub-images; return their folder.

    Each (JPEG-cleaned) image is cut into `subimage_size` squares every `step` pixels, the last row
    and column of windows flush with the image edge. An image shorter than `subimage_size` along an
    axis is kept whole along it (cropped to a multiple of `scale`); one shorter than `min_size` after
    cleaning is skipped with a warning (`PatchDataset` refuses, naming it, a sub-image smaller than its
    HR patch).
    Gray images become 3-channel RGB. Unreadable images are skipped with a warning.

    Output: `cache_dir/subimages-x{scale}-{hash}/{folder}/{name}_s{k:03d}.png` plus `manifest.json`.
    A complete earlier preparation with the same sources and parameters is reused without work.
    """
    check_scale(scale)
    if subimage_size % scale or subimage_size < scale:
        raise SrganError(f"subimage_size={subimage_size}: must be a positive multiple of scale={scale}")
    if step < 1:
        raise SrganError(f"step={step}: must be at least 1 pixel")
    if jpeg_predownscale < 1:
        raise SrganError(f"jpeg_predownscale={jpeg_predownscale}: must be at least 1 (1 leaves JPEGs unscaled)")
    if min_size < scale:
        raise SrganError(f"min_size={min_size}: must be at least scale={scale}")
    parameters = {
        "scale": scale,
        "subimage_size": subimage_size,
        "step": step,
        "jpeg_predownscale": jpeg_predownscale,
        "min_size": min_size,
    }
    entries = _source_files(sources)
    output = Path(cache_dir) / f"subimages-x{scale}-{_cache_key(entries, parameters)}"
    if _is_complete(output):
        return output
    if output.exists():
        shutil.rmtree(output)  # remnant of an interrupted preparation

    written: list[str] = []
    for label, root, path in progress_bar(entries, description="preparing sub-images", enabled=progress):
        try:
            pixels = _cleaned_pixels(path, jpeg_predownscale)
        except SrganError as error:
            warnings.warn(f"skipping unreadable image: {error}", stacklevel=2)
            continue
        height, width = pixels.shape[-2:]
        if min(height, width) < min_size:
            warnings.warn(
                f"skipping {path}: {width}x{height} after cleaning is under min_size={min_size}", stacklevel=2
            )
            continue
        box_height = min(subimage_size, height - height % scale)
        box_width = min(subimage_size, width - width % scale)
        stem = f"{label}/{path.relative_to(root).with_suffix('').as_posix()}"
        boxes = [
            (top, left)
            for top in subimage_origins(height, subimage_size, step)
            for left in subimage_origins(width, subimage_size, step)
        ]
        for number, (top, left) in enumerate(boxes):
            name = f"{stem}_s{number:03d}.png"
            crop = pixels[:, top : top + box_height, left : left + box_width]
            _write_subimage(output / name, crop)
            written.append(name)
    if not written:
        raise SrganError(f"{sources}: no usable images to prepare (all unreadable or under min_size={min_size})")

    manifest = {"version": _PREPARATION_VERSION, "parameters": parameters, "subimages": written}
    atomic_write_bytes(output / MANIFEST_NAME, json.dumps(manifest, indent=1).encode())
    return output
