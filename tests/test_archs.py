"""Generator architectures and the registry: shapes, parameter counts, state-dict layouts, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from srgan.archs import (
    ARCHS,
    PRESETS,
    ModelSpec,
    build_arch,
    create_model,
    get_spec,
    list_models,
)
from srgan.archs.discriminator import SRGANDiscriminator
from srgan.archs.edsr import DIV2K_RGB_MEAN, EDSR
from srgan.archs.rrdbnet import RRDBNet
from srgan.archs.srresnet import SRResNet, SubpixelUpsampler
from srgan.archs.srvgg import SRVGGNetCompact
from srgan.archs.wdrn import WDRN, WeightedConcat
from srgan.errors import SrganError


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------- registry


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_with_its_recorded_parameter_count(name):
    spec = get_spec(name)
    # the meta device skips weight initialisation, so even the 43M-parameter presets build instantly
    with torch.device("meta"):
        model = create_model(name)
    assert count_params(model) == spec.num_params
    assert model.scale == spec.scale
    assert spec.kwargs["scale"] == spec.scale


def test_paper_parameter_counts():
    assert get_spec("srresnet_x4").num_params == 1_549_462
    assert get_spec("rrdbnet_x4").num_params == 16_697_987
    assert get_spec("edsr_baseline_x4").num_params == 1_517_571
    assert get_spec("edsr_x4").num_params == 43_089_923
    assert 1_000_000 <= get_spec("wdrn_x4").num_params <= 2_000_000


def test_list_models_is_sorted_and_names_the_core_presets():
    names = list_models()
    assert names == sorted(names)
    for name in ("srresnet_x2", "srresnet_x3", "srresnet_x4", "srresnet_x8", "edsr_baseline_x2",
                 "edsr_baseline_x3", "edsr_baseline_x4", "edsr_x2", "edsr_x3", "edsr_x4", "rrdbnet_x4",
                 "rrdbnet_6b_x4", "srvgg_compact_x4", "wdrn_x4"):
        assert name in names


def test_unknown_preset_names_the_nearest():
    with pytest.raises(SrganError, match="did you mean 'srresnet_x4'"):
        create_model("srresnet-x4")


def test_unknown_arch_names_the_nearest():
    with pytest.raises(SrganError, match="did you mean 'rrdbnet'"):
        build_arch("rrdbnt", {})


def test_unknown_option_names_the_nearest():
    with pytest.raises(SrganError, match="srresnet: unknown option 'num_block'.*did you mean 'num_blocks'"):
        build_arch("srresnet", {"num_block": 2})


def test_spec_is_read_only_and_build_applies_overrides():
    spec = get_spec("srresnet_x4")
    assert isinstance(spec, ModelSpec)
    with pytest.raises(TypeError):
        spec.kwargs["scale"] = 2
    model = spec.build(num_features=8, num_blocks=1, scale=2)
    assert model.scale == 2
    assert len(model.body) == 1
    assert set(ARCHS) >= {"srresnet", "edsr", "rrdbnet", "srvgg_compact", "wdrn", "srgan_discriminator",
                          "vgg_feature_discriminator"}


TINY_CONFIGS = {
    "srresnet": {"num_features": 8, "num_blocks": 2, "scale": 2},
    "edsr": {"num_features": 8, "num_blocks": 2, "scale": 3},
    "rrdbnet": {"num_features": 8, "growth_channels": 4, "num_blocks": 1, "scale": 2},
    "srvgg_compact": {"num_features": 8, "num_convs": 2, "scale": 4},
    "wdrn": {"num_features": 8, "num_blocks": 2, "num_layers": 2, "growth_channels": 4, "scale": 2},
    "srgan_discriminator": {"num_features": 4, "input_size": 16},
}


@pytest.mark.parametrize("arch", sorted(TINY_CONFIGS))
def test_state_dict_round_trip_reproduces_the_network(arch):
    # what a model file stores (arch, kwargs, state dict) is enough to rebuild the same function
    x = torch.rand(2, 3, 16, 16)
    original = build_arch(arch, TINY_CONFIGS[arch])
    original.train()(x)  # moves BatchNorm running statistics away from their initial values
    torch.manual_seed(1)
    rebuilt = build_arch(arch, TINY_CONFIGS[arch])
    rebuilt.load_state_dict(original.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), original.eval()(x))


# ---------------------------------------------------------------- SRResNet


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_srresnet_output_shape(scale):
    model = SRResNet(num_features=8, num_blocks=2, scale=scale).eval()
    out = model(torch.rand(2, 3, 6, 5))
    assert out.shape == (2, 3, 6 * scale, 5 * scale)


def test_srresnet_rejects_unsupported_scale():
    with pytest.raises(SrganError, match="srresnet: scale 5 is not supported"):
        SRResNet(num_features=8, num_blocks=1, scale=5)


@pytest.mark.parametrize(("scale", "last_factor"), [(2, 2), (3, 3), (4, 2)])
def test_icnr_upsampler_has_no_checkerboard_at_initialisation(scale, last_factor):
    # ICNR gives every sub-pixel of the last shuffle's blocks the same value
    upsampler = SubpixelUpsampler(4, scale, "test")
    out = upsampler(torch.randn(1, 4, 5, 7))
    assert out.shape == (1, 4, 5 * scale, 7 * scale)
    block_corners = out[..., ::last_factor, ::last_factor]
    expected = block_corners.repeat_interleave(last_factor, dim=2).repeat_interleave(last_factor, dim=3)
    torch.testing.assert_close(out, expected)


# ---------------------------------------------------------------- RRDBNet

BASICSR_RRDB_KEYS = [
    "conv_first.weight",
    "conv_first.bias",
    "body.0.rdb1.conv1.weight",
    "body.0.rdb1.conv5.bias",
    "body.0.rdb3.conv5.weight",
    "body.22.rdb2.conv3.weight",
    "body.22.rdb3.conv5.bias",
    "conv_body.weight",
    "conv_up1.weight",
    "conv_up2.bias",
    "conv_hr.weight",
    "conv_last.weight",
    "conv_last.bias",
]


def test_rrdbnet_uses_basicsr_key_names():
    with torch.device("meta"):
        keys = set(RRDBNet().state_dict())
    assert set(BASICSR_RRDB_KEYS) <= keys
    assert "body.23.rdb1.conv1.weight" not in keys
    assert len(keys) == 2 + 23 * 3 * 5 * 2 + 5 * 2


def basicsr_rrdb_state_dict(in_ch, out_ch, nf, gc, num_blocks) -> dict[str, torch.Tensor]:
    """A state dict laid out as BasicSR's RRDBNet, written from its layer formulas, not from our module."""
    state = {}

    def conv(name, cin, cout):
        state[f"{name}.weight"] = torch.randn(cout, cin, 3, 3)
        state[f"{name}.bias"] = torch.randn(cout)

    conv("conv_first", in_ch, nf)
    for b in range(num_blocks):
        for r in (1, 2, 3):
            for c in range(1, 6):
                conv(f"body.{b}.rdb{r}.conv{c}", nf + (c - 1) * gc, nf if c == 5 else gc)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        conv(name, nf, nf)
    conv("conv_last", nf, out_ch)
    return state


