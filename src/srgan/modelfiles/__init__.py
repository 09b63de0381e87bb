"""Model files: every format srgan reads or writes, through one `read` and one `write`.

`read(path) -> ModelFile(spec, state_dict, provenance)` takes srgan's safetensors (weights + a header
saying how to rebuild the network), `.pth` files (BasicSR / Real-ESRGAN `params_ema` / `params`,
`module.` prefixes, the original ESRGAN layout, BasicSR EDSR and MSRResNet), srgan training
checkpoints (`.ckpt`, read-only: the generator and the config that built it) and ncnn exports
(`.param` + `.bin`). Files without srgan's header are recognised from their weights by the
architecture modules themselves (`srgan.archs.registry.recognise`).

`write(path, model_file)` picks the format from the extension: `.safetensors` (srgan's own, with
metadata), `.pth` (a weights-only-loadable `{"params_ema": state_dict}`, in BasicSR's key names
wherever BasicSR defines the network; a warning names what loads it when chaiNNer / ComfyUI cannot)
or `.onnx` (the built network as one dynamic-shape graph, the `onnx` extra).

The network's scale has one home, the spec's kwargs; a file that states another one anywhere (an
older header's `scale`, or weights shaped for a different factor) is refused at read, naming both.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor, nn

from srgan.archs.spec import NetworkSpec
from srgan.errors import SrganError

SAFETENSORS_SUFFIX = ".safetensors"
PTH_SUFFIXES = (".pth", ".pt")
CHECKPOINT_SUFFIX = ".ckpt"
NCNN_SUFFIX = ".param"
ONNX_SUFFIX = ".onnx"
READ_SUFFIXES = (SAFETENSORS_SUFFIX, *PTH_SUFFIXES, CHECKPOINT_SUFFIX, NCNN_SUFFIX)
WRITE_SUFFIXES = (SAFETENSORS_SUFFIX, *PTH_SUFFIXES, ONNX_SUFFIX)
# File stems every run writes: a label adds the run folder to them
_GENERIC_STEMS = ("generator", "model", "best", "latest", "net_g")


@dataclass
class ModelFile:
    """A generator's weights, which network they belong to, and where they came from.

    `provenance` holds free-form strings (`source`, `license`, `description`, `trained_on`,
    `iterations`, ...); `layout` says how the file named its weights ("srgan", "BasicSR", "original
    ESRGAN layout (model.N)", "ncnn", "training checkpoint").
    """

    spec: NetworkSpec
    state_dict: dict[str, Tensor]
    provenance: dict[str, str] = field(default_factory=dict)
    layout: str = "srgan"
    path: Path | None = None

    @property
    def name(self) -> str | None:
        """What reports call the model: its file's label (a catalogue file's stem is its name), else
        the name it was given; None for weights made in memory (a blend)."""
        return file_label(self.path) if self.path is not None else self.provenance.get("name")

    def build(self) -> nn.Module:
        """The network with these weights loaded (strictly), in eval mode; SrganError if they do not fit."""
        module = self.spec.build()
        try:
            module.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as error:
            lines = str(error).strip().splitlines()
            detail = lines[1].strip() if len(lines) > 1 else lines[0]
            raise SrganError(
                f"{self.path or self.spec.arch}: the weights do not fit the {self.spec.arch} the file describes ({detail})"
            ) from None
        return module.eval()


def read(path: str | os.PathLike, *, ema: bool = True) -> ModelFile:
    """The model file at `path`, whatever its format; SrganError naming the file when it cannot be read.

    For a training checkpoint `ema` picks the EMA weights when the run kept them.
    """
    from srgan.modelfiles import checkpoint, ncnn, pth, srgan_safetensors

    path = Path(path)
    if not path.is_file():
        raise SrganError(f"{path}: model file not found; check the path")
    suffix = path.suffix.lower()
    if suffix == SAFETENSORS_SUFFIX:
        model_file = srgan_safetensors.read(path)
    elif suffix in PTH_SUFFIXES:
        model_file = pth.read(path)
    elif suffix == CHECKPOINT_SUFFIX:
        model_file = checkpoint.read(path, ema=ema)
    elif suffix == NCNN_SUFFIX:
        model_file = ncnn.read(path)
    else:
        raise SrganError(
            f"{path}: unsupported model file type {suffix!r}; use {', '.join(READ_SUFFIXES)} (ncnn .param with its .bin)"
        )
    model_file.path = path
    return model_file


def write(path: str | os.PathLike, model_file: ModelFile, *, dtype: torch.dtype | None = None) -> Path:
    """Write `model_file` in the format `path`'s extension names, atomically; returns the path.

    `dtype=torch.float16` halves a `.safetensors` / `.pth` file: floating tensors are cast, integer
    buffers kept (ONNX files are fp32).
    """
    from srgan.modelfiles import onnx, pth, srgan_safetensors

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ONNX_SUFFIX:
        if dtype is not None:
            raise SrganError(f"{path}: ONNX files are written in float32; leave out the float16 storage (--fp16)")
        onnx.write(path, model_file, name=model_file.name or path.stem)
        return path
    if suffix not in WRITE_SUFFIXES:
        raise SrganError(f"{path}: cannot write model files of type {suffix!r}; use {', '.join(WRITE_SUFFIXES)}")
    tensors = {}
    for key, tensor in model_file.state_dict.items():
        tensor = tensor.detach().to("cpu")
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensors[key] = tensor.contiguous()
    model_file = replace(model_file, state_dict=tensors)
    with writing(path):
        if suffix == SAFETENSORS_SUFFIX:
            srgan_safetensors.write(path, model_file)
        else:
            pth.write(path, model_file)
    return path


@contextlib.contextmanager
def writing(path: Path, what: str = "model file") -> Iterator[None]:
    """Refuse a folder as `path`, and turn a failed write (no permission, disk full) into one
    SrganError naming it; the writer inside goes through `atomic_write`, so nothing is left behind."""
    if path.is_dir():
        raise SrganError(f"{path}: is a folder; give the {what} to write, e.g. {path / ('model' + path.suffix)}")
    try:
        yield
    except OSError as error:
        raise SrganError(f"{path}: cannot write the {what} ({error.strerror}); choose a writable location") from None


def file_label(path: Path) -> str:
    """A report label for a model file: its stem, prefixed with its run folder when the stem is a
    generic name every run writes (two runs' `generator.safetensors` must not share a label).

    The label also names output files (`photo_run_a-generator_x4.png`), so it holds no path separator.
    """
    if path.stem in _GENERIC_STEMS or path.suffix.lower() == CHECKPOINT_SUFFIX:
        parent = path.resolve().parent
        run = parent.parent.name if parent.name == "checkpoints" else parent.name
        return f"{run}-{path.stem}" if run else path.stem
    return path.stem


def save_model(
    path: str | os.PathLike,
    model: nn.Module | dict[str, Tensor],
    *,
    arch: str,
    kwargs: dict,
    metadata: dict[str, object] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write a module (or state dict) built as `arch(**kwargs)`: `write(path, from_module(...))`."""
    return write(path, from_module(model, NetworkSpec(arch, kwargs), metadata), dtype=dtype)


def from_module(module: nn.Module | dict[str, Tensor], spec: NetworkSpec, provenance: dict[str, object] | None = None) -> ModelFile:
    """A ModelFile for a module (or state dict) built from `spec`; provenance values become strings."""
    state_dict = module.state_dict() if isinstance(module, nn.Module) else dict(module)
    return ModelFile(spec, state_dict, {str(key): str(value) for key, value in (provenance or {}).items()})


def recognised(state_dict: dict[str, Tensor], path: Path, *, stated: NetworkSpec | None = None) -> tuple[NetworkSpec, dict[str, Tensor], str]:
    """(spec, state dict in srgan names, layout) for weights from `path`.

    `stated` is the spec the file's own metadata gives; when the weights are also recognisable, the
    two must agree on the scale (the one mismatch that would otherwise surface only at the first
    forward pass, as a wrong output size).
    """
    from srgan.archs.registry import ARCHITECTURES, recognise

    found = recognise(state_dict)
    if stated is not None:
        if found is not None and found[0].arch == stated.arch and found[0].scale != stated.scale:
            raise SrganError(
                f"{path}: the file says scale x{stated.scale} but its weights are shaped for x{found[0].scale}; "
                "re-export the model"
            )
        return stated, state_dict, "srgan"
    if found is None:
        known = ", ".join(name for name, entry in ARCHITECTURES.items() if entry.describe is not None)
        raise SrganError(
            f"{path}: the network's architecture is not recorded in the file and its weights match none srgan "
            f"recognises ({known}, incl. the original ESRGAN layout); use an srgan .safetensors file"
        )
    return found


def spec_named_by(path: Path, arch: str, kwargs: dict) -> NetworkSpec:
    """NetworkSpec(arch, kwargs) with an unknown arch or option reported against `path`."""
    try:
        return NetworkSpec(arch, kwargs)
    except SrganError as error:
        raise SrganError(f"{path}: {error}") from None
