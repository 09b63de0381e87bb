"""CPU inference speed (and peak memory) of the super-resolution networks through every execution path,
against ncnn on the same weights.

One run compares, at a fixed thread count (default 2), for each model and input:

  eager          the module called as is: fp32, NCHW, inference_mode
  engine         srgan.inference.Upscaler on CPU with its defaults (what `srgan upscale` runs): the
                 runtime `srgan.runtimes` picks by measurement (the table prints which)
  engine_torch   the engine with runtime="torch" (PyTorch, channels_last)
  engine_openvino  the engine with runtime="openvino" (RRDBNet: the trunk's export in OpenVINO, the x4
                 tail in PyTorch's strips; other networks: the whole export)
  engine_ncnn    the engine with runtime="ncnn" (srgan.ncnn_runtime, fp32; models from ncnn files)
  channels_last  module and input in channels_last (NHWC) memory format
  jit_freeze     torch.jit.trace + freeze + optimize_for_inference (oneDNN weight prepacking, fusions)
  compile        torch.compile (Inductor CPU, default options, freezing off); minutes to build
  nnpack         every 3x3 conv through NNPACK's Winograd kernels (the algorithm ncnn uses for 3x3)
  onnxruntime    the ONNX export in ONNX Runtime (srgan.onnx_export.OnnxRuntimeModule: all graph
                 optimisations, NCHWc layouts, threads that sleep when idle)
  onnxruntime_spin  the same with ONNX Runtime's spinning thread pool (its default)
  openvino       the ONNX export in OpenVINO's CPU plugin, fp32, compiled for the exact input shape
                 (srgan.openvino_runtime.OpenVinoModule)
  ncnn           the model's own .param/.bin (models from ncnn files) run by PyPI's ncnn with its
                 defaults (fp16 weight storage, packed layouts, Winograd): what Real-ESRGAN's CPU users run

Models: "rrdbnet" = RealESRGAN_x4plus, "anime" = realesr-animevideov3 (SRVGGNetCompact 16 x 64), both
converted from the ncnn files that the ncnn path runs, so every path computes the same function;
"compact" = the embedded default of `srgan upscale` (compact-psnr-x4, SRVGGNetCompact 16 x 48);
"srresnet" = the untrained `srresnet_x4` preset (weights do not change the amount of work).

Each path is built once per input (export / compile time is reported as "setup"), run `--warmup`
times, then timed `--repeats` rounds; within a round the paths run one after another, in a rotating
order, so a burst of load on a shared machine hits all of them alike. The table gives the median, the
spread (min to max) and the CPU seconds of the process; "max diff" is the largest absolute difference
from the eager output after clamping to [0, 1] (a wrong fast path shows up here: anything above 1/255
is flagged). `--photo` also runs a photo, resized to about one megapixel, through the tiled engine
paths. `--memory` measures each path's peak RSS in a fresh process (model, path and one run; not for
`compile`, whose build would dominate).

    python benchmarks/cpu_inference.py
    python benchmarks/cpu_inference.py --models rrdbnet anime compact srresnet --sizes 64 256 --repeats 7 \
        --paths eager channels_last compile onnxruntime openvino ncnn engine --photo PHOTO.jpg --memory --json cpu.json
    python benchmarks/cpu_inference.py --models rrdbnet --paths eager engine openvino ncnn
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
import subprocess
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

DEFAULT_PATHS = ("eager", "engine", "channels_last", "onnxruntime", "openvino", "ncnn")
ALL_PATHS = (
    *DEFAULT_PATHS,
    *("engine_torch", "engine_openvino", "engine_ncnn", "jit_freeze", "compile", "nnpack", "onnxruntime_spin"),
)
# the paths that tile: the only ones a megapixel photo goes through (whole-image RRDBNet needs >10 GB)
ENGINE_PATHS = ("engine", "engine_torch", "engine_openvino", "engine_ncnn")
MODELS = {
    "srresnet": "srresnet_x4",
    "rrdbnet": "realesrgan-x4plus",
    "anime": "realesr-animevideov3",
    "compact": "compact-psnr-x4",
}
PHOTO_PIXELS = 1_000_000
# a path whose output differs from eager by more than this (after clamping) is flagged: not the same image
SAME_OUTPUT = 1 / 255

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


def engine_builder(runtime: str) -> Callable[..., Runner]:
    def build(loaded, example: torch.Tensor, options) -> Runner:
        from srgan.inference import Upscaler

        try:
            upscaler = Upscaler(private_copy(loaded), device="cpu", runtime=runtime, tile=options.tile)
        except SrganError as error:  # a runtime that cannot take this model here
            raise PathUnavailable(str(error)) from None
        build.runtime = upscaler.runtime
        return upscaler.upscale_tensor

    return build


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


def exported(loaded, options):
    """The cached ONNX export of `loaded` in --cache-dir (srgan.onnx_export)."""
    from srgan.onnx_export import cached_onnx_file

    try:
        return cached_onnx_file(loaded, options.cache_dir)
    except SrganError as error:  # onnx / onnxscript missing
        raise PathUnavailable(str(error)) from None


def build_onnxruntime(loaded, example: torch.Tensor, options, *, spinning: bool = False) -> Runner:
    from srgan.onnx_export import OnnxRuntimeModule

    try:
        return OnnxRuntimeModule(exported(loaded, options), threads=options.threads, spinning=spinning)
    except SrganError as error:
        raise PathUnavailable(str(error)) from None


def build_onnxruntime_spin(loaded, example: torch.Tensor, options) -> Runner:
    return build_onnxruntime(loaded, example, options, spinning=True)


def build_openvino(loaded, example: torch.Tensor, options) -> Runner:
    from srgan.openvino_runtime import OpenVinoModule

    try:
        return OpenVinoModule(exported(loaded, options), threads=options.threads)
    except SrganError as error:
        raise PathUnavailable(str(error)) from None


def build_ncnn(loaded, example: torch.Tensor, options) -> Runner:
    if loaded.ncnn_files is None:
        raise PathUnavailable(f"{loaded.name} has no ncnn files")
    try:
        import ncnn
    except ImportError:
        raise PathUnavailable("ncnn is not installed (pip install ncnn)") from None
    from srgan.ncnn_runtime import blob_names

    param_path, bin_path = loaded.ncnn_files
    input_blob, output_blob = blob_names(param_path)
    net = ncnn.Net()  # ncnn's own defaults, as its users run it; only the GPU is ruled out
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = options.threads
    net.load_param(str(param_path))
    net.load_model(str(bin_path))

    def run(x):
        extractor = net.create_extractor()
        pixels = np.ascontiguousarray(x[0].numpy())  # ncnn.Mat wraps it: it must outlive the extraction
        extractor.input(input_blob, ncnn.Mat(pixels))
        status, output = extractor.extract(output_blob)
        if status != 0:
            raise RuntimeError(f"ncnn extract failed with status {status}")
        return torch.from_numpy(np.array(output))[None]

    return run


BUILDERS: dict[str, Callable[..., Runner]] = {
    "eager": build_eager,
    "engine": engine_builder("auto"),
    "engine_torch": engine_builder("torch"),
    "engine_openvino": engine_builder("openvino"),
    "engine_ncnn": engine_builder("ncnn"),
    "channels_last": build_channels_last,
    "jit_freeze": build_jit_freeze,
    "compile": build_compile,
    "nnpack": build_nnpack,
    "onnxruntime": build_onnxruntime,
    "onnxruntime_spin": build_onnxruntime_spin,
    "openvino": build_openvino,
    "ncnn": build_ncnn,
}


# --- measurement --------------------------------------------------------------------------------


def random_input(loaded, size: int) -> tuple[str, torch.Tensor]:
    return f"{size}x{size}", torch.rand(1, loaded.in_channels, size, size, generator=torch.Generator().manual_seed(0))


def photo_input(path: Path, pixels: int = PHOTO_PIXELS) -> tuple[str, torch.Tensor]:
    """The photo at `path`, resized (antialiased) to about `pixels` pixels, as a (1, 3, H, W) tensor."""
    from PIL import Image

    with Image.open(path) as image:
        rgb = image.convert("RGB")
    factor = (pixels / (rgb.width * rgb.height)) ** 0.5
    rgb = rgb.resize((round(rgb.width * factor), round(rgb.height * factor)), Image.Resampling.LANCZOS)
    tensor = torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1)[None].float() / 255
    return f"{path.name} {rgb.width}x{rgb.height}", tensor


def build_paths(loaded, label: str, example: torch.Tensor, paths: list[str], options):
    """(runners, rows): every path built and run once on `example`, its output compared with the first."""
    runners: dict[str, Runner] = {}
    rows: dict[str, dict] = {}
    reference = None
    for path in paths:
        row = {"model": loaded.name, "input": label, "path": path}
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
        if hasattr(BUILDERS[path], "runtime"):
            row["runtime"] = BUILDERS[path].runtime
        if reference is None:
            reference, reference_path = output.float(), path
        # compared as images (clamped to [0, 1]): the engine clamps, and an untrained model overshoots
        row["max_diff"] = float((output.float().clamp(0, 1) - reference.clamp(0, 1)).abs().max())
        row["diff_from"] = reference_path
        runners[path] = runner
        print(f"  {loaded.name} {label} {path}: ready ({row['setup_s']:.1f} s)", file=sys.stderr, flush=True)
    return runners, rows


def measure(loaded, label: str, example: torch.Tensor, paths: list[str], options) -> list[dict]:
    """Build every path for `example`, then time them in interleaved rounds."""
    runners, rows = build_paths(loaded, label, example, paths, options)
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
    input_megapixels = example.shape[-2] * example.shape[-1] / 1e6
    for path, samples in times.items():
        median = statistics.median(samples)
        rows[path].update(
            median_s=median,
            min_s=min(samples),
            max_s=max(samples),
            times_s=samples,
            # CPU seconds of all this process's threads: on a busy machine, wall time grows and this does not
            cpu_s=statistics.median(cpu_times[path]),
            s_per_input_megapixel=median / input_megapixels,
            load_average=loads,
        )
    if options.memory:
        # not torch.compile: a fresh process would rebuild it for minutes, and the compiler's own peak hides the run's
        for path in (path for path in runners if path != "compile"):
            rows[path]["peak_rss_mb"] = peak_rss_of(loaded, path, options)
    return [rows[path] for path in paths]


def peak_rss_of(loaded, path: str, options) -> float | None:
    """Peak RSS (MiB) of a fresh process that loads the model, then builds `path` and runs it once."""
    key = next(key for key, name in MODELS.items() if name == loaded.name)
    command = [sys.executable, __file__, "--models", key, "--paths", path, "--threads", str(options.threads)]
    command += ["--cache-dir", str(options.cache_dir), "--rss-child", options.current_input]
    command += ["--tile", str(options.tile)] if options.tile is not None else []
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        print(f"  peak RSS of {path} failed: {finished.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    return float(finished.stdout.strip().splitlines()[-1])


def rss_child(options) -> int:
    """--rss-child: run one path once on one input; print the peak RSS in MiB from then on.

    The peak is reset (Linux `clear_refs`) once the model and input are loaded, so the figure is what
    building and running the path takes on top of an already loaded process, the same for every path.
    """
    loaded = load_benchmark_model(options.models[0])
    source = options.rss_child
    label, example = photo_input(Path(source)) if not source.isdigit() else random_input(loaded, int(source))
    Path("/proc/self/clear_refs").write_text("5")
    build_paths(loaded, label, example, options.paths, options)
    status = Path("/proc/self/status").read_text()
    peak_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    print(peak_kib / 1024)
    return 0


def add_ratios(rows: list[dict]) -> None:
    """Speed relative to eager and to ncnn (>1: faster) for the rows of one model and input.

    Through the tiled engine (the photo), ncnn's speed is the engine's with the ncnn runtime.
    """
    medians = {row["path"]: row["median_s"] for row in rows if "median_s" in row}
    baselines = {"eager": "eager", "ncnn": "ncnn" if "ncnn" in medians else "engine_ncnn"}
    for row in rows:
        if "median_s" in row:
            for name, base in baselines.items():
                if base in medians:
                    row[f"speedup_vs_{name}"] = medians[base] / row["median_s"]


def format_ratio(row: dict, key: str) -> str:
    return f"{row[key]:.2f}x" if key in row else "—"


def markdown_table(rows: list[dict]) -> str:
    header = (
        "| model | input | path | median s (min–max) | CPU s | s per input MP | vs eager | vs ncnn | max diff | "
        "peak RSS MiB | setup s |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [header]
    for row in rows:
        path = f"{row['path']} ({row['runtime']})" if "runtime" in row else row["path"]
        if "skipped" in row:
            lines.append(f"| {row['model']} | {row['input']} | {path} | — | — | — | — | — | — | — | skipped: {row['skipped']} |")
            continue
        flag = " **differs**" if row["max_diff"] > SAME_OUTPUT else ""
        rss = f"{row['peak_rss_mb']:.0f}" if row.get("peak_rss_mb") else "—"
        lines.append(
            f"| {row['model']} | {row['input']} | {path} | {row['median_s']:.3f} ({row['min_s']:.3f}–{row['max_s']:.3f}) | "
            f"{row['cpu_s']:.3f} | {row['s_per_input_megapixel']:.1f} | {format_ratio(row, 'speedup_vs_eager')} | "
            f"{format_ratio(row, 'speedup_vs_ncnn')} | {row['max_diff']:.1e}{flag} | {rss} | {row['setup_s']:.1f} |"
        )
    return "\n".join(lines)


def environment(threads: int) -> dict:
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for package in ("onnxruntime", "openvino", "ncnn", "numpy"):
        try:
            versions[package] = __import__(package).__version__
        except (ImportError, AttributeError):
            versions[package] = None
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    vector_flags = sorted(flag for flag in flags.split() if flag.startswith(("avx", "amx", "fma", "f16c")))
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu_name(),
        "cpu_vector_flags": vector_flags,
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
    parser.add_argument("--sizes", nargs="*", type=int, default=[64], help="square input sides (LR pixels)")
    parser.add_argument("--paths", nargs="+", choices=ALL_PATHS, default=list(DEFAULT_PATHS))
    parser.add_argument(
        "--photo", type=Path, help="also run this photo, resized to about 1 megapixel, through the engine paths"
    )
    parser.add_argument(
        "--photo-models",
        nargs="+",
        choices=sorted(MODELS),
        default=["anime", "compact"],
        help="models the photo goes through (RRDBNet takes minutes per megapixel and path)",
    )
    parser.add_argument(
        "--tile", type=int, metavar="PIXELS", help="the engine paths' tile side (default: the engine's own)"
    )
    parser.add_argument("--memory", action="store_true", help="also measure each path's peak RSS (fresh process)")
    parser.add_argument("--threads", type=int, default=2, help="threads for torch, ONNX Runtime, OpenVINO and ncnn")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per path (at least 1)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds")
    parser.add_argument(
        "--cache-dir",
        default=Path(tempfile.gettempdir()) / "srgan-bench",
        type=Path,
        help="where exported ONNX files are kept between runs",
    )
    parser.add_argument("--json", type=Path, help="also write all results (every timing) to this file")
    parser.add_argument("--rss-child", metavar="SIZE|PHOTO", help=argparse.SUPPRESS)  # used by --memory
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.repeats < 1 or args.threads < 1:
        parser.error("--warmup, --repeats and --threads must be at least 1")
    if args.sizes and min(args.sizes) < 8:
        parser.error("--sizes must be at least 8 pixels")
    return args


def main(argv=None) -> int:
    options = parse_args(argv)
    torch.set_num_threads(options.threads)
    options.cache_dir.mkdir(parents=True, exist_ok=True)
    if options.rss_child:
        return rss_child(options)
    env = environment(options.threads)
    print(
        f"{env['cpu']}, {env['logical_cpus']} logical CPUs, {options.threads} threads; {env['versions']}",
        file=sys.stderr,
    )
    results = []
    for key in options.models:
        loaded = load_benchmark_model(key)
        inputs = [(str(size), *random_input(loaded, size), options.paths) for size in options.sizes]
        if options.photo is not None and key in options.photo_models:
            photo_paths = [path for path in options.paths if path in ENGINE_PATHS]
            inputs.append((str(options.photo), *photo_input(options.photo), photo_paths))
        for source, label, example, paths in inputs:
            options.current_input = source
            rows = measure(loaded, label, example, paths, options)
            add_ratios(rows)
            results.extend(rows)
            print(markdown_table(rows), file=sys.stderr, flush=True)
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
