"""VGG19 feature extractor (layer map, weight loading, preprocessing) and the VGG-feature critic."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from srgan.archs import build_arch
from srgan.archs.discriminator import VGGFeatureDiscriminator
from srgan.archs.vgg import (
    LAYER_INDEX,
    VGG19_LAYERS,
    VGGFeatureExtractor,
    resolve_layer,
)
from srgan.errors import SrganError

SHARED_VGG = "weights/vgg19_imagenet_conv1-conv3_caffe.safetensors"


def random_vgg_state(last_index: int) -> dict[str, torch.Tensor]:
    """torchvision-style `features.N` weights for every conv up to `features.<last_index>`."""
    state = {}
    for index, layer in enumerate(VGG19_LAYERS[: last_index + 1]):
        if layer.kind == "conv":
            state[f"features.{index}.weight"] = 0.1 * torch.randn(layer.out_channels, layer.in_channels, 3, 3)
            state[f"features.{index}.bias"] = 0.1 * torch.randn(layer.out_channels)
    return state


@pytest.fixture
def vgg_to_conv3_4(tmp_path):
    path = tmp_path / "vgg_part.safetensors"
    save_file(random_vgg_state(LAYER_INDEX["conv3_4"]), str(path))
    return path


def test_layer_map_follows_torchvision_indices():
    assert LAYER_INDEX["conv1_1"] == 0
    assert LAYER_INDEX["relu2_2"] == 8
    assert LAYER_INDEX["conv3_4"] == 16
    assert LAYER_INDEX["relu3_4"] == 17
    assert LAYER_INDEX["conv5_4"] == 34
    assert LAYER_INDEX["relu5_4"] == 35
    assert LAYER_INDEX["pool5"] == 36
    assert [resolve_layer(a) for a in ("vgg22", "vgg34", "vgg54")] == ["relu2_2", "relu3_4", "relu5_4"]


def test_unknown_layer_names_the_nearest():
    with pytest.raises(SrganError, match="no layer 'relu5_5'.*did you mean"):
        resolve_layer("relu5_5")


def test_builds_only_up_to_the_deepest_requested_layer(vgg_to_conv3_4):
    extractor = VGGFeatureExtractor(["relu1_2", "vgg22"], vgg_to_conv3_4)
    assert len(extractor.features) == LAYER_INDEX["relu2_2"] + 1
    out = extractor(torch.rand(2, 3, 16, 12))
    assert list(out) == ["relu1_2", "vgg22"]
    assert out["relu1_2"].shape == (2, 64, 16, 12)
    assert out["vgg22"].shape == (2, 128, 8, 6)
    assert extractor.out_channels == {"relu1_2": 64, "vgg22": 128}


def test_conv_feature_is_taken_before_the_relu(vgg_to_conv3_4):
    extractor = VGGFeatureExtractor(["conv2_2", "relu2_2"], vgg_to_conv3_4)
    out = extractor(torch.rand(1, 3, 8, 8))
    assert (out["conv2_2"] < 0).any()
    torch.testing.assert_close(out["relu2_2"], out["conv2_2"].clamp(min=0))


def test_is_frozen_by_construction_but_passes_gradients_to_the_input(vgg_to_conv3_4):
    extractor = VGGFeatureExtractor("relu2_2", vgg_to_conv3_4)
    extractor.requires_grad_(True)
    assert list(extractor.parameters()) == []
    assert "features.7.weight" in extractor.state_dict()
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    extractor(x)["relu2_2"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_loads_a_torchvision_pth_with_extra_keys(tmp_path):
    state = random_vgg_state(LAYER_INDEX["conv1_2"])
    state["classifier.0.weight"] = torch.zeros(4, 4)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    extractor = VGGFeatureExtractor("relu1_2", path)
    torch.testing.assert_close(extractor.features[2].weight, state["features.2.weight"])


def test_weights_path_expands_the_home_folder(vgg_to_conv3_4, monkeypatch):
    monkeypatch.setenv("HOME", str(vgg_to_conv3_4.parent))
    extractor = VGGFeatureExtractor("relu1_1", f"~/{vgg_to_conv3_4.name}")
    assert extractor(torch.rand(1, 3, 4, 4))["relu1_1"].shape == (1, 64, 4, 4)


def test_partial_weights_that_miss_a_requested_layer_are_an_error(vgg_to_conv3_4):
    with pytest.raises(SrganError, match=r"vgg_part\.safetensors: no weights for VGG19 layer conv4_1 \(features\.19"):
        VGGFeatureExtractor("vgg54", vgg_to_conv3_4)


def test_missing_or_unreadable_file_is_an_error(tmp_path):
    with pytest.raises(SrganError, match="not_there.safetensors: VGG19 weights file not found"):
        VGGFeatureExtractor("relu2_2", tmp_path / "not_there.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(SrganError, match="junk.safetensors: cannot read VGG19 weights"):
        VGGFeatureExtractor("relu2_2", junk)


def test_wrong_shapes_are_an_error(tmp_path):
    state = random_vgg_state(LAYER_INDEX["conv1_1"])
    state["features.0.weight"] = torch.zeros(32, 3, 3, 3)
    path = tmp_path / "odd.safetensors"
    save_file(state, str(path))
    with pytest.raises(SrganError, match="odd.safetensors: not VGG19 weights"):
        VGGFeatureExtractor("conv1_1", path)


def test_unknown_convention_is_an_error(vgg_to_conv3_4):
    with pytest.raises(SrganError, match="convention 'keras' is unknown"):
        VGGFeatureExtractor("relu2_2", vgg_to_conv3_4, convention="keras")


def test_preprocessing_conventions(vgg_to_conv3_4):
    rgb = torch.rand(1, 3, 4, 4)
    torchvision = VGGFeatureExtractor("relu1_1", vgg_to_conv3_4, convention="torchvision")
    assert torchvision.convention == "torchvision"
    expected = (rgb - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(torchvision.preprocess(rgb), expected)

    caffe = VGGFeatureExtractor("relu1_1", vgg_to_conv3_4, convention="caffe")
    assert caffe.convention == "caffe"
    bgr255 = torch.stack([rgb[:, 2], rgb[:, 1], rgb[:, 0]], dim=1) * 255
    expected = bgr255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    torch.testing.assert_close(caffe.preprocess(rgb), expected)


# ---------------------------------------------------------------- with the real (partial) VGG19 weights


def test_real_caffe_weights_give_relu2_2(shared_dir):
    extractor = VGGFeatureExtractor("vgg22", shared_dir / SHARED_VGG, convention="caffe")
    features = extractor(torch.rand(1, 3, 16, 16))["vgg22"]
    assert features.shape == (1, 128, 8, 8)
    assert (features >= 0).all() and features.abs().sum() > 0


def test_real_weights_do_not_cover_conv5_4(shared_dir):
    with pytest.raises(SrganError, match=r"vgg19_imagenet_conv1-conv3_caffe\.safetensors: no weights for VGG19 "
                                         r"layer conv4_1.*conv5_4"):
        VGGFeatureExtractor("conv5_4", shared_dir / SHARED_VGG, convention="caffe")


def test_real_conv1_1_matches_a_hand_computed_caffe_reference(shared_dir):
    path = shared_dir / SHARED_VGG
    weights = load_file(str(path))
    rgb = torch.rand(1, 3, 10, 10)
    # Caffe VGG: BGR channel order, 0-255, per-channel mean subtracted, no std
    r, g, b = rgb[:, 0:1] * 255, rgb[:, 1:2] * 255, rgb[:, 2:3] * 255
    bgr = torch.cat([b - 103.939, g - 116.779, r - 123.68], dim=1)
    reference = F.conv2d(bgr, weights["features.0.weight"].float(), weights["features.0.bias"].float(), padding=1)

    extractor = VGGFeatureExtractor("conv1_1", path, convention="caffe")
    torch.testing.assert_close(extractor(rgb)["conv1_1"], reference, rtol=1e-4, atol=1e-3)
    # the other convention (or RGB order) gives a clearly different answer on the same weights
    wrong = VGGFeatureExtractor("conv1_1", path, convention="torchvision")(rgb)["conv1_1"]
    assert (wrong - reference).abs().mean() > 1.0


# ---------------------------------------------------------------- VGG-feature critic


def test_vgg_feature_critic_classifies_any_size_and_trains_only_its_head(vgg_to_conv3_4):
    critic = VGGFeatureDiscriminator(layer="relu2_2", weights_path=vgg_to_conv3_4, convention="caffe", num_features=4)
    for size in (16, 24):
        assert critic(torch.rand(2, 3, size, size)).shape == (2, 1)
    critic.requires_grad_(True)  # as a GAN step toggles D; the VGG part must stay frozen
    trainable = [name for name, _ in critic.named_parameters()]
    assert trainable and all(name.startswith("head.") for name in trainable)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in critic.modules())


def test_vgg_feature_critic_takes_a_ready_extractor_and_passes_input_gradients(vgg_to_conv3_4):
    extractor = VGGFeatureExtractor("relu1_2", vgg_to_conv3_4)
    critic = VGGFeatureDiscriminator(extractor, num_features=4, norm="batch")
    assert critic.feature_extractor is extractor
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in critic.modules())
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    critic(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_vgg_feature_critic_from_the_registry_and_its_errors(vgg_to_conv3_4):
    critic = build_arch(
        "vgg_feature_discriminator", {"layer": "relu2_2", "weights_path": str(vgg_to_conv3_4), "num_features": 4}
    )
    assert critic(torch.rand(1, 3, 8, 8)).shape == (1, 1)
    with pytest.raises(SrganError, match="vgg_feature_discriminator: no VGG19 weights; set weights_path"):
        VGGFeatureDiscriminator()
    with pytest.raises(SrganError, match="exactly one layer"):
        VGGFeatureDiscriminator(VGGFeatureExtractor(["relu1_1", "relu1_2"], vgg_to_conv3_4))
