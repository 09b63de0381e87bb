"""ONNX export: the file runs in ONNX Runtime at sizes other than the traced one and matches PyTorch.

The models are tiny versions of the two architectures whose upsampling is a nearest `interpolate`
with `scale_factor` (RRDBNet's trunk, SRVGGNetCompact's skip), the op that traced exports used to
freeze to the example size. Exports take seconds each on 2 CPU cores, so each model is exported
once for the whole module and the other tests share the file.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason="ONNX export tests need onnx (pip install onnx)")
pytest.importorskip("onnxscript", reason="torch's ONNX exporter needs onnxscript (pip install onnxscript)")
ort = pytest.importorskip("onnxruntime", reason="ONNX export tests need onnxruntime (pip install onnxruntime)")

from srgan.archs.registry import get_spec
from srgan.errors import SrganError
from srgan.models import LoadedModel
from srgan.onnx_export import OnnxRuntimeModule, export_onnx, onnxruntime_model

TINY_MODELS = {
    # no RRDB blocks: keeps the export fast while leaving both nearest x2 upsampling steps in place
    "rrdbnet_x4": {"num_features": 4, "growth_channels": 2, "num_blocks": 0},
    "srvgg_compact_x4": {"num_features": 4, "num_convs": 1},
}


def tiny_loaded_model(preset: str, **overrides) -> LoadedModel:
    spec = get_spec(preset)
    module = spec.build(**{**TINY_MODELS.get(preset, {}), **overrides}).eval()
    return LoadedModel(module, f"tiny-{preset}", spec.arch, spec.scale, spec.in_channels, spec.out_channels, True)


def run_onnx(path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.numpy()})[0]


@pytest.fixture(scope="module", params=sorted(TINY_MODELS))
def exported(request, tmp_path_factory):
    """(loaded model, its dynamic export), written once per architecture through the ONNX Runtime cache."""
    torch.manual_seed(0)
    loaded = tiny_loaded_model(request.param)
    cache_dir = tmp_path_factory.mktemp("onnx")
    onnxruntime_model(loaded, threads=1, cache_dir=cache_dir)
    (path,) = cache_dir.glob("*.onnx")
    return loaded, path


@pytest.mark.parametrize("shape", [(1, 3, 20, 28), (2, 3, 13, 7), (1, 3, 45, 6)])  # 45 rows: RRDBNet in strips
def test_dynamic_export_matches_pytorch_at_other_sizes(exported, shape):
    loaded, path = exported
    x = torch.rand(shape)
    with torch.no_grad():
        expected = loaded.module(x).numpy()
    result = run_onnx(path, x)
    assert result.shape == (shape[0], 3, shape[2] * 4, shape[3] * 4)
    np.testing.assert_allclose(result, expected, atol=1e-4, rtol=0)


def test_export_is_one_file_with_model_metadata(exported):
    import onnx

    loaded, path = exported
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no side-car weights, no temp file
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    assert metadata["srgan.arch"] == loaded.arch
    assert metadata["srgan.scale"] == "4"
    assert [node.name for node in model.graph.input] == ["input"]
    assert [node.name for node in model.graph.output] == ["output"]


def test_export_leaves_the_module_untouched(exported):
    loaded, _ = exported
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in loaded.module.parameters())
    assert not loaded.module.training


def test_onnxruntime_module_takes_channels_last_tensors(exported):
    loaded, path = exported
    x = torch.rand(1, 3, 10, 12).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        expected = loaded.module(x)
    result = OnnxRuntimeModule(path, threads=1)(x)
    assert result.dtype == torch.float32
    torch.testing.assert_close(result, expected, atol=1e-4, rtol=0)


def test_onnxruntime_model_runs_in_the_tiled_engine_and_is_cached(exported, monkeypatch):
    from srgan import onnx_export
    from srgan.inference import Upscaler

    loaded, path = exported  # the fixture wrote `path` through onnxruntime_model's cache

    def no_second_export(*args, **kwargs):
        raise AssertionError("exported again although the file is cached")

    monkeypatch.setattr(onnx_export, "export_onnx", no_second_export)
    on_onnxruntime = onnxruntime_model(loaded, threads=1, cache_dir=path.parent)
    assert list(path.parent.glob("*.onnx")) == [path]
    assert (on_onnxruntime.name, on_onnxruntime.scale) == (loaded.name, loaded.scale)
    image = torch.rand(1, 3, 40, 36)
    # small tiles: several windows, blended, exercise the batch path of the engine
    expected = Upscaler(loaded, device="cpu", tile=16, tile_overlap=4, runtime="torch").upscale_tensor(image)
    on_engine = Upscaler(on_onnxruntime, device="cpu", tile=16, tile_overlap=4)
    assert on_engine.runtime == "torch"  # auto hands nothing on: the module is ONNX Runtime already
    result = on_engine.upscale_tensor(image)
    torch.testing.assert_close(result, expected, atol=1e-4, rtol=0)


def test_static_export_accepts_only_its_size(tmp_path):
    loaded = tiny_loaded_model("srvgg_compact_x4")
    path = export_onnx(loaded, tmp_path / "static.onnx", dynamic=False, input_size=(12, 16))
    x = torch.rand(1, 3, 12, 16)
    with torch.no_grad():
        expected = loaded.module(x).numpy()
    np.testing.assert_allclose(run_onnx(path, x), expected, atol=1e-4, rtol=0)
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        run_onnx(path, torch.rand(1, 3, 16, 16))


def test_bicubic_is_refused(tmp_path):
    from srgan.resize import BicubicUpsampler

    bicubic = LoadedModel(BicubicUpsampler(4), "bicubic", "bicubic", 4, 3, 3, True)
    with pytest.raises(SrganError, match="bicubic"):
        export_onnx(bicubic, tmp_path / "bicubic.onnx")
    assert not any(tmp_path.iterdir())


def test_folder_as_target_is_refused(tmp_path):
    with pytest.raises(SrganError, match="is a folder"):
        export_onnx(tiny_loaded_model("rrdbnet_x4"), tmp_path)


def test_missing_exporter_names_the_install_command(monkeypatch, tmp_path):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == "onnxscript" else real_find_spec(name, *args)
    )
    with pytest.raises(SrganError, match=r"onnxscript.*pip install"):
        export_onnx(tiny_loaded_model("rrdbnet_x4"), tmp_path / "model.onnx")


def test_unreachable_opset_is_refused_not_silently_raised(tmp_path, monkeypatch):
    # RRDBNet x2 pads its input; torch writes Pad at opset 18, cannot convert it down to 17 and keeps
    # 18 without a word. A stand-in exporter reports that outcome: the real one takes a full export.
    def not_saved(*args, **kwargs):
        raise AssertionError("saved a file although the asked opset was not reached")

    program = SimpleNamespace(model=SimpleNamespace(opset_imports={"": 18}, metadata_props={}), save=not_saved)
    monkeypatch.setattr(torch.onnx, "export", lambda *args, **kwargs: program)
    loaded = tiny_loaded_model("rrdbnet_x2", **TINY_MODELS["rrdbnet_x4"])
    with pytest.raises(SrganError, match="opset 17.*opset 18"):
        export_onnx(loaded, tmp_path / "old.onnx", opset=17)
    assert not any(tmp_path.iterdir())


def test_unwritable_target_is_one_clear_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder is expected")
    with pytest.raises(SrganError, match="cannot write the ONNX file"):
        export_onnx(tiny_loaded_model("srvgg_compact_x4"), blocker / "model.onnx")


def test_cli_exports_a_training_checkpoint_as_dynamic_onnx(tmp_path, capsys):
    from srgan.cli import main
    from srgan.train.checkpoint import save_checkpoint

    torch.manual_seed(0)
    loaded = tiny_loaded_model("srvgg_compact_x4")
    ema_weights = loaded.module.state_dict()
    config = {
        "name": "tiny",
        "scale": 4,
        "generator": {"arch": "srvgg_compact", "kwargs": TINY_MODELS["srvgg_compact_x4"]},
        "data": {"train_dirs": ["unused"]},
    }
    checkpoint = tmp_path / "iter_00000005.ckpt"
    # raw weights all zero: a matching output shows the EMA weights were the ones exported
    raw_weights = {key: torch.zeros_like(value) for key, value in ema_weights.items()}
    save_checkpoint(checkpoint, {"params": raw_weights, "params_ema": ema_weights, "config": config, "iteration": 5})
    target = tmp_path / "tiny.onnx"

    assert main(["export", str(checkpoint), "-o", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    x = torch.rand(1, 3, 9, 11)  # neither side is the traced example's
    with torch.no_grad():
        expected = loaded.module(x).numpy()
    np.testing.assert_allclose(run_onnx(target, x), expected, atol=1e-4, rtol=0)


def test_cli_refuses_fp16_for_onnx(tmp_path, capsys):
    from srgan.cli import main

    assert main(["export", "compact-psnr-x4", "-o", str(tmp_path / "model.onnx"), "--fp16"]) == 1
    assert "model.onnx: ONNX files are written in float32" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_interpolation_of_named_models_writes_onnx_with_its_provenance(tmp_path):
    import onnx

    from srgan.cli import main
    from srgan.models import load_model

    target = tmp_path / "blend.onnx"
    assert main(["interpolate", "compact-psnr-x4", "compact-srgan-x4", "--alpha", "0.5", "-o", str(target)]) == 0

    metadata = {entry.key: entry.value for entry in onnx.load(str(target)).metadata_props}
    assert (metadata["srgan.arch"], metadata["srgan.scale"], metadata["srgan.name"]) == ("srvgg_compact", "4", "blend")
    assert '"alpha": 0.5' in metadata["srgan.interpolated"] and "MIT" in metadata["srgan.license"]
    blend = load_model("compact-psnr-x4").module
    with torch.no_grad():
        for parameter, other in zip(blend.parameters(), load_model("compact-srgan-x4").module.parameters()):
            parameter.copy_(0.5 * parameter + 0.5 * other)
        x = torch.rand(1, 3, 9, 7)
        np.testing.assert_allclose(run_onnx(target, x), blend(x).numpy(), atol=1e-4, rtol=0)
