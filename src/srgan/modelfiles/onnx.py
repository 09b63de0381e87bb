"""ONNX files (written only): a model file's network as one self-contained graph.

The file (weights inside, fp32) takes `input` and gives `output`, both NCHW float in [0, 1]. With
`dynamic=True` (the default) the batch, height and width axes are symbolic, so one file serves every
image and tile size; the graph is captured with torch.export, which keeps
`F.interpolate(scale_factor=...)` as a `Resize` by scales instead of baking in the example's size
(the classic failure of traced exports, Real-ESRGAN #532). The network's name, architecture,
options, scale, channel counts and provenance are stored in the file's metadata (`srgan.*` keys) so
a runtime can drive it without srgan.

Needs the `onnx` extra (onnx, onnxruntime, plus onnxscript for torch's exporter).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from srgan.errors import SrganError
from srgan.fileutil import atomic_write
from srgan.modelfiles import ModelFile, writing

INPUT_NAME = "input"
OUTPUT_NAME = "output"
# The lowest opset torch's exporter writes natively; lower ones go through a converter that has no
# down-adapter for some ops (Pad 18 -> 17, used by RRDBNet x2/x1) and then keeps 18 silently, which
# export_module turns into an error.
DEFAULT_OPSET = 18
# Example input for tracing. Sides above 1 and unequal, batch 2: torch.export specialises any axis
# whose example size is 0 or 1, and equal sides could be assumed equal. Multiples of 4 suit every
# pixel-unshuffle factor (RRDBNet x2/x1).
EXAMPLE_BATCH = 2
DEFAULT_EXAMPLE_SIZE = (32, 48)
INSTALL_HINT = 'pip install "srgan[onnx]"'


def write(path: Path, model_file: ModelFile, *, name: str) -> None:
    """The network of `model_file` as a dynamic-shape ONNX file; `name` goes into its metadata."""
    spec = model_file.spec
    metadata = {f"srgan.{key}": value for key, value in model_file.provenance.items()}
    metadata.update(network_metadata(name, spec.arch, spec.scale, spec.in_channels, spec.out_channels))
    metadata["srgan.kwargs"] = spec.kwargs_json()
    require_exporter()  # before building a large network
    export_module(model_file.build(), path, in_channels=spec.in_channels, metadata=metadata)


def network_metadata(name: str, arch: str, scale: int, in_channels: int, out_channels: int) -> dict[str, str]:
    """The `srgan.*` keys every srgan ONNX file carries: what a runtime needs to drive the network."""
    return {
        "srgan.name": name,
        "srgan.arch": arch,
        "srgan.scale": str(scale),
        "srgan.in_channels": str(in_channels),
        "srgan.out_channels": str(out_channels),
        "srgan.value_range": "0-1",
    }


def export_module(
    module: nn.Module,
    path: str | Path,
    *,
    in_channels: int,
    metadata: dict[str, str],
    opset: int = DEFAULT_OPSET,
    dynamic: bool = True,
    input_size: tuple[int, int] = DEFAULT_EXAMPLE_SIZE,
) -> Path:
    """Write `module` to `path` as ONNX with `metadata`; returns the path.

    `dynamic=True`: batch, height and width are free. `dynamic=False`: the file accepts exactly one
    (1, C, *input_size) input, which some accelerators (TensorRT engines, NPUs) need; `input_size`
    is (height, width) in input pixels. The module itself is not changed (a CPU fp32 copy is traced).
    """
    require_exporter()
    target = Path(path)
    with writing(target, "ONNX file"):  # before the export, which takes minutes for a large model
        target.parent.mkdir(parents=True, exist_ok=True)
    height, width = input_size
    if height < 2 or width < 2:
        raise SrganError(f"input size {height}x{width}: each side must be at least 2 pixels")

    module = copy.deepcopy(module).to("cpu", torch.float32, memory_format=torch.contiguous_format)
    module.eval()
    batch = EXAMPLE_BATCH if dynamic else 1
    example = torch.rand(batch, in_channels, height, width)
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
            f"opset {opset}: {metadata.get('srgan.name', 'the model')} cannot be converted to it (the graph "
            f"needs opset {written_opset}); export with opset {written_opset} or newer"
        )
    program.model.metadata_props.update(metadata)
    with writing(target, "ONNX file"), atomic_write(target) as temp_path:
        # one file: the weights go inside the protobuf instead of a side-car .data file
        program.save(temp_path, external_data=False)
    return target


def require_exporter() -> None:
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
