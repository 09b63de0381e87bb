"""`ImageFolderPairs`: whole images for validation and evaluation."""

from __future__ import annotations

from torch import Tensor
from torch.utils.data import Dataset

from srgan.data.files import FoldersArg
from srgan.data.patches import check_scale
from srgan.data.store import DEFAULT_CACHE_BYTES, ImageStore, to_float
from srgan.resize import matlab_bicubic_resize


class ImageFolderPairs(Dataset):
    """Full images as `(name, lr, hr)`: CHW float32 in [0, 1], hr cropped to a multiple of `scale`.

    The standard benchmark protocol: the HR image is cropped to a multiple of `scale` ("mod crop") and
    the LR is MATLAB bicubic of it computed on 8-bit pixels, i.e. the LR file MATLAB's `imresize` would
    have written. With `lr_dir` the LR images are read instead (paired by name as in `PatchDataset`,
    `X{scale}` subfolder and `NAMEx{scale}` names understood); each must be the mod-cropped HR's size
    divided by `scale`. `name` is the HR file's relative path without extension.

    Images differ in size, so iterate the dataset directly or use a DataLoader with `batch_size=None`.
    """

    def __init__(
        self,
        hr_dir: FoldersArg,
        *,
        scale: int,
        lr_dir: FoldersArg | None = None,
        cache_bytes: int | None = DEFAULT_CACHE_BYTES,
        progress: bool | None = None,
    ):
        check_scale(scale)
        self.scale = scale
        self.store = ImageStore.from_folders(
            hr_dir, lr_dir, scale=scale, exact_pairs=False, cache_bytes=cache_bytes, progress=progress
        )

    @property
    def names(self) -> list[str]:
        return self.store.names

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, index: int) -> tuple[str, Tensor, Tensor]:
        hr, lr = self.store.load(index)
        if lr is None:
            lr = matlab_bicubic_resize(hr, scale=1 / self.scale)
        return self.store.images[index].pair.name, to_float(lr), to_float(hr)
