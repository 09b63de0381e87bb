"""`load_model()`: the one place that turns a model reference into a ready network.

A model reference is, in this order:
1. an existing file: srgan `.safetensors`, a `.pth` (BasicSR / Real-ESRGAN / ESRGAN), an srgan
   training checkpoint `.ckpt`, an ncnn `.param` (+ `.bin`) — see `srgan.modelfiles`;
2. `"bicubic"`: the no-weights MATLAB bicubic baseline;
3. a named weight set of the catalogue (`srgan.catalogue`): embedded in the package, a
   pretrained generator of the `pretrained` extra, whose ncnn files are converted once and cached
   as safetensors under `$SRGAN_CACHE_DIR` or `~/.cache/srgan`, or a file of the user's models
   folder (`$SRGAN_MODELS_DIR`, else `~/.local/share/srgan/models`) named by its stem.
A preset name is an architecture without weights and is refused with a pointer to `create_model`;
any other name gets the nearest valid one suggested. `read_reference` gives the weights of any
reference as a `ModelFile`, which `export_model` and `interpolate_models` write in any format.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from srgan.catalogue import BICUBIC, PRETRAINED_INSTALL_HINT, Entry
from srgan.errors import SrganError
from srgan.modelfiles import ModelFile

# What `srgan upscale` uses without --model: the project's own embedded PSNR model (docs/models/).
DEFAULT_MODEL = "compact-psnr-x4"


@dataclass
class LoadedModel:
    """A network ready for inference (eval mode) plus what callers need to drive it.

    `scale` and the channel counts are copied from the file's spec when loading (the spec is their
    one stored home); `name` is the label reports use: a catalogue name, or a file's stem with
    its run folder when the stem alone says nothing (`run_a-generator`).
    """

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


def list_models(*, weights: bool = False, available: bool = False) -> list[str]:
    """Names in the catalogue: untrained presets by default (`create_model`); `weights=True` the named
    weight sets `load_model` takes (bicubic, embedded, pretrained); `available=True` only those
    loadable on this machine now."""
    from srgan.catalogue import entries

    listed = entries()
    if weights or available:
        return [name for name, entry in listed.items() if (entry.has_weights or entry.kind == "builtin")
                and (entry.available or not available)]
    return sorted(name for name, entry in listed.items() if entry.kind == "preset")


def list_pretrained() -> dict[str, Entry]:
    """Every named weight set (embedded first, then pretrained), with whether it loads here."""
    from srgan.catalogue import entries

    return {name: entry for name, entry in entries(tag="weights").items()}


def read_reference(reference: str | os.PathLike, *, ema: bool = True) -> ModelFile:
    """The weights any model reference names (file, checkpoint, embedded or pretrained name)."""
    from srgan import catalogue, modelfiles

    text = os.fspath(reference)
    path = Path(text).expanduser()
    if path.is_file():
        return modelfiles.read(path, ema=ema)
    if text.lower() == BICUBIC:
        raise SrganError(f"{text}: the bicubic baseline has no weights to export or blend; name a trained model")
    entry = catalogue.entries().get(text)
    if entry is not None and entry.kind in (catalogue.EMBEDDED, catalogue.USER):
        model_file = modelfiles.read(entry.path)
    elif entry is not None and entry.kind == catalogue.PRETRAINED_KIND:
        model_file = modelfiles.read(_converted_pretrained(entry))
    else:
        raise SrganError(_unknown_name_message(text, path))
    model_file.provenance.setdefault("name", text)
    return model_file


def load_model(name_or_path: str | os.PathLike, *, scale: int | None = None, device="cpu") -> LoadedModel:
    """A ready network for any model reference or `"bicubic"` (see the module docstring).

    `scale` selects the bicubic factor (default 4); for a trained model it must match the model's own
    scale when given. Raises SrganError for anything that cannot be resolved or read.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if not path.is_file() and text.lower() == BICUBIC:
        from srgan.resize import BicubicUpsampler

        factor = 4 if scale is None else scale
        if factor != int(factor) or factor < 1:
            raise SrganError(f"bicubic: scale must be a positive integer, got {scale}")
        factor = int(factor)
        return LoadedModel(BicubicUpsampler(factor).eval().to(device), BICUBIC, BICUBIC, factor, 3, 3, True, {})
    model_file = read_reference(text)
    loaded = loaded_model(model_file, name=model_file.name)
    if path.is_file() and path.suffix.lower() == ".param":
        loaded.ncnn_files = (path, path.with_suffix(".bin"))
    elif not path.is_file() and (files := _pretrained_files(text)) is not None:
        loaded.ncnn_files = files
    if scale is not None and int(scale) != loaded.scale:
        raise SrganError(
            f"{text}: this model upscales x{loaded.scale}, not x{scale}; pick a x{scale} model "
            "or resize its output (upscale's outscale option)"
        )
    loaded.module.to(device)
    return loaded


