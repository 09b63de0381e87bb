"""CPU runtimes: each computes what PyTorch computes; `auto` follows the measured order and falls back."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from srgan import runtimes
from srgan.archs import rrdbnet
from srgan.archs.registry import get_spec
from srgan.cli import main
from srgan.errors import SrganError
from srgan.inference import Upscaler
from srgan.models import LoadedModel
from srgan.runtimes import CPU_CHOICES, RUNTIMES, choose_runtime, runtime_module, runtime_obstacle

# small enough to export in seconds, with the layers that matter: RRDBNet's dense block, pixel-unshuffle-free
# x4 trunk with two nearest upsamplings; SRVGGNetCompact's PReLU body, pixel shuffle and nearest skip
TINY = {
    "rrdbnet_x4": {"num_features": 8, "growth_channels": 4, "num_blocks": 1},
    "srvgg_compact_x4": {"num_features": 8, "num_convs": 2},
}


def tiny_model(preset: str) -> LoadedModel:
    spec = get_spec(preset)
    torch.manual_seed(0)
    module = spec.build(**TINY[preset]).eval()
    if hasattr(module, "conv_last"):  # RRDBNet: centre the random output in [0, 1], where the engine clamps
        with torch.no_grad():
            module.conv_last.bias.add_(0.5)
    return LoadedModel(module, f"tiny-{preset}", spec.arch, spec.scale, spec.in_channels, spec.out_channels, True)


@pytest.fixture(scope="module")
def export_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("srgan-cache")


@pytest.fixture(autouse=True)
def private_cache(export_cache, monkeypatch):
    """ONNX exports of these random models go to a folder of this module, not the user's cache."""
    monkeypatch.setenv("SRGAN_CACHE_DIR", str(export_cache))


@pytest.mark.filterwarnings("ignore:exporting tiny")
@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
@pytest.mark.parametrize("preset", sorted(TINY))
def test_runtime_matches_pytorch_through_the_engine(preset, runtime):
    model = tiny_model(preset)
    obstacle = runtime_obstacle(runtime, model, "cpu")
    if obstacle is not None:
        pytest.skip(f"{runtime}: {obstacle}")
    image = torch.rand(2, 3, 20, 28, generator=torch.Generator().manual_seed(1))
    for tile in (0, 8):  # the whole image, then blended 8-pixel tiles (another window shape)
        expected = Upscaler(model, device="cpu", tile=tile, tile_overlap=4, runtime="torch").upscale_tensor(image)
        other = Upscaler(model, device="cpu", tile=tile, tile_overlap=4, runtime=runtime)
        assert other.runtime == runtime and other.runtime_reason == "asked for"
        actual = other.upscale_tensor(image)
        assert actual.shape == expected.shape == (2, 3, 80, 112)
        assert float(expected.std()) > 0.01  # a real picture, not a constant
        assert float((actual - expected).abs().max()) <= 1e-4


@pytest.mark.filterwarnings("ignore:exporting tiny")
@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
def test_rrdbnet_runtimes_run_the_trunk_and_leave_the_tail_to_pytorch_strips(runtime, monkeypatch):
    """Exported whole, RRDBNet's x4 tail held two 64-feature tensors at 4x the window in the runtime
    (OpenVINO at --tile 256 on a 3000x2000 photo: over 1.9 GiB); only the trunk may go there."""
    model = tiny_model("rrdbnet_x4")
    obstacle = runtime_obstacle(runtime, model, "cpu")
    if obstacle is not None:
        pytest.skip(f"{runtime}: {obstacle}")
    monkeypatch.setattr(rrdbnet, "INFERENCE_STRIP_ROWS", 8)
    strips = []
    upsample_rows = rrdbnet.RRDBNet._upsample_rows

    def counted(network, features, top):
        strips.append(top)
        return upsample_rows(network, features, top)

    monkeypatch.setattr(rrdbnet.RRDBNet, "_upsample_rows", counted)
    image = torch.rand(1, 3, 21, 28, generator=torch.Generator().manual_seed(2))

    split = runtime_module(runtime, model)
    with torch.inference_mode():
        features = split.trunk(image)
        assert features.shape == (1, 8, 21, 28)  # the runtime's output: trunk features at the input's size
        assert float((features - model.module.trunk(image)).abs().max()) <= 1e-4
        expected = model.module(image).clamp(0, 1)
    strips.clear()
    actual = Upscaler(model, device="cpu", tile=0, runtime=runtime).upscale_tensor(image)
    assert strips == [0, 8, 16]  # the tail ran in PyTorch, strip by strip
    assert float((actual - expected).abs().max()) <= 1e-4


def fake_model(arch: str, ncnn_files=None):
    return SimpleNamespace(name=f"fake-{arch}", arch=arch, ncnn_files=ncnn_files, module=torch.nn.Conv2d(3, 3, 1))


