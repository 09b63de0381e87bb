"""`PatchDataset`, the training dataset of (LR, HR) patch pairs, and the sampler that makes it resumable."""

from __future__ import annotations

import operator
from collections.abc import Iterator

import numpy as np
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from srgan.data.files import FoldersArg
from srgan.data.patches import (
    DIHEDRAL_TRANSFORMS,
    apply_dihedral,
    check_inner_fraction,
    check_patch_size,
    crop_with_context,
    lr_from_context_crops,
    patch_origin,
)
from srgan.data.store import DEFAULT_CACHE_BYTES, ImageStore, to_float
from srgan.errors import SrganError

# Separate random streams derived from one seed: per-draw patch choices and per-epoch shuffles.
_PATCH_STREAM, _SHUFFLE_STREAM = 0, 1


class PatchDataset(Dataset):
    """Random (lr, hr) training patches: CHW float32 in [0, 1], hr `hr_patch` square, lr `hr_patch / scale`.

    `hr_dir` is one folder or a list of folders, scanned recursively (non-image files are ignored,
    unreadable images skipped with a warning). Without `lr_dir` the LR is made by MATLAB bicubic
    downscaling (see `srgan.data.patches` for why it equals cropping the whole-image LR); with it,
    LR files are paired by name (DIV2K's `X4/0001x4.png` or the same name, one LR folder per HR folder)
    and each HR must be exactly `scale` times its LR.

    Images are decoded once and kept as uint8 up to `cache_bytes` (None: no cap). Each image yields
    `patches_per_image` items per pass. With `augment`, each patch gets one of the 8 flips/90-degree
    rotations, the same for LR and HR. With `inner_fraction` f, patches are drawn only from the centred
    f-fraction of each image (0.5: the inner half, which keeps face crops off the background).

    Determinism and exact resume: item `index` is a pure function of `(seed, index)` (its random numbers
    come from a generator seeded with both), independent of worker processes and of what was drawn
    before. Indices past `len(self)` are later passes over the data: image `index % len(self)`, fresh
    patch. `ResumableSampler` produces such indices as an endless shuffled stream that restarts exactly
    from a saved position; a plain DataLoader with `shuffle=True` also works, without exact resume.
    """

    def __init__(
        self,
        hr_dir: FoldersArg,
        *,
        scale: int,
        hr_patch: int = 96,
        lr_dir: FoldersArg | None = None,
        patches_per_image: int = 1,
        augment: bool = True,
        inner_fraction: float | None = None,
        seed: int = 0,
        cache_bytes: int | None = DEFAULT_CACHE_BYTES,
        progress: bool | None = None,
    ):
        check_patch_size(hr_patch, scale)
        check_inner_fraction(inner_fraction)
        if patches_per_image < 1:
            raise SrganError(f"patches_per_image={patches_per_image}: must be at least 1")
        self.scale = scale
        self.hr_patch = hr_patch
        self.patches_per_image = patches_per_image
        self.augment = augment
        self.inner_fraction = inner_fraction
        self.seed = seed
        self.store = ImageStore.from_folders(
            hr_dir, lr_dir, scale=scale, exact_pairs=True, cache_bytes=cache_bytes, progress=progress
        )
        self.store.require_min_size(hr_patch)

    @property
    def names(self) -> list[str]:
        """Names of the images in use (unreadable ones left out), in item order."""
        return self.store.names

    def __len__(self) -> int:
        return len(self.store) * self.patches_per_image

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        draw = operator.index(index)
        if draw < 0:
            raise IndexError(f"PatchDataset index {draw} is negative")
        image_index = draw % len(self) // self.patches_per_image
        rng = np.random.default_rng([self.seed, _PATCH_STREAM, draw])
        uniforms = rng.random(2)
        code = int(rng.integers(DIHEDRAL_TRANSFORMS)) if self.augment else 0

        hr_image, lr_image = self.store.load(image_index)
        size, scale = self.hr_patch, self.scale
        top, left = patch_origin(hr_image.shape[-2:], uniforms, size, scale, self.inner_fraction)
        hr = hr_image[:, top : top + size, left : left + size]
        if lr_image is None:
            lr = lr_from_context_crops(crop_with_context(hr_image, top, left, size, scale), scale)
        else:
            lr_top, lr_left, lr_size = top // scale, left // scale, size // scale
            lr = lr_image[:, lr_top : lr_top + lr_size, lr_left : lr_left + lr_size]
        return to_float(apply_dihedral(lr, code)), to_float(apply_dihedral(hr, code))


class ResumableSampler(Sampler[int]):
    """An endless, shuffled stream of PatchDataset indices that a resumed run continues exactly.

    Pass k over the data (k = 0, 1, ...) yields `k * num_items + p_k[i]` for a permutation p_k fixed by
    `(seed, k)`, so every image is used equally often and each index is a fresh draw. The stream is a
    pure function of `seed`, so resuming needs only the number of indices already consumed: pass
    `start = iterations_done * batch_size * world_size`. Under distributed training, process `rank` of
    `world_size` takes every `world_size`-th index, offset by its rank. The stream never ends: iterate
    the DataLoader for as many batches as the run needs.
    """

    def __init__(self, num_items: int, *, seed: int = 0, start: int = 0, rank: int = 0, world_size: int = 1):
        if num_items < 1:
            raise ValueError("ResumableSampler needs at least one item")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank={rank} must be in 0..{world_size - 1}")
        self.num_items = num_items
        self.seed = seed
        self.start = start
        self.rank = rank
        self.world_size = world_size

    def __iter__(self) -> Iterator[int]:
        position = self.start + self.rank
        current_pass, permutation = -1, None
        while True:
            data_pass, offset = divmod(position, self.num_items)
            if data_pass != current_pass:
                rng = np.random.default_rng([self.seed, _SHUFFLE_STREAM, data_pass])
                current_pass, permutation = data_pass, rng.permutation(self.num_items)
            yield data_pass * self.num_items + int(permutation[offset])
            position += self.world_size
