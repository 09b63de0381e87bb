"""Who runs the network: PyTorch, OpenVINO, ONNX Runtime or ncnn, chosen by measurement.

Every runtime here computes in fp32, so they all give the same output to float32 rounding (the tests
check each against PyTorch); they differ in speed and memory. On a GPU, PyTorch always runs the
network. On a CPU, `runtime="auto"` takes the first runtime of `CPU_CHOICES[arch].order` that can run
the model here (package installed, ncnn files present for ncnn), else PyTorch; an entry lists only
runtimes measured faster than PyTorch and within the memory budget, with the measurement
(benchmarks/cpu_inference.py, benchmarks/upscale_memory.py, docs/PERFORMANCE.md). OpenVINO and ONNX
Runtime run the model's ONNX export (`srgan.onnx_export.cached_onnx_file`), written once per set of
weights: seconds for SRVGGNetCompact, about three minutes for a 23-block RRDBNet.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec

import torch
from torch import nn

from srgan import ncnn_runtime, onnx_export, openvino_runtime
from srgan.errors import SrganError

RUNTIMES = ("auto", "torch", "openvino", "onnxruntime", "ncnn")
# what each optional runtime needs importable (the ONNX ones also export the model once)
REQUIRED_PACKAGES = {
    "openvino": ("openvino", "onnx", "onnxscript"),
    "onnxruntime": ("onnxruntime", "onnx", "onnxscript"),
    "ncnn": ("ncnn",),
}
INSTALL_HINTS = {
    "openvino": openvino_runtime.INSTALL_HINT,
    "onnxruntime": onnx_export.INSTALL_HINT,
    "ncnn": ncnn_runtime.INSTALL_HINT,
}


@dataclass(frozen=True)
class Measured:
    """The CPU runtimes `auto` may take for one architecture, fastest first, and the measurement behind them.

    A runtime is in `order` only where it was measured faster than PyTorch and kept a large photo
    within the memory budget (docs/PERFORMANCE.md: 1.5 GiB for a 3000x2000 photo); `heavier` names the
    faster ones left out for memory (`--runtime NAME` still runs them).
    """

    order: tuple[str, ...]
    evidence: str
    heavier: tuple[str, ...] = ()


_BENCH = "benchmarks/cpu_inference.py, 2 threads, idle Intel Xeon AVX-512 2 vCPUs, 2026-12-03"
_MEMORY = "benchmarks/upscale_memory.py, 2026-12-03"
CPU_CHOICES: dict[str, Measured] = {
    "rrdbnet": Measured(
        ("torch",),
        "RealESRGAN x4plus 256x256, median s: engine on OpenVINO 9.05, on PyTorch 12.72, on ncnn 15.39 "
        f"({_BENCH}); peak RSS at --tile 256 on a 600x560 photo: OpenVINO 1182 MiB, PyTorch 850 "
        f"({_MEMORY}), which takes a 3000x2000 photo over 1.5 GiB on OpenVINO; ncnn 3759 MiB at 256x256",
        heavier=("openvino", "ncnn"),
    ),
    "srvgg_compact": Measured(
        ("openvino", "torch"),
        "realesr-animevideov3 256x256, median s: engine on OpenVINO 0.290, on PyTorch 0.316, on ncnn 0.435; "
        f"compact-psnr-x4, 1-megapixel photo: engine on OpenVINO 6.04, on PyTorch 10.53 ({_BENCH}); "
        f"3000x2000 photo, peak RSS: OpenVINO 1191 MiB, PyTorch 1006 ({_MEMORY})",
        heavier=("ncnn",),
    ),
}


@dataclass(frozen=True)
class RuntimeChoice:
    """The runtime that will run the network, and why (for `--verbose`)."""

    runtime: str
    reason: str


def runtime_obstacle(runtime: str, model, device_type: str) -> str | None:
    """Why `runtime` cannot run `model` (a LoadedModel) on a `device_type` device, or None when it can."""
    if runtime == "torch":
        return None
    if device_type != "cpu":
        return f"it runs on the CPU only, not on {device_type}"
    if runtime == "ncnn" and model.ncnn_files is None:
        return f"{model.name} was not loaded from ncnn files"
    if next(model.module.parameters(), None) is None:  # bicubic, or a module of one of these runtimes
        return f"{model.name} has no PyTorch weights to hand over"
    missing = [name for name in REQUIRED_PACKAGES[runtime] if find_spec(name) is None]
    if missing:
        return f"{', '.join(missing)} not installed ({INSTALL_HINTS[runtime]})"
    return None


def choose_runtime(requested: str, model, device_type: str) -> RuntimeChoice:
    """The runtime for `requested` ("auto" or one of `RUNTIMES`); SrganError when a named one cannot run."""
    if requested not in RUNTIMES:
        raise SrganError(f"runtime {requested!r}: must be one of {', '.join(RUNTIMES)}")
    if requested != "auto":
        obstacle = runtime_obstacle(requested, model, device_type)
        if obstacle is not None:
            raise SrganError(f"runtime {requested}: {obstacle}; use runtime auto or torch")
        return RuntimeChoice(requested, "asked for")
    if device_type != "cpu":
        return RuntimeChoice("torch", f"auto on {device_type}")
    measured = CPU_CHOICES.get(model.arch)
    if measured is None:
        return RuntimeChoice("torch", f"auto: no CPU measurement for {model.arch}")
    skipped = []
    for runtime in measured.order:
        obstacle = runtime_obstacle(runtime, model, device_type)
        if obstacle is None:
            passed = "".join(f"; {line}" for line in skipped)
            return RuntimeChoice(runtime, f"auto, measured for {model.arch}: {measured.evidence}{passed}")
        skipped.append(f"{runtime} skipped: {obstacle}")
    return RuntimeChoice("torch", "auto: " + "; ".join(skipped))


def runtime_module(runtime: str, model, *, threads: int | None = None, cache_dir=None):
    """The module that runs `model` in `runtime` ("openvino", "onnxruntime" or "ncnn") on the CPU.

    The ONNX runtimes export the model on first use (`srgan.onnx_export.cached_onnx_file`, under
    `cache_dir`), which warns that it does so. A network with an `exportable_trunk` (RRDBNet) has only
    that exported: its upsampling tail stays in PyTorch, which runs it in strips (`TrunkInRuntime`).
    """
    if runtime == "ncnn":
        return ncnn_runtime.NcnnModule(*model.ncnn_files, threads=threads)
    split = hasattr(model.module, "exportable_trunk")
    onnx_path = onnx_export.cached_onnx_file(model, cache_dir, trunk=split)
    if runtime == "openvino":
        exported = openvino_runtime.OpenVinoModule(onnx_path, threads=threads)
    else:
        exported = onnx_export.OnnxRuntimeModule(onnx_path, threads=threads)
    return TrunkInRuntime(exported, model.module) if split else exported


class TrunkInRuntime(nn.Module):
    """A network's trunk run by another runtime, then its upsampling tail by PyTorch.

    RRDBNet x4 keeps two 64-feature tensors at 4x the window's size in its tail (420 MB each for a
    320x320 window); OpenVINO holds them for the whole window, PyTorch runs the tail in strips. The
    tail is about 8% of RRDBNet's multiply-adds, so the runtime keeps nearly all of its speed.
    """

    def __init__(self, trunk: nn.Module, network: nn.Module):
        super().__init__()
        self.trunk = trunk
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.trunk(x).contiguous(memory_format=torch.channels_last)
        return self.network.upsample(features, x.shape[-2:])
