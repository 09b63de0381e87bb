"""Decoding training images once and keeping them in memory as uint8 tensors.

The training and validation sets are small enough to hold in RAM as uint8 (a quarter of float32),
which removes image decoding from the training loop. A byte cap keeps a large folder from exhausting
memory: images past it are decoded again each time they are used.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm import tqdm

from srgan.data.files import FoldersArg, ImagePair, as_path_list, find_pairs
from srgan.errors import SrganError
from srgan.imageio import LoadedImage, read_image

# Default memory cap for decoded images (uint8). The prepared training set takes about 1 GiB.
DEFAULT_CACHE_BYTES = 4 * 2**30


def progress_bar(iterable, *, total: int | None = None, description: str, enabled: bool | None):
    """tqdm on stderr; `enabled=None` draws it on a terminal and prints a progress line every few seconds elsewhere."""
    from srgan.progress import progress_lines

    if enabled is None and not sys.stderr.isatty():
        total = len(iterable) if total is None and hasattr(iterable, "__len__") else total
        return progress_lines(iterable, total=total, description=description)
    return tqdm(iterable, total=total, desc=description, unit="img", file=sys.stderr, disable=not enabled)


def to_uint8(pixels: Tensor) -> Tensor:
    """Float [0, 1] -> uint8 0..255, rounded (exact for images that were 8-bit)."""
    return pixels.clamp(0, 1).mul(255).round_().to(torch.uint8)


def to_float(pixels: Tensor) -> Tensor:
    """uint8 0..255 -> contiguous float32 [0, 1] on the same device."""
    return pixels.to(torch.float32, memory_format=torch.contiguous_format).div_(255)


def rgb_uint8(image: LoadedImage) -> Tensor:
    """A read image as a (3, H, W) uint8 RGB tensor (gray repeated, alpha dropped, 16 bits rounded to 8)."""
    return to_uint8(image.to_tensor())


def crop_to_multiple(image: Tensor, scale: int) -> Tensor:
    """Drop the last rows and columns so both sides are multiples of `scale` (the usual "mod crop")."""
    height, width = image.shape[-2:]
    return image[..., : height - height % scale, : width - width % scale]


@dataclass
class StoredImage:
    """One decoded image pair: HR (cropped to a multiple of the scale), its LR if paired, cached or not.

    `is_gray` says whether the HR file has one colour channel (gray, gray + alpha): evaluation scores
    such images on their gray values.
    """

    pair: ImagePair
    height: int
    width: int
    is_gray: bool
    hr: Tensor | None
    lr: Tensor | None


class ImageStore:
    """The images of a list of pairs, decoded and checked up front, kept as uint8 up to `cache_bytes`.

    Unreadable or corrupt files are skipped with a warning naming them; `skipped` keeps the messages.
    The HR image is cropped to a multiple of `scale`. For paired data the sizes must agree: with
    `exact_pairs` the HR must be exactly `scale` times the LR (training data such as DIV2K); otherwise
    the LR must be the size of the mod-cropped HR divided by `scale` (benchmark sets, whose LR files
    were made from the mod-cropped HR).
    """

    def __init__(
        self,
        pairs: list[ImagePair],
        *,
        scale: int,
        exact_pairs: bool = True,
        cache_bytes: int | None = DEFAULT_CACHE_BYTES,
        progress: bool | None = None,
        source: str = "the image folders",
    ):
        self.scale = scale
        self.exact_pairs = exact_pairs
        self.images: list[StoredImage] = []
        self.skipped: list[str] = []
        self.cached_bytes = 0
        uncached = 0
        for pair in progress_bar(pairs, description="decoding images", enabled=progress):
            try:
                hr_file = read_image(pair.hr_path)
                lr = rgb_uint8(read_image(pair.lr_path)) if pair.lr_path is not None else None
            except SrganError as error:
                self.skipped.append(str(error))
                warnings.warn(f"skipping unreadable image: {error}", stacklevel=2)
                continue
            hr = self._checked_hr(pair, rgb_uint8(hr_file), lr)
            size = hr.numel() + (lr.numel() if lr is not None else 0)
            keep = cache_bytes is None or self.cached_bytes + size <= cache_bytes
            if keep:
                self.cached_bytes += size
            else:
                uncached += 1
            self.images.append(
                StoredImage(pair, hr.shape[1], hr.shape[2], hr_file.is_gray, hr if keep else None, lr if keep else None)
            )
        if not self.images:
            raise SrganError(f"{source}: none of the images could be read; replace the corrupt files")
        if uncached:
            warnings.warn(
                f"{uncached} of {len(self.images)} images do not fit the {cache_bytes:,}-byte image cache and will be "
                "decoded on every use (slow); raise the cache size or cut large photos with prepare_subimages",
                stacklevel=2,
            )

    @classmethod
    def from_folders(cls, hr_dir: FoldersArg, lr_dir: FoldersArg | None = None, *, scale: int, **options) -> ImageStore:
        """Scan and pair the folders (see `find_pairs`), then decode them; `options` as for the constructor."""
        pairs = find_pairs(hr_dir, lr_dir, scale=scale)
        source = ", ".join(str(folder) for folder in as_path_list(hr_dir))
        return cls(pairs, scale=scale, source=source, **options)

    def _checked_hr(self, pair: ImagePair, hr: Tensor, lr: Tensor | None) -> Tensor:
        """The HR image cropped to a multiple of the scale, after checking its size against the LR."""
        if lr is None:
            return crop_to_multiple(hr, self.scale).contiguous()
        (hr_height, hr_width), (lr_height, lr_width) = hr.shape[1:], lr.shape[1:]
        if self.exact_pairs:
            matches = (hr_height, hr_width) == (lr_height * self.scale, lr_width * self.scale)
            rule = f"exactly {self.scale}x"
        else:
            matches = (hr_height // self.scale, hr_width // self.scale) == (lr_height, lr_width)
            rule = f"{self.scale}x (after cropping the HR to a multiple of {self.scale})"
        if not matches:
            raise SrganError(
                f"{pair.hr_path} ({hr_width}x{hr_height}) and its LR image {pair.lr_path} ({lr_width}x{lr_height}): "
                f"the HR must be {rule} the LR; fix or remove this pair, or check the scale"
            )
        return crop_to_multiple(hr, self.scale).contiguous()

    def __len__(self) -> int:
        return len(self.images)

    @property
    def names(self) -> list[str]:
        """Names of the images in use (unreadable ones left out), in order."""
        return [image.pair.name for image in self.images]

    def require_min_size(self, hr_patch: int) -> None:
        """An error naming the first image too small to give an `hr_patch` square patch."""
        for image in self.images:
            if min(image.height, image.width) < hr_patch:
                raise SrganError(
                    f"{image.pair.hr_path}: image is {image.width}x{image.height} (cropped to a multiple of "
                    f"{self.scale}), smaller than the {hr_patch}x{hr_patch} HR patch; remove it (for a prepared "
                    "sub-image: its source photo) or use a smaller patch"
                )

    def load(self, index: int) -> tuple[Tensor, Tensor | None]:
        """(hr, lr) uint8 tensors of image `index`; lr is None for HR-only data."""
        image = self.images[index]
        if image.hr is not None:
            return image.hr, image.lr
        pair = image.pair
        lr = rgb_uint8(read_image(pair.lr_path)) if pair.lr_path is not None else None
        return self._checked_hr(pair, rgb_uint8(read_image(pair.hr_path)), lr), lr
