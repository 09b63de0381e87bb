"""Run an ncnn `.param`/`.bin` pair in PyPI's `ncnn` CPU runtime, called like a PyTorch module.

The pretrained generators are converted from ncnn files (`srgan.modelfiles.ncnn.convert_ncnn`);
`srgan.inference.Upscaler(runtime="ncnn")` drives an `NcnnModule` on those same files in place of
the converted network; tiling and blending stay the engine's. `runtime="auto"` does not pick it
(`srgan.runtimes`: measured no faster than PyTorch on a CPU, and heavier in memory). Arithmetic and storage are fp32, so the output matches the PyTorch network to
float32 rounding.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from srgan.errors import SrganError

# ncnn options that would store or compute in reduced precision, or run on a GPU. Packed layouts
# (use_packing_layout) stay on: they only regroup fp32 channels for SIMD, about 10% faster here.
REDUCED_PRECISION_OPTIONS = (
    "use_fp16_storage",
    "use_fp16_arithmetic",
    "use_fp16_packed",
    "use_bf16_storage",
    "use_bf16_packed",
    "use_int8_inference",
    "use_vulkan_compute",
)
INSTALL_HINT = "pip install ncnn"


def blob_names(param_path: str | os.PathLike) -> tuple[str, str]:
    """(input blob, output blob) of a single-input, single-output ncnn network."""
    from srgan.modelfiles.ncnn import parse_ncnn_param

    layers = parse_ncnn_param(param_path)
    inputs = [blob for layer in layers if layer.kind == "Input" for blob in layer.outputs]
    consumed = {blob for layer in layers for blob in layer.inputs}
    outputs = [blob for layer in layers for blob in layer.outputs if blob not in consumed]
    if len(inputs) != 1 or len(outputs) != 1:
        raise SrganError(
            f"{param_path}: expected one input and one output blob, found {len(inputs)} and {len(outputs)}"
        )
    return inputs[0], outputs[0]


class NcnnModule(nn.Module):
    """An ncnn `.param`/`.bin` pair run by ncnn on the CPU in fp32.

    (N, C, H, W) float tensor in, float32 CPU tensor out, one image at a time. It has no parameters,
    so `.to()` and `.eval()` are no-ops. `threads`: ncnn's threads (default: torch's current count,
    so one setting governs both).
    """

    def __init__(self, param_path: str | os.PathLike, bin_path: str | os.PathLike, *, threads: int | None = None):
        super().__init__()
        try:
            import ncnn
        except ImportError:
            raise SrganError(f"the ncnn runtime is not installed; run: {INSTALL_HINT}") from None
        self._mat = ncnn.Mat
        self.input_blob, self.output_blob = blob_names(param_path)
        self.net = ncnn.Net()
        for option in REDUCED_PRECISION_OPTIONS:
            if hasattr(self.net.opt, option):
                setattr(self.net.opt, option, False)
        self.net.opt.num_threads = threads or torch.get_num_threads()
        for path, load in ((param_path, self.net.load_param), (bin_path, self.net.load_model)):
            if load(os.fspath(path)) != 0:
                raise SrganError(f"{Path(path)}: ncnn could not load this file; check that it is intact")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self._run_one(image) for image in x.detach().to("cpu", torch.float32)])

    def _run_one(self, image: torch.Tensor) -> torch.Tensor:
        # ncnn.Mat wraps the array's memory without copying: `pixels` must outlive the extraction.
        pixels = np.ascontiguousarray(image.numpy())
        extractor = self.net.create_extractor()
        extractor.input(self.input_blob, self._mat(pixels))
        status, output = extractor.extract(self.output_blob)
        if status != 0:
            raise RuntimeError(f"ncnn failed on blob {self.output_blob!r} (status {status})")
        return torch.from_numpy(np.array(output))