def test_rrdbnet_loads_basicsr_layout_strictly():
    state = basicsr_rrdb_state_dict(3, 3, nf=8, gc=4, num_blocks=2)
    model = RRDBNet(num_features=8, growth_channels=4, num_blocks=2)
    model.load_state_dict(state, strict=True)
    torch.testing.assert_close(model.body[1].rdb2.conv4.weight, state["body.1.rdb2.conv4.weight"])


def test_rrdbnet_x2_takes_pixel_unshuffled_input_like_real_esrgan_x2plus():
    state = basicsr_rrdb_state_dict(12, 3, nf=8, gc=4, num_blocks=1)
    RRDBNet(num_features=8, growth_channels=4, num_blocks=1, scale=2).load_state_dict(state, strict=True)


@pytest.mark.parametrize("scale", [1, 2, 4])
@pytest.mark.parametrize(("height", "width"), [(8, 12), (7, 9)])
def test_rrdbnet_output_shape(scale, height, width):
    # sides that the pixel-unshuffle factor does not divide are padded inside and cropped again
    model = RRDBNet(num_features=8, growth_channels=4, num_blocks=1, scale=scale)
    out = model(torch.rand(1, 3, height, width))
    assert out.shape == (1, 3, height * scale, width * scale)


def test_rrdbnet_x2_on_odd_sizes_equals_the_edge_replicated_even_input_cropped():
    model = RRDBNet(num_features=8, growth_channels=4, num_blocks=1, scale=2).eval()
    odd = torch.rand(1, 3, 7, 5)
    even = torch.cat([odd, odd[..., -1:, :]], dim=2)
    even = torch.cat([even, even[..., -1:]], dim=3)
    with torch.no_grad():
        torch.testing.assert_close(model(odd), model(even)[..., :14, :10])


