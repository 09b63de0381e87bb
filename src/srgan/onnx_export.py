"""ONNX export of a loaded model, for ONNX Runtime, TensorRT, OpenVINO and friends.

`export_onnx` writes one self-contained `.onnx` file (weights inside, fp32) whose input is called
`input` and output `output`, both NCHW float in [0, 1]. With `dynamic=True` (the default) the batch,
height and width axes are symbolic, so one file serves every image and tile size; the graph is
captured with torch.export, which keeps `F.interpolate(scale_factor=...)` as a `Resize` by scales
instead of baking in the example's size (the classic failure of traced exports, Real-ESRGAN #532).
The model's name, architecture, scale and channel counts are stored in the file's metadata
(`srgan.*` keys) so a runtime can drive it without srgan.

`onnxruntime_model` turns a loaded model into one whose module runs the exported file in ONNX
Runtime (exported once, cached by weights: `cached_onnx_file`), which `srgan.inference.Upscaler`
drives unchanged (`srgan.runtimes` picks it or OpenVINO by measurement).

Needs the `onnx` extra (onnx, onnxruntime, plus onnxscript for torch's exporter).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from srgan.errors import SrganError
from srgan.fileutil import atomic_write

INPUT_NAME = "input"
OUTPUT_NAME = "output"
# The lowest opset torch's exporter writes natively; lower ones go through a converter that has no
# down-adapter for some ops (Pad 18 -> 17, used by RRDBNet x2/x1) and then keeps 18 silently, which
# export_onnx turns into an error.
DEFAULT_OPSET = 18
# Example input for tracing. Sides above 1 and unequal, batch 2: torch.export specialises any axis
# whose example size is 0 or 1, and equal sides could be assumed equal. Multiples of 4 suit every
# pixel-unshuffle factor (RRDBNet x2/x1).
EXAMPLE_BATCH = 2
DEFAULT_EXAMPLE_SIZE = (32, 48)
INSTALL_HINT = 'pip install "srgan[onnx]"'


def export_onnx(
    loaded_model,
    path: str | os.PathLike,
    *,
    opset: int = DEFAULT_OPSET,
    dynamic: bool = True,
    input_size: tuple[int, int] = DEFAULT_EXAMPLE_SIZE,
) -> Path:
    """Write `loaded_model` (a `srgan.models.LoadedModel`) to `path` as ONNX; returns the path.

    `dynamic=True`: batch, height and width are free. `dynamic=False`: the file accepts exactly one
    (1, C, *input_size) input, which some accelerators (TensorRT engines, NPUs) need; `input_size`
    is (height, width) in input pixels. The module itself is not changed (a CPU fp32 copy is traced).
    """
    _require_exporter()
    target = Path(path)
    if target.is_dir():
        raise SrganError(f"{target}: is a folder; give the .onnx file to write, e.g. {target / 'model.onnx'}")
    if loaded_model.arch == "bicubic":
        raise SrganError("bicubic: has no network to export; export a trained model instead")
    try:  # before the export, which takes minutes for a large model
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _unwritable(target, error) from None
    height, width = input_size
    if height < 2 or width < 2:
        raise SrganError(f"input size {height}x{width}: each side must be at least 2 pixels")

    module = copy.deepcopy(loaded_model.module).to("cpu", torch.float32, memory_format=torch.contiguous_format)
    module.eval()
    batch = EXAMPLE_BATCH if dynamic else 1
    example = torch.rand(batch, loaded_model.in_channels, height, width)
    dynamic_shapes = None
    if dynamic:
        free = torch.export.Dim.DYNAMIC
        dynamic_shapes = ({0: free, 2: free, 3: free},)

    with _quiet_exporter():
        program = torch.onnx.export(
            module,
            (example,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=dynamic_shapes,
            opset_version=opset,
            dynamo=True,
            verbose=False,
        )
    written_opset = program.model.opset_imports.get("", opset)
    if written_opset != opset:
        raise SrganError(
            f"opset {opset}: {loaded_model.name} cannot be converted to it (the graph needs opset "
            f"{written_opset}); export with opset {written_opset} or newer"
        )
    program.model.metadata_props.update(_metadata(loaded_model))
    try:
        with atomic_write(target) as temp_path:
            # one file: the weights go inside the protobuf instead of a side-car .data file
            program.save(temp_path, external_data=False)
    except OSError as error:
        raise _unwritable(target, error) from None
    return target


def export_model_onnx(
    source: str | os.PathLike, path: str | os.PathLike, *, ema: bool = True, opset: int = DEFAULT_OPSET
) -> Path:
    """Export any model reference (name, model file, training checkpoint) as a dynamic-shape ONNX file.

    For checkpoints `ema` picks the EMA weights when the run kept them.
    """
    from srgan.models import load_model, loaded_model, read_reference

    _require_exporter()  # before reading a large checkpoint
    if Path(source).is_file():
        loaded = loaded_model(read_reference(source, ema=ema), name=Path(source).stem)
    else:
        loaded = load_model(source)
    return export_onnx(loaded, path, opset=opset)


class OnnxRuntimeModule(nn.Module):
    """An exported `.onnx` file run by ONNX Runtime's CPU provider, called like the module it replaces.

    (N, C, H, W) float CPU tensor in, float32 CPU tensor out. It has no parameters, so `.to()` and
    `.eval()` are no-ops and `Upscaler` treats it as any CPU module. `threads`: ONNX Runtime's
    intra-op threads (default: torch's current thread count, so one setting governs both).
    `spinning`: let idle pool threads spin (ONNX Runtime's default); off, they sleep, which was 1.6x
    faster for RRDBNet x4 on 2 cores shared with other work (docs/PERFORMANCE.md).
    """

    def __init__(self, onnx_path: str | os.PathLike, *, threads: int | None = None, spinning: bool = False):
        super().__init__()
        try:
            import onnxruntime
        except ImportError:
            raise SrganError(f"ONNX Runtime is not installed; run: {INSTALL_HINT}") from None
        settings = onnxruntime.SessionOptions()
        settings.intra_op_num_threads = threads or torch.get_num_threads()
        settings.inter_op_num_threads = 1
        settings.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        settings.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        self.session = onnxruntime.InferenceSession(os.fspath(onnx_path), settings, providers=["CPUExecutionProvider"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixels = x.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run([OUTPUT_NAME], {INPUT_NAME: pixels})[0])


def cached_onnx_file(loaded_model, cache_dir: str | os.PathLike | None = None) -> Path:
    """The dynamic-shape export of `loaded_model`, written on first use and reused afterwards.

    Kept under `cache_dir` (default: `<srgan cache>/onnx`), named by a digest of the weights and the
    exporter version: exporting a 23-block RRDBNet takes minutes, loading the file a second.
    """
    from srgan.downloads import cache_dir as srgan_cache_dir

    folder = Path(cache_dir) if cache_dir is not None else srgan_cache_dir() / "onnx"
    onnx_path = folder / f"{loaded_model.name}-{_weights_digest(loaded_model)}.onnx"
    if not onnx_path.is_file():
        warnings.warn(
            f"exporting {loaded_model.name} to ONNX, once for these weights (seconds for small models, "
            f"minutes for RRDBNet; runtime torch needs no export); kept in {folder}",
            UserWarning,
            stacklevel=2,
        )
        export_onnx(loaded_model, onnx_path)
    return onnx_path


def onnxruntime_model(loaded_model, *, threads: int | None = None, cache_dir: str | os.PathLike | None = None):
    """`loaded_model` with its module replaced by an `OnnxRuntimeModule` (CPU) on its cached export."""
    onnx_path = cached_onnx_file(loaded_model, cache_dir)
    return dataclasses.replace(loaded_model, module=OnnxRuntimeModule(onnx_path, threads=threads))


def _weights_digest(loaded_model) -> str:
    """16 hex digits identifying the module's weights, its architecture and the exporter."""
    digest = hashlib.sha256(f"{loaded_model.arch} {torch.__version__} opset {DEFAULT_OPSET}".encode())
    for key, tensor in sorted(loaded_model.module.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _unwritable(target: Path, error: OSError) -> SrganError:
    return SrganError(f"{target}: cannot write the ONNX file ({error.strerror}); choose a writable location")


def _metadata(loaded_model) -> dict[str, str]:
    return {
        "srgan.name": loaded_model.name,
        "srgan.arch": loaded_model.arch,
        "srgan.scale": str(loaded_model.scale),
        "srgan.in_channels": str(loaded_model.in_channels),
        "srgan.out_channels": str(loaded_model.out_channels),
        "srgan.value_range": "0-1",
    }


def _require_exporter() -> None:
    from importlib.util import find_spec

    missing = [name for name in ("onnx", "onnxscript") if find_spec(name) is None]
    if missing:
        raise SrganError(f"ONNX export needs {' and '.join(missing)}, not installed; run: {INSTALL_HINT}")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence torch.onnx's per-pass logging and its warnings about absent torchvision ops.

    None of that concerns these models; a real failure still raises.
    """
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)
