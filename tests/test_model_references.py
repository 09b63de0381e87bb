"""Any model reference (name, file, training checkpoint) exports to any format and blends; every
architecture round-trips; the scale has one home; errors name the file; imports point down."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import torch

import srgan
from srgan.archs.registry import ARCHITECTURES
from srgan.archs.spec import NetworkSpec
from srgan.cli import main
from srgan.errors import SrganError
from srgan.modelfiles import ModelFile, read, write
from srgan.models import load_model
from srgan.train.checkpoint import save_checkpoint

TINY = {
    "srresnet": {"num_features": 4, "num_blocks": 1, "scale": 2},
    "msrresnet": {"num_features": 4, "num_blocks": 1, "scale": 3},
    "edsr": {"num_features": 4, "num_blocks": 1, "scale": 2, "res_scale": 0.5},
    "rrdbnet": {"num_features": 4, "num_blocks": 1, "growth_channels": 2, "scale": 2},
    "srvgg_compact": {"num_features": 4, "num_convs": 1, "scale": 3},
    "wdrn": {"num_features": 4, "num_blocks": 2, "num_layers": 2, "growth_channels": 2, "scale": 2},
}


def tiny_file(arch: str) -> ModelFile:
    spec = NetworkSpec(arch, TINY[arch])
    module = spec.build()
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.1)
    return ModelFile(spec, module.state_dict(), {"source": "test", "license": "CC0"})


def write_checkpoint(path: Path, model_file: ModelFile) -> Path:
    spec = model_file.spec
    kwargs = {key: value for key, value in spec.kwargs.items() if key != "scale"}
    config = {"name": "tiny", "scale": spec.scale, "generator": {"arch": spec.arch, "kwargs": kwargs},
              "data": {"train_dirs": ["photos"]}}
    save_checkpoint(path, {"params": model_file.state_dict, "params_ema": model_file.state_dict,
                           "iteration": 3, "config": config})
    return path


def test_every_generator_architecture_is_covered():
    assert set(TINY) == {name for name, entry in ARCHITECTURES.items() if entry.describe is not None}


@pytest.mark.parametrize("arch", TINY)
@pytest.mark.parametrize("suffix", [".safetensors", ".pth", ".ckpt"])
def test_round_trip_per_architecture_and_format(arch, suffix, tmp_path):
    original = tiny_file(arch)
    path = tmp_path / f"tiny{suffix}"
    if suffix == ".ckpt":  # training writes checkpoints, srgan only reads them
        write_checkpoint(path, original)
    else:
        write(path, original)

    back = read(path)

    assert back.spec == original.spec
    kept = {"iterations": "3"} if suffix == ".ckpt" else {"license": "CC0"}
    assert kept.items() <= back.provenance.items()
    assert back.state_dict.keys() == original.state_dict.keys()
    for key, tensor in original.state_dict.items():
        assert torch.equal(back.state_dict[key], tensor), key
    if suffix == ".pth":
        assert set(torch.load(path, weights_only=True)["params_ema"]) == set(original.state_dict)


# what chaiNNer / ComfyUI (spandrel) cannot open is said on writing, with what loads the file instead
PTH_NOTES = {
    "srresnet": r"spandrel has no srresnet architecture.*srgan's own network.*srgan\.archs\.srresnet\.SRResNet",
    "wdrn": r"spandrel has no wdrn architecture.*srgan's own network.*srgan\.archs\.wdrn\.WDRN",
    "edsr": r"spandrel has no edsr architecture.*basicsr\.archs\.edsr_arch\.EDSR loads its params_ema",
    "msrresnet": r"spandrel has no msrresnet architecture.*basicsr\.archs\.srresnet_arch\.MSRResNet loads",
    "rrdbnet": r"spandrel builds RRDBNet with 32 growth channels, these weights have 2.*basicsr\.archs\.rrdbnet_arch",
    "srvgg_compact": None,
}


@pytest.mark.parametrize("arch", TINY)
def test_pth_writing_says_when_chainner_and_comfyui_cannot_open_the_file(arch, tmp_path, caplog):
    write(tmp_path / "tiny.pth", tiny_file(arch))
    notes = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    if PTH_NOTES[arch] is None:
        assert notes == []
    else:
        assert len(notes) == 1 and re.search(PTH_NOTES[arch], notes[0]), notes
        assert notes[0].startswith(str(tmp_path / "tiny.pth"))


@pytest.mark.parametrize(
    ("spec", "note"),
    [
        (NetworkSpec("rrdbnet", {"num_blocks": 1}), None),
        (NetworkSpec("srvgg_compact", {"activation": "lrelu"}), r"PReLU only, this one uses lrelu \(act_type='leakyrelu'"),
    ],
)
def test_pth_note_follows_the_network_not_only_its_family(spec, note):
    from srgan.archs.registry import pth_note

    assert (pth_note(spec) is None) if note is None else re.search(note, pth_note(spec))


@pytest.mark.parametrize("arch", TINY)
def test_checkpoint_of_every_architecture_loads_from_its_config(arch, tmp_path):
    original = tiny_file(arch)
    checkpoint = write_checkpoint(tmp_path / "run" / "checkpoints" / "iter_00000003.ckpt", original)
    image = torch.rand(1, 3, 4, 5)

    loaded = srgan.load_model(checkpoint)

    assert (loaded.arch, loaded.scale) == (arch, original.spec.scale)
    assert loaded.metadata["iterations"] == "3"
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(image), original.build()(image))


def test_named_models_export_to_every_format_and_blend(tmp_path, capsys):
    assert main(["export", "compact-psnr-x4", "-o", str(tmp_path / "m.safetensors")]) == 0
    assert main(["export", "compact-psnr-x4", "-o", str(tmp_path / "m.pth")]) == 0
    out = tmp_path / "blend.safetensors"
    assert main(["interpolate", "compact-psnr-x4", "compact-srgan-x4", "--alpha", "0.5", "-o", str(out)]) == 0

    psnr, gan = read(tmp_path / "m.safetensors"), load_model("compact-srgan-x4").module.state_dict()
    pth = torch.load(tmp_path / "m.pth", weights_only=True)["params_ema"]
    blended = read(out)
    for key, tensor in psnr.state_dict.items():
        assert torch.equal(pth[key], tensor)
        torch.testing.assert_close(blended.state_dict[key], 0.5 * tensor + 0.5 * gan[key])
    assert json.loads(blended.provenance["interpolated"])["a"] == "compact-psnr-x4"


def test_export_refuses_an_extension_that_does_not_match_the_format(tmp_path, capsys):
    assert main(["export", "compact-psnr-x4", "-o", str(tmp_path / "m.pth"), "--format", "safetensors"]) == 1
    assert "m.pth: name the output .safetensors" in capsys.readouterr().err
    assert not (tmp_path / "m.pth").exists()


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_unwritable_output_is_one_line_naming_it(suffix, tmp_path, capsys):
    (tmp_path / f"folder{suffix}").mkdir()
    assert main(["export", "compact-psnr-x4", "-o", str(tmp_path / f"folder{suffix}")]) == 1
    assert f"folder{suffix}: is a folder; give the model file to write" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("not a folder")
    assert main(["interpolate", "compact-psnr-x4", "compact-srgan-x4", "--alpha", "0.5",
                 "-o", str(tmp_path / "a-file" / f"blend{suffix}")]) == 1
    assert f"blend{suffix}: cannot write the model file (" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file", f"folder{suffix}"]


def test_checkpoint_exports_to_a_real_pth(tmp_path, capsys):
    original = tiny_file("edsr")
    checkpoint = write_checkpoint(tmp_path / "best.ckpt", original)
    assert main(["export", str(checkpoint), "-o", str(tmp_path / "model.pth")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("srgan: warning: ")]
    assert len(warnings) == 1 and "model.pth: spandrel has no edsr architecture" in warnings[0]
    contents = torch.load(tmp_path / "model.pth", weights_only=True)
    assert set(contents["params_ema"]) == set(original.state_dict)
    assert load_model(tmp_path / "model.pth").arch == "edsr"


def test_stated_scale_that_disagrees_is_refused_naming_both(tmp_path):
    from safetensors.torch import save_file

    original = tiny_file("srvgg_compact")
    path = tmp_path / "old.safetensors"
    header = {"format": "srgan", "arch": "srvgg_compact", "kwargs": original.spec.kwargs_json(), "scale": "2"}
    save_file(original.state_dict, str(path), metadata=header)
    with pytest.raises(SrganError, match=r"old\.safetensors: the header says scale x2 but the network's kwargs say x3"):
        read(path)

    # kwargs claim x2, weights are shaped for x3: refused at read, not at the first forward pass
    header = {"format": "srgan", "arch": "srvgg_compact", "kwargs": json.dumps({**TINY["srvgg_compact"], "scale": 2})}
    save_file(original.state_dict, str(path), metadata=header)
    with pytest.raises(SrganError, match=r"old\.safetensors: the file says scale x2 but its weights are shaped for x3"):
        read(path)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"arch": "srgann", "kwargs": "{}"}, r"odd\.safetensors: unknown architecture 'srgann'"),
        ({"arch": "srvgg_compact", "kwargs": '{"num_featurez": 4}'}, r"odd\.safetensors: srvgg_compact: unknown option 'num_featurez'"),
    ],
)
def test_unknown_architecture_or_option_names_the_file(tmp_path, header, message):
    from safetensors.torch import save_file

    path = tmp_path / "odd.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"format": "srgan", **header})
    with pytest.raises(SrganError, match=message):
        load_model(path)


def test_two_runs_generators_get_distinct_labels_that_name_outputs_beside_the_input(tmp_path, capsys):
    from PIL import Image

    for run in ("run_a", "run_b"):
        write(tmp_path / run / "generator.safetensors", tiny_file("srvgg_compact"))
    labels = {load_model(tmp_path / run / "generator.safetensors").name for run in ("run_a", "run_b")}
    assert labels == {"run_a-generator", "run_b-generator"}
    assert load_model(write_checkpoint(tmp_path / "run_c" / "checkpoints" / "best.ckpt", tiny_file("edsr"))).name == "run_c-best"

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (5, 4)).save(photos / "p.png")
    for run in ("run_a", "run_b"):
        assert main(["upscale", str(photos / "p.png"), "--model", str(tmp_path / run / "generator.safetensors")]) == 0
    # the label goes into the file name: no folder "p_run_a" made for it
    assert sorted(path.name for path in photos.iterdir()) == ["p.png", "p_run_a-generator_x3.png", "p_run_b-generator_x3.png"]

    from srgan.evaluate import evaluate_models

    hr = tmp_path / "hr"
    hr.mkdir()
    Image.new("RGB", (24, 24), (90, 120, 30)).save(hr / "flat.png")
    generators = [tmp_path / run / "generator.safetensors" for run in ("run_a", "run_b")]
    report = evaluate_models(generators, [hr], 3, progress=False)
    assert report.models == ["bicubic", "run_a-generator", "run_b-generator"]


# --- layering: imports point down ---------------------------------------------------------------

SOURCE = Path(srgan.__file__).parent
# lower number = lower layer; a module may import only its own layer or lower ones
LAYERS = {
    "errors": 0, "fileutil": 0, "safeload": 0, "resize": 0, "progress": 0,
    "archs": 1, "metrics": 1, "imageio": 1,
    "modelfiles": 2, "losses": 2, "data": 2, "downloads": 3, "catalogue": 3, "quality": 3,
    "models": 4, "ncnn_runtime": 4,
    "inference": 5, "onnx_export": 5, "openvino_runtime": 5, "runtimes": 5, "evaluate": 6, "train": 6, "video": 6, "batch": 6,
    "serve": 7, "cli": 8, "__init__": 9, "__main__": 9,
}


def _layer(module: str) -> int:
    top = module.split(".")[1] if module.startswith("srgan.") else module
    return LAYERS.get(top.removesuffix(".py"), -1)


def test_no_import_points_up_the_layers():
    upward = []
    for path in SOURCE.rglob("*.py"):
        own = path.relative_to(SOURCE).parts[0].removesuffix(".py")
        if own not in LAYERS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("srgan"):
                names = [node.module] if node.module != "srgan" else [f"srgan.{a.name}" for a in node.names]
            for name in names:
                if name.startswith("srgan.") and _layer(name) > LAYERS[own]:
                    upward.append(f"{path.relative_to(SOURCE)} imports {name}")
    assert upward == []


def test_layer_table_knows_every_module():
    tops = {path.relative_to(SOURCE).parts[0].removesuffix(".py") for path in SOURCE.rglob("*.py")}
    assert tops - set(LAYERS) == set()