def test_rrdbnet_rejects_unsupported_scale():
    with pytest.raises(SrganError, match="rrdbnet: scale 3 is not supported"):
        RRDBNet(num_features=8, growth_channels=4, num_blocks=1, scale=3)


def test_rrdb_dense_convs_start_small():
    # MSRA x 0.1: the dense-block convs start with a tenth of Kaiming's standard deviation
    model = RRDBNet(num_features=32, growth_channels=32, num_blocks=1)
    weight = model.body[0].rdb1.conv2.weight
    kaiming_std = (2.0 / (weight.shape[1] * 9)) ** 0.5
    assert weight.std().item() == pytest.approx(0.1 * kaiming_std, rel=0.1)
    assert torch.count_nonzero(model.body[0].rdb1.conv2.bias) == 0


# ---------------------------------------------------------------- SRVGGNetCompact


def test_srvgg_compact_key_layout_matches_real_esrgan():
    state = SRVGGNetCompact(num_features=8, num_convs=2).state_dict()
    assert list(state) == [
        "body.0.weight", "body.0.bias", "body.1.weight",
        "body.2.weight", "body.2.bias", "body.3.weight",
        "body.4.weight", "body.4.bias", "body.5.weight",
        "body.6.weight", "body.6.bias",
    ]
    assert state["body.1.weight"].shape == (8,)  # PReLU, one slope per channel
    assert state["body.6.weight"].shape == (3 * 16, 8, 3, 3)


def test_srvgg_compact_learns_a_residual_over_nearest_upsampling():
    model = SRVGGNetCompact(num_features=8, num_convs=1, scale=4)
    x = torch.rand(1, 3, 5, 6)
    out = model(x)
    assert out.shape == (1, 3, 20, 24)
    with torch.no_grad():
        model.body[-1].weight.zero_()
        model.body[-1].bias.zero_()
    torch.testing.assert_close(model(x), F.interpolate(x, scale_factor=4, mode="nearest"))


@pytest.mark.parametrize("activation", ["prelu", "relu", "lrelu"])
def test_srvgg_compact_deep_stack_starts_with_a_live_residual(activation):
    # PyTorch's default init shrinks how much the features depend on the input about 0.4x per conv +
    # PReLU (1e-6 over 16 convs): training stalled at nearest-neighbour output. He init keeps it.
    model = SRVGGNetCompact(num_features=16, num_convs=16, scale=4, activation=activation)
    one, other = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    with torch.no_grad():
        first = (model.body[:2](one) - model.body[:2](other)).std()
        last = (model.body[:-1](one) - model.body[:-1](other)).std()
        residual = model(one) - F.interpolate(one, scale_factor=4, mode="nearest")
    assert last > 0.05 * first
    assert 0.005 < residual.std() < 0.5


@pytest.mark.parametrize("activation", ["relu", "lrelu"])
def test_srvgg_compact_activation_options_have_no_parameters(activation):
    model = SRVGGNetCompact(num_features=8, num_convs=1, scale=2, activation=activation)
    assert "body.1.weight" not in model.state_dict()
    assert model(torch.rand(1, 3, 4, 4)).shape == (1, 3, 8, 8)


def test_srvgg_compact_rejects_unknown_activation():
    with pytest.raises(SrganError, match="unknown activation 'gelu'"):
        SRVGGNetCompact(activation="gelu")


# ---------------------------------------------------------------- EDSR


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_output_shape(scale):
    model = EDSR(num_features=8, num_blocks=2, scale=scale)
    assert model(torch.rand(1, 3, 5, 7)).shape == (1, 3, 5 * scale, 7 * scale)