def loaded_model(model_file: ModelFile, *, name: str) -> LoadedModel:
    """The built network of `model_file` with everything `Upscaler` needs to drive it."""
    spec = model_file.spec
    fp16_note = model_file.provenance.get("fp16_safe")
    return LoadedModel(
        module=model_file.build(),
        name=name,
        arch=spec.arch,
        scale=spec.scale,
        in_channels=spec.in_channels,
        out_channels=spec.out_channels,
        fp16_safe=spec.fp16_safe if fp16_note is None else fp16_note.lower() == "true",
        metadata={**model_file.provenance, "arch": spec.arch, "kwargs": spec.kwargs_json()},
    )


def export_model(
    reference: str | os.PathLike,
    out: str | os.PathLike,
    *,
    ema: bool = True,
    fp16: bool = False,
    description: str | None = None,
    license: str | None = None,
) -> Path:
    """Write any model reference as `.safetensors`, `.pth` or `.onnx` (chosen by `out`'s extension).

    `description` and `license` go into the metadata, where `srgan models` shows them.
    """
    from srgan import modelfiles

    model_file = read_reference(reference, ema=ema)
    if ema and model_file.provenance.get("weights") == "raw":
        import logging

        logging.getLogger("srgan").warning("%s has no EMA weights (train.ema_decay was 0); exporting the raw generator", reference)
    model_file.provenance.update({key: value for key, value in (("description", description), ("license", license)) if value})
    return modelfiles.write(out, model_file, dtype=torch.float16 if fp16 else None)


def interpolate_models(reference_a, reference_b, alpha: float, out: str | os.PathLike) -> Path:
    """ESRGAN network interpolation: θ = (1 − α)·θ_A + α·θ_B, for two generators of the same network."""
    from srgan import modelfiles

    if not 0.0 <= alpha <= 1.0:
        raise SrganError(f"--alpha {alpha}: must be between 0 (all A) and 1 (all B)")
    model_a, model_b = read_reference(reference_a), read_reference(reference_b)
    if model_a.spec != model_b.spec:
        raise SrganError(
            f"{reference_a} ({model_a.spec.arch} {model_a.spec.kwargs_json()}) and {reference_b} "
            f"({model_b.spec.arch} {model_b.spec.kwargs_json()}) are different networks; "
            "interpolate two trainings of the same architecture"
        )
    state_a, state_b = model_a.state_dict, model_b.state_dict
    if state_a.keys() != state_b.keys() or any(state_a[k].shape != state_b[k].shape for k in state_a):
        raise SrganError(f"{reference_a} and {reference_b} hold different weight layouts; re-export both with this srgan")
    blended = {}
    for key, tensor_a in state_a.items():
        tensor_b = state_b[key]
        if tensor_a.is_floating_point():
            blended[key] = (1.0 - alpha) * tensor_a.float() + alpha * tensor_b.float()
        else:  # counters such as BatchNorm's num_batches_tracked are not weights
            blended[key] = tensor_b
    # B's description names B, not the blend; its licence and training provenance still apply
    provenance = {key: value for key, value in model_b.provenance.items() if key not in ("description", "name")}
    provenance["interpolated"] = json.dumps({"a": os.fspath(reference_a), "b": os.fspath(reference_b), "alpha": alpha})
    return modelfiles.write(out, ModelFile(model_a.spec, blended, provenance))


