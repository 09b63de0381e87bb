"""Training batches drawn straight from images held on the training device, without a DataLoader.

On a GPU the per-item Python work of a Dataset/DataLoader (one process per worker, one small copy per
patch) can cost more than the training step of a small model. Here the training images sit on the
device as uint8, and one call crops, downscales and augments a whole batch there. The semantics are
those of `PatchDataset`: origins on multiples of the scale, LR equal to cropping the whole-image MATLAB
bicubic LR, one of the 8 flips/rotations per patch applied to LR and HR alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from srgan.data.files import FoldersArg
from srgan.data.patches import (
    DIHEDRAL_TRANSFORMS,
    LR_CONTEXT,
    apply_dihedral,
    check_inner_fraction,
    check_patch_size,
    crop_with_context,
    lr_from_context_crops,
    patch_origin,
)
from srgan.data.store import ImageStore, to_float


def load_training_images(
    hr_dir: FoldersArg,
    *,
    scale: int,
    hr_patch: int,
    device: torch.device | str = "cpu",
    progress: bool | None = None,
) -> list[Tensor]:
    """Every image under `hr_dir` as a (3, H, W) uint8 tensor on `device`, cropped to a multiple of `scale`.

    Same scanning rules as `PatchDataset` (recursive, non-images ignored, unreadable images skipped
    with a warning); an image smaller than `hr_patch` is an error naming it. Meant for the prepared
    sub-images of `prepare_subimages`, which fit on a GPU as uint8.
    """
    check_patch_size(hr_patch, scale)
    store = ImageStore.from_folders(hr_dir, scale=scale, cache_bytes=None, progress=progress)
    store.require_min_size(hr_patch)
    return [image.hr.to(device) for image in store.images]


def sample_batch(
    images: Sequence[Tensor],
    batch_size: int,
    hr_patch: int,
    scale: int,
    generator: torch.Generator,
    *,
    augment: bool = True,
    inner_fraction: float | None = None,
) -> tuple[Tensor, Tensor]:
    """A batch `(lr, hr)` of random patches: (B, 3, P/scale, P/scale) and (B, 3, P, P) float32 in [0, 1].

    `images` are (3, H, W) uint8 tensors on one device (from `load_training_images`; sizes may differ,
    each a multiple of `scale` and at least `hr_patch`); the batch is made on that device. Each patch
    comes from an image picked uniformly at random. All random numbers come from `generator`, which
    must be a CPU `torch.Generator`: saving `generator.get_state()` with a checkpoint and restoring it
    makes a resumed run draw the same batches.
    """
    check_patch_size(hr_patch, scale)
    check_inner_fraction(inner_fraction)
    image_indices = torch.randint(len(images), (batch_size,), generator=generator).tolist()
    uniforms = torch.rand(batch_size, 2, generator=generator, dtype=torch.float64).tolist()
    codes = torch.randint(DIHEDRAL_TRANSFORMS, (batch_size,), generator=generator)
    if not augment:
        codes.zero_()

    crops = []
    for image_index, image_uniforms in zip(image_indices, uniforms):
        image = images[image_index]
        top, left = patch_origin(image.shape[-2:], image_uniforms, hr_patch, scale, inner_fraction)
        crops.append(crop_with_context(image, top, left, hr_patch, scale))
    crops = torch.stack(crops)
    context = LR_CONTEXT * scale
    hr = crops[..., context:-context, context:-context]
    lr = lr_from_context_crops(crops, scale)

    for code in codes.unique().tolist():
        if code:
            selected = torch.nonzero(codes == code).flatten().to(hr.device)
            hr[selected] = apply_dihedral(hr[selected], code)
            lr[selected] = apply_dihedral(lr[selected], code)
    return to_float(lr), to_float(hr)