def test_edsr_mean_is_a_buffer_outside_the_state_dict_like_basicsr():
    model = EDSR(num_features=8, num_blocks=2, scale=4)
    assert "mean" in dict(model.named_buffers())
    assert all(name != "mean" for name, _ in model.named_parameters())
    keys = list(model.state_dict())
    assert keys == [
        "conv_first.weight", "conv_first.bias",
        "body.0.conv1.weight", "body.0.conv1.bias", "body.0.conv2.weight", "body.0.conv2.bias",
        "body.1.conv1.weight", "body.1.conv1.bias", "body.1.conv2.weight", "body.1.conv2.bias",
        "conv_after_body.weight", "conv_after_body.bias",
        "upsample.0.weight", "upsample.0.bias", "upsample.2.weight", "upsample.2.bias",
        "conv_last.weight", "conv_last.bias",
    ]


def test_edsr_adds_the_mean_back():
    model = EDSR(num_features=8, num_blocks=1, scale=2)
    with torch.no_grad():
        model.conv_last.weight.zero_()
        model.conv_last.bias.zero_()
    out = model(torch.rand(1, 3, 4, 4))
    expected = torch.tensor(DIV2K_RGB_MEAN).view(1, 3, 1, 1).expand(1, 3, 8, 8)
    torch.testing.assert_close(out, expected)


def test_edsr_large_preset_scales_residuals():
    with torch.device("meta"):
        model = create_model("edsr_x4")
    assert len(model.body) == 32
    assert model.body[0].res_scale == 0.1
    assert model.conv_first.out_channels == 256


def test_edsr_rejects_mismatched_mean():
    with pytest.raises(SrganError, match="edsr: rgb_mean has 3 values for 1 input"):
        EDSR(in_channels=1, out_channels=1, num_features=8, num_blocks=1)
    gray = EDSR(in_channels=1, out_channels=1, num_features=8, num_blocks=1, scale=2, rgb_mean=(0.44,))
    assert gray(torch.rand(1, 1, 4, 4)).shape == (1, 1, 8, 8)


# ---------------------------------------------------------------- WDRN


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_wdrn_output_shape(scale):
    model = WDRN(num_features=8, num_blocks=2, num_layers=2, growth_channels=4, scale=scale)
    assert model(torch.rand(1, 3, 5, 6)).shape == (1, 3, 5 * scale, 6 * scale)


def test_weighted_concat_scales_each_map_by_its_weight():
    concat = WeightedConcat(2)
    with torch.no_grad():
        concat.weight.copy_(torch.tensor([0.5, -2.0]))
    a, b = torch.rand(1, 2, 3, 3), torch.rand(1, 3, 3, 3)
    out = concat([a, b])
    assert out.shape == (1, 5, 3, 3)
    torch.testing.assert_close(out[:, :2], 0.5 * a)
    torch.testing.assert_close(out[:, 2:], -2.0 * b)


def test_wdrn_concat_weights_are_learned():
    model = WDRN(num_features=8, num_blocks=2, num_layers=2, growth_channels=4, scale=2)
    model(torch.rand(1, 3, 4, 4)).mean().backward()
    weights = [m.weight for m in model.modules() if isinstance(m, WeightedConcat)]
    assert len(weights) == 2 * (2 + 1) + 1  # per block: one per conv + fusion; plus the global fusion
    assert all(w.grad is not None and torch.count_nonzero(w.grad) > 0 for w in weights)


def test_wdrn_block_is_identity_when_its_fusion_is_zero():
    model = WDRN(num_features=8, num_blocks=1, num_layers=2, growth_channels=4, scale=2)
    block = model.blocks[0]
    with torch.no_grad():
        block.fusion.weight.zero_()
        block.fusion.bias.zero_()
    x = torch.rand(1, 8, 4, 4)
    torch.testing.assert_close(block(x), x)


# ---------------------------------------------------------------- SRGAN discriminator