def _unknown_name_message(text: str, path: Path) -> str:
    from srgan import catalogue
    from srgan.modelfiles import READ_SUFFIXES

    listed = catalogue.entries()
    entry = listed.get(text)
    if entry is not None and entry.kind == catalogue.PRESET:
        shipped = ", ".join(name for name, e in listed.items() if e.kind == catalogue.EMBEDDED)
        trained = f"trained weights that ship with srgan: {shipped}; " if shipped else ""
        return (
            f"{text}: this is an untrained architecture preset with no weights; train it (`srgan train`, "
            f"recipes in the repository's configs/) or build it in Python with srgan.create_model({text!r}); "
            f"{trained}`srgan models` lists every named model"
        )
    if path.suffix.lower() in READ_SUFFIXES or os.sep in text:
        return f"{text}: model file not found; check the path"
    names = [name for name, e in listed.items() if e.kind != catalogue.PRESET]
    matches = difflib.get_close_matches(text, names, n=1, cutoff=0.5)
    hint = f"did you mean {matches[0]!r}? " if matches else ""
    return f"{text}: unknown model; {hint}valid names: {', '.join(names)} or a model file path"


def _pretrained_files(name: str) -> tuple[Path, Path] | None:
    from srgan import catalogue

    entry = catalogue.entries().get(name)
    return _pretrained_ncnn_files(entry) if entry is not None and entry.pretrained is not None else None


def _pretrained_ncnn_files(entry: Entry) -> tuple[Path, Path]:
    """The .param and .bin of a pretrained entry inside its installed package."""
    from importlib import import_module

    files = entry.pretrained
    try:
        package = import_module(files.package)
    except ImportError:
        raise SrganError(
            f"{entry.name}: the pretrained model files are not installed; run: {PRETRAINED_INSTALL_HINT}"
        ) from None
    models_dir = Path(package.__file__).parent / "models"
    return models_dir / f"{files.ncnn_stem}.param", models_dir / f"{files.ncnn_stem}.bin"


def _cache_matches(cached: Path, converted_from: str) -> bool:
    from srgan.modelfiles.srgan_safetensors import read_header

    if not cached.is_file():
        return False
    try:
        return read_header(cached).get("converted_from") == converted_from
    except SrganError:
        return False


def _converted_pretrained(entry: Entry) -> Path:
    """The cached safetensors conversion of a pretrained entry, converting it on first use."""
    from importlib.metadata import version

    from srgan import modelfiles
    from srgan.downloads import cache_dir
    from srgan.modelfiles import ncnn

    files = entry.pretrained
    param_path, bin_path = _pretrained_ncnn_files(entry)
    converted_from = f"{files.distribution} {version(files.distribution)} models/{files.ncnn_stem}.param"
    cached = cache_dir() / "pretrained" / f"{entry.name}.safetensors"
    # A cache written from another package version (or damaged) is simply converted again.
    if _cache_matches(cached, converted_from):
        return cached
    spec, state_dict = ncnn.convert_ncnn(param_path, bin_path)
    if spec != entry.spec:
        raise SrganError(
            f"{param_path}: converts to {spec.arch} {spec.kwargs_json()}, not the catalogued "
            f"{entry.spec.arch} {entry.spec.kwargs_json()}; the package changed, report it"
        )
    provenance = {
        "description": entry.description,
        "source": entry.source,
        "license": entry.license,
        "trained_on": files.trained_on,
        "converted_from": converted_from,
    }
    try:
        modelfiles.write(cached, ModelFile(spec, state_dict, provenance))
    except OSError as error:
        raise SrganError(
            f"{cached.parent}: cannot write the converted model ({error.strerror}); set SRGAN_CACHE_DIR to a writable folder"
        ) from None
    return cached
