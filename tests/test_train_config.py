"""Training configs: YAML loading, presets, --set overrides, and the up-front checks of what they point at."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from srgan.errors import SrganError
from srgan.train.config import check_resources, load_config, parse_override

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO_ROOT / "configs").glob("*.yaml"))


def write_config(path: Path, values: dict) -> Path:
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(2):
        Image.new("RGB", (32, 32), (index * 90, 40, 200)).save(folder / f"{index}.png")
    return folder


@pytest.fixture
def minimal(tmp_path: Path, image_folder: Path) -> dict:
    return {
        "name": "tiny",
        "generator": {"arch": "srresnet", "kwargs": {"num_features": 8, "num_blocks": 1}},
        "data": {"train_dirs": [str(image_folder)], "hr_patch": 16, "prepare": False},
        "losses": {"pixel": {"kind": "l1"}},
    }


def test_unknown_key_names_the_nearest_valid_one(tmp_path, minimal):
    minimal["train"] = {"iteratons": 10}
    with pytest.raises(SrganError, match=r"'train\.iteratons' is unknown; did you mean 'train\.iterations'\?"):
        load_config(write_config(tmp_path / "c.yaml", minimal))


def test_unknown_override_key_is_reported_like_a_file_key(tmp_path, minimal):
    path = write_config(tmp_path / "c.yaml", minimal)
    with pytest.raises(SrganError, match=r"'data\.batchsize' is unknown; did you mean 'data\.batch_size'\?"):
        load_config(path, ["data.batchsize=4"])


def test_bad_value_type_is_an_error(tmp_path, minimal):
    path = write_config(tmp_path / "c.yaml", minimal)
    with pytest.raises(SrganError, match=r"'train\.iterations': expected int, got 'many'"):
        load_config(path, ["train.iterations=many"])
    with pytest.raises(SrganError, match=r"'losses\.pixel\.kind': 'l3' is not allowed"):
        load_config(path, ["losses.pixel.kind=l3"])


def test_bare_on_off_is_read_as_the_word_not_a_boolean(tmp_path, minimal):
    # YAML 1.1 turns a bare `off` into False; log.tensorboard/progress take the words on/off
    minimal["log"] = {"tensorboard": "off"}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(minimal).replace("'off'", "off"), encoding="utf-8")
    assert "tensorboard: off" in path.read_text(encoding="utf-8")
    config = load_config(path, ["log.progress=on"])
    assert config.log.tensorboard == "off"
    assert config.log.progress == "on"
    with pytest.raises(SrganError, match=r"'losses\.pixel\.kind': False is not allowed"):
        load_config(path, ["losses.pixel.kind=off"])


def test_overrides_parse_yaml_scalars_including_bare_exponents(tmp_path, minimal):
    config = load_config(
        write_config(tmp_path / "c.yaml", minimal),
        ["optim_g.lr=2e-4", "train.iterations=7", "data.augment=false", "schedule.milestones=[3, 5]"],
    )
    assert config.optim_g.lr == pytest.approx(2e-4)
    assert config.train.iterations == 7
    assert config.data.augment is False
    assert config.schedule.milestones == [3, 5]
    assert parse_override("a.b=1e-3") == (["a", "b"], 1e-3)
    with pytest.raises(SrganError, match="KEY=VALUE"):
        parse_override("train.iterations")


def test_override_that_is_not_yaml_is_one_message_naming_it():
    with pytest.raises(SrganError, match=r"--set 'data\.train_dirs=\[a,b': the value is not valid YAML") as caught:
        parse_override("data.train_dirs=[a,b")
    assert "\n" not in str(caught.value)


def test_preset_is_merged_over_the_base_and_unknown_presets_are_named(tmp_path, minimal):
    minimal["presets"] = {"quick": {"train": {"iterations": 3}, "note": "fast"}}
    path = write_config(tmp_path / "c.yaml", minimal)
    assert load_config(path).train.iterations == 1000
    quick = load_config(path, ["preset=quick"])
    assert (quick.train.iterations, quick.note, quick.preset) == (3, "fast", "quick")
    assert quick.data.hr_patch == 16  # untouched keys keep the base value
    with pytest.raises(SrganError, match=r"preset 'slow' is not defined .*available: quick"):
        load_config(path, ["preset=slow"])


def test_generator_options_are_checked_against_the_architecture(tmp_path, minimal):
    minimal["generator"]["kwargs"]["num_featres"] = 8
    with pytest.raises(SrganError, match=r"unknown option 'num_featres' \(did you mean 'num_features'\?\)"):
        load_config(write_config(tmp_path / "c.yaml", minimal))


def test_discriminator_input_size_must_match_the_patch(tmp_path, minimal):
    minimal["discriminator"] = {"arch": "srgan_discriminator", "kwargs": {"input_size": 96}}
    minimal["losses"]["adversarial"] = {"kind": "vanilla"}
    with pytest.raises(SrganError, match=r"input_size'.*96 differs from data\.hr_patch 16"):
        load_config(write_config(tmp_path / "c.yaml", minimal))


def test_missing_data_folder_is_reported_before_training(tmp_path, minimal):
    minimal["data"]["train_dirs"] = [str(tmp_path / "nowhere")]
    config = load_config(write_config(tmp_path / "c.yaml", minimal))
    with pytest.raises(SrganError, match=r"'data\.train_dirs'.*nowhere: folder not found"):
        check_resources(config)


def test_a_missing_relative_path_says_it_is_read_from_the_working_directory(tmp_path, minimal, monkeypatch):
    monkeypatch.chdir(tmp_path)
    minimal["data"]["train_dirs"] = ["../shared/data/nowhere"]
    (tmp_path / "recipes").mkdir()
    config = load_config(write_config(tmp_path / "recipes" / "c.yaml", minimal))
    with pytest.raises(SrganError, match=rf"a relative path: read from the working directory {tmp_path}, not from the recipe"):
        check_resources(config)
    minimal["data"]["train_dirs"] = [str(tmp_path / "nowhere")]
    with pytest.raises(SrganError) as absolute:
        check_resources(load_config(write_config(tmp_path / "c.yaml", minimal)))
    assert "relative path" not in str(absolute.value)


def test_too_small_images_are_reported_before_training(tmp_path, minimal):
    config = load_config(write_config(tmp_path / "c.yaml", minimal), ["data.hr_patch=48"])
    with pytest.raises(SrganError, match=r"32x32 is smaller than the 48x48 HR patch"):
        check_resources(config)


def test_missing_init_weights_are_reported_before_training(tmp_path, minimal):
    minimal["generator"]["init"] = str(tmp_path / "srresnet.safetensors")
    config = load_config(write_config(tmp_path / "c.yaml", minimal))
    with pytest.raises(SrganError, match=r"'generator\.init'.*srresnet\.safetensors not found"):
        check_resources(config)


def test_perceptual_layer_must_be_covered_by_the_weights_file(tmp_path, minimal, shared_dir):
    weights = shared_dir / "weights" / "vgg19_imagenet_conv1-conv3_caffe.safetensors"
    minimal["losses"]["perceptual"] = {"layer": "vgg54", "weights": str(weights), "convention": "caffe"}
    config = load_config(write_config(tmp_path / "c.yaml", minimal))
    with pytest.raises(SrganError, match=r"losses\.perceptual' \(vgg54\).*no weights for VGG19 layer conv4_1"):
        check_resources(config)
    check_resources(load_config(write_config(tmp_path / "c.yaml", minimal), ["losses.perceptual.layer=vgg22"]))


@pytest.mark.parametrize("recipe", RECIPES, ids=[path.stem for path in RECIPES])
def test_every_recipe_and_its_quick_preset_validate(recipe, shared_dir, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # recipes point at ../shared relative to the repo root
    full = load_config(recipe)
    quick = load_config(recipe, ["preset=quick"])
    assert quick.preset == "quick" and "will not match" in quick.note
    assert quick.train.iterations <= 1000 and quick.data.hr_patch <= full.data.hr_patch
    check_resources(quick)
    try:
        check_resources(full)
    except SrganError as error:
        # the full recipes may only lack what cannot exist here: the full VGG19 or a pretrained init
        assert "fetch-vgg19" in str(error) or "generator.init" in str(error), error
