"""Run a model's ONNX export in OpenVINO's CPU plugin, called like a PyTorch module.

OpenVINO compiles the graph for the CPU it finds (AVX2, AVX-512, AMX: its own convolution kernels,
fused activations and concatenations, blocked layouts). Two settings are not left to its defaults:

- precision: on CPUs with bf16 support (AVX-512 BF16, AMX) the plugin computes in bf16 unless told
  otherwise, which moved outputs of the pretrained models by up to 0.022 (5.6/255); `f32` is forced,
  so the output matches PyTorch to float32 rounding.
- shapes: the export has symbolic batch, height and width; a copy of the graph is compiled for each
  exact input shape it meets (about 1.3x less CPU time than the dynamic graph for RRDBNet x4 at
  64x64), and the last few are kept. The tiled engine cuts every window of an image to one size, so
  an image costs one compilation (0.1 s for SRVGGNetCompact, ~3 s for a 23-block RRDBNet).

Needs the `openvino` extra (plus the `onnx` extra for the export, cached by `srgan.onnx_export`).
"""

from __future__ import annotations

import dataclasses
import os
from collections import OrderedDict

import torch
from torch import nn

from srgan.errors import SrganError

INSTALL_HINT = 'pip install "srgan[openvino]"'
# Compiled shapes kept per module: an image's windows share one shape, a batch of images a few.
COMPILED_SHAPES = 4


class OpenVinoModule(nn.Module):
    """An exported `.onnx` file run by OpenVINO on the CPU in fp32.

    (N, C, H, W) float tensor in, float32 CPU tensor out. It has no parameters, so `.to()` and
    `.eval()` are no-ops. `threads`: OpenVINO's inference threads (default: torch's current count,
    so one setting governs both).
    """

    def __init__(self, onnx_path: str | os.PathLike, *, threads: int | None = None):
        super().__init__()
        try:
            import openvino
        except ImportError:
            raise SrganError(f"OpenVINO is not installed; run: {INSTALL_HINT}") from None
        self._core = openvino.Core()
        self._graph = self._core.read_model(os.fspath(onnx_path))
        self._settings = {
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
        }
        self._requests: OrderedDict[tuple[int, ...], object] = OrderedDict()

    def _request(self, shape: tuple[int, ...]):
        """An inference request of the graph compiled for exactly `shape` (compiled on first use)."""
        if shape in self._requests:
            self._requests.move_to_end(shape)
            return self._requests[shape]
        graph = self._graph.clone()
        graph.reshape({graph.inputs[0]: list(shape)})
        request = self._core.compile_model(graph, "CPU", self._settings).create_infer_request()
        self._requests[shape] = request
        if len(self._requests) > COMPILED_SHAPES:
            self._requests.popitem(last=False)
        return request

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixels = x.detach().to("cpu", torch.float32).contiguous().numpy()
        request = self._request(tuple(pixels.shape))
        request.infer({0: pixels})
        # the request reuses its output buffer for the next call: copy it out
        return torch.from_numpy(request.get_output_tensor(0).data.copy())


def openvino_model(loaded_model, *, threads: int | None = None, cache_dir: str | os.PathLike | None = None):
    """`loaded_model` with its module replaced by an `OpenVinoModule` on its cached ONNX export (CPU)."""
    from srgan.onnx_export import cached_onnx_file

    onnx_path = cached_onnx_file(loaded_model, cache_dir)
    return dataclasses.replace(loaded_model, module=OpenVinoModule(onnx_path, threads=threads))
