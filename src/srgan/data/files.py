"""Finding images on disk and pairing each HR file with its LR partner.

Folders are scanned recursively; files are recognised by extension, so READMEs, CSVs, licence files
and the `.partial` temporaries of interrupted writes are skipped without a word. Hidden files and
folders (name starting with ".") are skipped too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from srgan.errors import SrganError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})

PathArg = str | os.PathLike
FoldersArg = PathArg | Sequence[PathArg]


@dataclass(frozen=True)
class ImagePair:
    """One training or validation image: its HR file and, for paired data, its LR file.

    `name` is the file's path relative to its folder without the extension ("0001", "sub/photo"),
    prefixed by the folder's name when several folders are scanned together; it is unique.
    """

    name: str
    hr_path: Path
    lr_path: Path | None = None


def as_path_list(paths: FoldersArg) -> list[Path]:
    """One path or a sequence of paths, as a list of Paths."""
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    return [Path(path) for path in paths]


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def images_in_folder(folder: Path) -> list[Path]:
    """All image files under `folder` (recursively), sorted; an error naming the folder if there are none."""
    if not folder.exists():
        raise SrganError(f"{folder}: folder not found; check the path")
    if not folder.is_dir():
        raise SrganError(f"{folder}: is a file, not a folder; pass the folder that holds the images")
    images = sorted(
        path
        for path in folder.rglob("*")
        if is_image_file(path)
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    if not images:
        extensions = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise SrganError(f"{folder}: no images found (looked for {extensions}); add images or fix the path")
    return images


def _image_name(folder: Path, path: Path, prefix: str) -> str:
    return prefix + path.relative_to(folder).with_suffix("").as_posix()


def unique_folder_labels(folders: list[Path]) -> list[str]:
    """The folders' names, with "-2", "-3", ... appended where two folders share a name."""
    labels: list[str] = []
    for folder in folders:
        label = folder.resolve().name or "images"
        candidate, counter = label, 1
        while candidate in labels:
            counter += 1
            candidate = f"{label}-{counter}"
        labels.append(candidate)
    return labels


def _folder_prefixes(folders: list[Path]) -> list[str]:
    """Name prefixes that keep image names unique across folders ("" for a single folder)."""
    if len(folders) == 1:
        return [""]
    return [f"{label}/" for label in unique_folder_labels(folders)]


def lr_root_for_scale(lr_folder: Path, scale: int) -> Path:
    """DIV2K and the benchmark sets keep LR images in an `X{scale}` subfolder; descend into it if present."""
    for subfolder in (f"X{scale}", f"x{scale}"):
        if (lr_folder / subfolder).is_dir():
            return lr_folder / subfolder
    return lr_folder


def _lr_partner(hr_relative: Path, lr_index: dict[tuple[str, str], Path], scale: int) -> Path | None:
    """The LR file of an HR file: `0001x4.png` (DIV2K / benchmark naming) first, then the same name."""
    parent = hr_relative.parent.as_posix()
    for stem in (f"{hr_relative.stem}x{scale}", hr_relative.stem):
        partner = lr_index.get((parent, stem))
        if partner is not None:
            return partner
    return None


def find_pairs(hr_dirs: FoldersArg, lr_dirs: FoldersArg | None = None, *, scale: int) -> list[ImagePair]:
    """Scan HR folders (and their LR folders, one per HR folder) and pair the files.

    Without `lr_dirs` every pair has `lr_path=None` (the LR is made by our resize). With them, each HR
    file `sub/NAME.ext` is paired with `sub/NAMEx{scale}.*` or `sub/NAME.*` in the matching LR folder
    (or its `X{scale}` subfolder); an HR file without a partner is an error naming it. LR files without
    an HR partner are ignored.
    """
    hr_folders = as_path_list(hr_dirs)
    if not hr_folders:
        raise SrganError("no HR folder given; pass at least one folder of training images")
    lr_folders = as_path_list(lr_dirs) if lr_dirs is not None else None
    if lr_folders is not None and len(lr_folders) != len(hr_folders):
        raise SrganError(
            f"got {len(hr_folders)} HR folders but {len(lr_folders)} LR folders; give one LR folder per HR folder"
        )
    pairs: list[ImagePair] = []
    for index, (hr_folder, prefix) in enumerate(zip(hr_folders, _folder_prefixes(hr_folders))):
        hr_files = images_in_folder(hr_folder)
        if lr_folders is None:
            pairs += [ImagePair(_image_name(hr_folder, path, prefix), path) for path in hr_files]
            continue
        lr_root = lr_root_for_scale(lr_folders[index], scale)
        lr_index = {
            (path.relative_to(lr_root).parent.as_posix(), path.stem): path for path in images_in_folder(lr_root)
        }
        for hr_path in hr_files:
            relative = hr_path.relative_to(hr_folder)
            lr_path = _lr_partner(relative, lr_index, scale)
            if lr_path is None:
                wanted = relative.parent / f"{relative.stem}x{scale}"
                raise SrganError(
                    f"{hr_path}: no LR partner in {lr_root} (looked for {wanted}.* and "
                    f"{relative.with_suffix('')}.*); add it, or leave out the LR folder to make LR images on the fly"
                )
            pairs.append(ImagePair(_image_name(hr_folder, hr_path, prefix), hr_path, lr_path))
    return pairs