def test_srgan_discriminator_layout_and_logits():
    model = SRGANDiscriminator(num_features=4, input_size=32)
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 4, 8, 8, 16, 16, 32, 32]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    norms = [m for m in model.features if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 7  # none after the first conv
    out = model(torch.rand(3, 3, 32, 32))
    assert out.shape == (3, 1)


def test_srgan_discriminator_full_size_parameter_count():
    # RECIPES: about 23.6 M at 96x96, 18.9 M of it in the first dense layer
    with torch.device("meta"):
        model = SRGANDiscriminator(input_size=96)
    assert count_params(model) == 23_563_649
    assert model.classifier[1].weight.numel() == 512 * 6 * 6 * 1024


def test_srgan_discriminator_rejects_another_patch_size():
    model = SRGANDiscriminator(num_features=4, input_size=32)
    with pytest.raises(SrganError, match="got 48x48 patches but it was built for 32x32.*input_size=48"):
        model(torch.rand(1, 3, 48, 48))


def test_srgan_discriminator_any_size_variant_accepts_other_sizes():
    model = SRGANDiscriminator(num_features=4, input_size=32, any_size=True)
    for size in (32, 48, 80):
        assert model(torch.rand(2, 3, size, size)).shape == (2, 1)
    fixed = SRGANDiscriminator(num_features=4, input_size=32)
    fixed.load_state_dict(model.state_dict(), strict=True)  # same weights either way


def test_srgan_discriminator_input_size_must_be_a_multiple_of_16():
    with pytest.raises(SrganError, match="input_size 100 must be a multiple of 16"):
        SRGANDiscriminator(input_size=100)


def test_srgan_discriminator_without_norm_for_wgan_gp():
    model = build_arch("srgan_discriminator", {"num_features": 4, "input_size": 16, "norm": "none"})
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert all(m.bias is not None for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    with pytest.raises(SrganError, match="unknown norm 'layer'"):
        SRGANDiscriminator(norm="layer")


@pytest.mark.parametrize("scale", [4, 2])
def test_rrdbnet_inference_upsamples_in_strips_equal_to_the_whole_tail(monkeypatch, scale):
    from srgan.archs import rrdbnet

    monkeypatch.setattr(rrdbnet, "INFERENCE_STRIP_ROWS", 8)  # 37 rows: strips of 8 (+ halo) and a last one of 5
    torch.manual_seed(0)
    network = rrdbnet.RRDBNet(num_features=8, num_blocks=1, growth_channels=4, scale=scale).eval()
    x = torch.rand(1, 3, 37 * 4 // scale, 9)
    with torch.enable_grad():
        whole = network(x).detach()  # training-style forward: the tail on the whole feature map
    with torch.no_grad():
        strips = network(x)
    assert strips.shape == whole.shape == (1, 3, 37 * 4, 9 * scale)
    torch.testing.assert_close(strips, whole, rtol=0, atol=1e-6)
    monkeypatch.setattr(rrdbnet, "_STRIP_HALO_ROWS", 1)  # too little context: the seams show
    with torch.no_grad():
        assert (network(x) - whole).abs().max() > 1e-4


@pytest.mark.parametrize(("arch", "kwargs", "mode"), [
    ("srresnet", {"num_features": 16, "num_blocks": 2}, "nearest"),
    ("wdrn", {"num_features": 16, "num_blocks": 2, "growth_channels": 8}, "nearest"),
    ("rrdbnet", {"num_features": 16, "num_blocks": 1, "growth_channels": 8}, "bilinear"),
])
def test_networks_without_an_input_skip_start_as_upsampling(arch, kwargs, mode):
    """Untrained, they carry the image to the output (srgan.archs.passthrough) instead of noise:
    with PyTorch's default init SRResNet's output did not depend on the image's colours at all."""
    network = build_arch(arch, {**kwargs, "scale": 4}).eval()
    image = torch.rand(1, 3, 16, 16)
    if mode == "nearest":
        expected = F.interpolate(image, scale_factor=4.0, mode="nearest")
    else:  # two bilinear x2 stages
        expected = F.interpolate(F.interpolate(image, scale_factor=2.0, mode="bilinear"), scale_factor=2.0, mode="bilinear")
    with torch.no_grad():
        error = (network(image) - expected)[..., 8:-8, 8:-8].abs().mean().item()
    assert error < 0.05, error
