"""Training and validation data: folders of images, random patches, prepared sub-images, GPU batches.

- `PatchDataset`: random (lr, hr) patches for training, HR-only (LR made by MATLAB bicubic) or paired;
  `ResumableSampler` gives it an endless shuffled index stream that resumes exactly.
- `ImageFolderPairs`: whole images `(name, lr, hr)` for validation and evaluation.
- `prepare_subimages`: one-time cutting of large photos (JPEGs cleaned by downscaling) into PNG crops.
- `load_training_images` + `sample_batch`: batches made on the training device, without a DataLoader.
"""

from srgan.data.batch import load_training_images, sample_batch
from srgan.data.files import IMAGE_EXTENSIONS, ImagePair, find_pairs
from srgan.data.patch_dataset import PatchDataset, ResumableSampler
from srgan.data.patches import apply_dihedral
from srgan.data.subimages import prepare_subimages
from srgan.data.validation import ImageFolderPairs

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageFolderPairs",
    "ImagePair",
    "PatchDataset",
    "ResumableSampler",
    "apply_dihedral",
    "find_pairs",
    "load_training_images",
    "prepare_subimages",
    "sample_batch",
]
