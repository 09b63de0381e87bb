"""Every execution path of benchmarks/cpu_inference.py computes what eager PyTorch computes.

A fast path that computes something else (Inductor's freezing did, on RRDBNet) must not win the speed
table; the benchmark reports each path's difference from eager, and this checks the paths themselves
on tiny networks of both measured architectures. The engine paths (each runtime) are checked in
tests/test_runtimes.py.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from srgan.archs.registry import get_spec
from srgan.models import LoadedModel
from srgan.runtimes import runtime_obstacle

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
TINY = {
    "rrdbnet_x4": {"num_features": 8, "growth_channels": 4, "num_blocks": 1},
    "srvgg_compact_x4": {"num_features": 8, "num_convs": 2},
}
# paths beside eager that need nothing optional (compile needs a C++ compiler and minutes: below)
TORCH_PATHS = ["channels_last", "jit_freeze", "nnpack"]
EXPORT_PATHS = {"onnxruntime": "onnxruntime", "onnxruntime_spin": "onnxruntime", "openvino": "openvino"}


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))  # the script imports its neighbour machine.py
    try:
        spec = importlib.util.spec_from_file_location("cpu_inference", BENCHMARKS / "cpu_inference.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def tiny(preset: str) -> LoadedModel:
    spec = get_spec(preset)
    torch.manual_seed(0)
    module = spec.build(**TINY[preset]).eval()
    return LoadedModel(module, f"tiny-{preset}", spec.arch, spec.scale, spec.in_channels, spec.out_channels, True)


def check_paths(bench, preset: str, paths: list[str], tmp_path) -> None:
    options = SimpleNamespace(threads=1, warmup=1, cache_dir=tmp_path)
    example = torch.rand(1, 3, 12, 16, generator=torch.Generator().manual_seed(2))
    _, rows = bench.build_paths(tiny(preset), "12x16", example, ["eager", *paths], options)
    for path in paths:
        row = rows[path]
        if "skipped" in row and path == "nnpack":
            continue  # a torch build without NNPACK
        assert "skipped" not in row, row
        assert row["diff_from"] == "eager" and row["max_diff"] <= 1e-4, row


@pytest.mark.parametrize("preset", sorted(TINY))
def test_pytorch_paths_match_eager(bench, preset, tmp_path):
    check_paths(bench, preset, TORCH_PATHS, tmp_path)


@pytest.mark.filterwarnings("ignore:exporting tiny")
@pytest.mark.parametrize("path", sorted(EXPORT_PATHS))
def test_exported_paths_match_eager(bench, path, tmp_path_factory):
    obstacle = runtime_obstacle(EXPORT_PATHS[path], tiny("srvgg_compact_x4"), "cpu")
    if obstacle is not None:
        pytest.skip(f"{path}: {obstacle}")
    check_paths(bench, "srvgg_compact_x4", [path], tmp_path_factory.getbasetemp() / "exports")  # exported once


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("SRGAN_COMPILE_TESTS") != "1",
    reason="Inductor builds for minutes on 2 busy cores; run with SRGAN_COMPILE_TESTS=1",
)
def test_compiled_path_matches_eager(bench, tmp_path):
    check_paths(bench, "srvgg_compact_x4", ["compile"], tmp_path)