def test_auto_takes_the_first_installed_runtime_of_the_measured_order(monkeypatch):
    monkeypatch.setattr(runtimes, "find_spec", lambda name: object())  # everything installed
    for arch, measured in CPU_CHOICES.items():
        choice = choose_runtime("auto", fake_model(arch), "cpu")
        assert choice.runtime == measured.order[0]
        assert measured.evidence in choice.reason


def test_auto_falls_back_past_a_missing_runtime(monkeypatch):
    monkeypatch.setattr(runtimes, "find_spec", lambda name: None if name == "openvino" else object())
    choice = choose_runtime("auto", fake_model("srvgg_compact"), "cpu")
    assert CPU_CHOICES["srvgg_compact"].order[0] == "openvino"
    assert choice.runtime == CPU_CHOICES["srvgg_compact"].order[1]
    assert "openvino skipped: openvino not installed" in choice.reason


def test_auto_uses_pytorch_off_the_cpu_and_for_unmeasured_architectures(monkeypatch):
    monkeypatch.setattr(runtimes, "find_spec", lambda name: object())
    assert choose_runtime("auto", fake_model("rrdbnet"), "cuda").runtime == "torch"
    choice = choose_runtime("auto", fake_model("edsr"), "cpu")
    assert (choice.runtime, choice.reason) == ("torch", "auto: no CPU measurement for edsr")


def test_auto_never_picks_a_runtime_measured_heavier(monkeypatch):
    """ncnn (3.5 GiB for x4plus at --tile 256) and OpenVINO on RRDBNet (+330 MiB, over the 1.5 GiB budget
    on a 3000x2000 photo) are faster but heavier: auto keeps PyTorch even with them installed."""
    monkeypatch.setattr(runtimes, "find_spec", lambda name: object())
    for arch, measured in CPU_CHOICES.items():
        assert not set(measured.order) & set(measured.heavier)
        assert set(measured.order) <= set(RUNTIMES) - {"auto"}
        assert "ncnn" in measured.heavier
        assert choose_runtime("auto", fake_model(arch, ncnn_files=("x.param", "x.bin")), "cpu").runtime != "ncnn"
    choice = choose_runtime("auto", fake_model("rrdbnet"), "cpu")
    assert choice.runtime == "torch" and "OpenVINO 1182 MiB, PyTorch 850" in choice.reason


def test_a_named_runtime_that_cannot_run_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setattr(runtimes, "find_spec", lambda name: None)
    with pytest.raises(SrganError, match=r"runtime openvino: openvino, onnx, onnxscript not installed \(pip install"):
        choose_runtime("openvino", fake_model("rrdbnet"), "cpu")
    with pytest.raises(SrganError, match="runtime onnxruntime: it runs on the CPU only, not on cuda"):
        choose_runtime("onnxruntime", fake_model("rrdbnet"), "cuda")
    with pytest.raises(SrganError, match="runtime ncnn: fake-rrdbnet was not loaded from ncnn files"):
        choose_runtime("ncnn", fake_model("rrdbnet"), "cpu")
    with pytest.raises(SrganError, match="runtime 'onnx': must be one of auto, torch"):
        choose_runtime("onnx", fake_model("rrdbnet"), "cpu")
    assert choose_runtime("torch", fake_model("rrdbnet"), "cpu").runtime == "torch"


def test_a_module_without_weights_stays_where_it_is(monkeypatch):
    monkeypatch.setattr(runtimes, "find_spec", lambda name: object())
    already_converted = SimpleNamespace(
        name="onnx-model", arch="srvgg_compact", ncnn_files=None, module=torch.nn.Identity()
    )
    choice = choose_runtime("auto", already_converted, "cpu")
    assert choice.runtime == "torch" and "onnx-model has no PyTorch weights to hand over" in choice.reason


def test_auto_falls_back_to_pytorch_when_the_chosen_runtime_fails(monkeypatch):
    def broken(runtime, model, **options):
        raise RuntimeError("exporter exploded\nwith details")

    monkeypatch.setattr(runtimes, "runtime_module", broken)
    model = tiny_model("srvgg_compact_x4")
    with pytest.warns(UserWarning, match=r"could not take tiny-srvgg_compact_x4 \(exporter exploded\); using PyTorch"):
        upscaler = Upscaler(model, device="cpu", runtime="auto")
    assert upscaler.runtime == "torch" and upscaler.runtime_reason.endswith("failed: exporter exploded")
    assert upscaler.upscale_tensor(torch.rand(1, 3, 6, 6)).shape == (1, 3, 24, 24)
    with pytest.raises(RuntimeError, match="exporter exploded"):
        Upscaler(model, device="cpu", runtime="openvino")


def test_the_summary_line_and_verbose_say_which_runtime_ran(tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (6, 5), (10, 200, 30)).save(tmp_path / "a.png")
    args = ["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--model", "bicubic", "--scale", "2"]
    assert main([*args, "--verbose"]) == 0
    captured = capsys.readouterr()
    assert "upscaled 1 image(s) with bicubic x2 (torch on cpu)" in captured.out
    assert "srgan: runtime torch on cpu (auto: no CPU measurement for bicubic)" in captured.err
