"""ONNX for loaded models: export one, and run an export in ONNX Runtime as a drop-in module.

`export_onnx` writes a `srgan.models.LoadedModel` as one self-contained `.onnx` file through the
writer of `srgan.modelfiles.onnx` (dynamic batch, height and width; the model's name, architecture,
scale and channel counts in its `srgan.*` metadata). Model files and any other model reference go
through `srgan.modelfiles.write(path.onnx, ...)` (`srgan export`, `srgan interpolate`).

`onnxruntime_model` turns a loaded model into one whose module runs the exported file in ONNX
Runtime (exported once, cached by weights: `cached_onnx_file`), which `srgan.inference.Upscaler`
drives unchanged (`srgan.runtimes` picks it or OpenVINO by measurement).

Needs the `onnx` extra (onnx, onnxruntime, plus onnxscript for torch's exporter).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from srgan.errors import SrganError
from srgan.modelfiles.onnx import (
    DEFAULT_OPSET,
    INPUT_NAME,
    INSTALL_HINT,
    OUTPUT_NAME,
    export_module,
    network_metadata,
    require_exporter,
)


def export_onnx(loaded_model, path: str | os.PathLike, *, trunk: bool = False, **options) -> Path:
    """Write `loaded_model` (a `srgan.models.LoadedModel`) to `path` as ONNX; returns the path.

    `options` are `srgan.modelfiles.onnx.export_module`'s: `opset`, `dynamic` (default True: batch,
    height and width free) and `input_size` (the one accepted (height, width) when not dynamic).
    `trunk=True` writes only the network's `exportable_trunk()`: the features its upsampling tail starts
    from (metadata `srgan.part` = "trunk"), for a runtime whose caller runs the tail in PyTorch.
    The module itself is not changed (a CPU fp32 copy is traced).
    """
    require_exporter()
    if loaded_model.arch == "bicubic":
        raise SrganError("bicubic: has no network to export; export a trained model instead")
    metadata = network_metadata(
        loaded_model.name, loaded_model.arch, loaded_model.scale, loaded_model.in_channels, loaded_model.out_channels
    )
    module = loaded_model.module
    if trunk:
        module = module.exportable_trunk()
        metadata["srgan.part"] = "trunk"
    return export_module(module, path, in_channels=loaded_model.in_channels, metadata=metadata, **options)


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


def cached_onnx_file(loaded_model, cache_dir: str | os.PathLike | None = None, *, trunk: bool = False) -> Path:
    """The dynamic-shape export of `loaded_model`, written on first use and reused afterwards.

    Kept under `cache_dir` (default: `<srgan cache>/onnx`), named by a digest of the weights and the
    exporter version: exporting a 23-block RRDBNet takes minutes, loading the file a second.
    `trunk=True`: only the network's trunk (see `export_onnx`), kept as `<name>-trunk-<digest>.onnx`.
    """
    from srgan.downloads import cache_dir as srgan_cache_dir

    folder = Path(cache_dir) if cache_dir is not None else srgan_cache_dir() / "onnx"
    part = "-trunk" if trunk else ""
    onnx_path = folder / f"{loaded_model.name}{part}-{_weights_digest(loaded_model)}.onnx"
    if not onnx_path.is_file():
        warnings.warn(
            f"exporting {loaded_model.name} to ONNX, once for these weights (seconds for small models, "
            f"minutes for RRDBNet; runtime torch needs no export); kept in {folder}",
            UserWarning,
            stacklevel=2,
        )
        export_onnx(loaded_model, onnx_path, trunk=trunk)
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
