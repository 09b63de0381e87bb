"""Any model reference (name, file, training checkpoint) exports to any format and blends; every
architecture round-trips; the scale has one home; errors name the file; imports point down."""

from __future__ import annotations

import ast
import json
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
@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_round_trip_per_architecture_and_format(arch, suffix, tmp_path):
    original = tiny_file(arch)
    path = tmp_path / f"tiny{suffix}"
    if suffix == ".pth" and not ARCHITECTURES[arch].basicsr_keys:
        with pytest.raises(SrganError, match=rf"tiny\.pth: {arch} has no BasicSR / Real-ESRGAN \.pth layout"):
            write(path, original)
        assert not path.exists()
        return
    write(path, original)

    back = read(path)

    assert back.spec == original.spec
    assert back.provenance["license"] == "CC0"
    for key, tensor in original.state_dict.items():
        assert torch.equal(back.state_dict[key], tensor), key
    if suffix == ".pth":
        assert set(torch.load(path, weights_only=True)["params_ema"]) == set(original.state_dict)


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


def test_checkpoint_exports_to_a_real_pth(tmp_path):
    original = tiny_file("edsr")
    checkpoint = write_checkpoint(tmp_path / "best.ckpt", original)
    assert main(["export", str(checkpoint), "-o", str(tmp_path / "model.pth")]) == 0
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


def test_two_runs_generators_get_distinct_labels(tmp_path):
    for run in ("run_a", "run_b"):
        write(tmp_path / run / "generator.safetensors", tiny_file("srvgg_compact"))
    labels = {load_model(tmp_path / run / "generator.safetensors").name for run in ("run_a", "run_b")}
    assert labels == {"run_a/generator", "run_b/generator"}


# --- layering: imports point down ---------------------------------------------------------------

SOURCE = Path(srgan.__file__).parent
# lower number = lower layer; a module may import only its own layer or lower ones
LAYERS = {
    "errors": 0, "fileutil": 0, "safeload": 0, "resize": 0, "progress": 0,
    "archs": 1, "metrics": 1, "imageio": 1,
    "modelfiles": 2, "losses": 2, "data": 2, "downloads": 3, "catalogue": 3,
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
