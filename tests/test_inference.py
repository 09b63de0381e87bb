import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from srgan.archs.registry import create_model
from srgan.errors import SrganError
from srgan.inference import (
    DEFAULT_HOST_TILE,
    Upscaler,
    _plan_axis,
    select_device,
    select_precision,
    upscale,
    upscale_image,
)
from srgan.models import LoadedModel, load_model
from srgan.resize import matlab_bicubic_resize


class NearestUpsample(nn.Module):
    """Scale by pixel repetition; optionally pretend to run out of memory above a window side."""

    def __init__(self, scale=2, oom_above=None, nan_under_autocast=False):
        super().__init__()
        self.scale = scale
        self.oom_above = oom_above
        self.nan_under_autocast = nan_under_autocast
        self.window_shapes = []

    def forward(self, x):
        self.window_shapes.append(tuple(x.shape))
        if self.oom_above is not None and max(x.shape[-2:]) > self.oom_above:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        out = F.interpolate(x, scale_factor=self.scale, mode="nearest")
        if self.nan_under_autocast and torch.is_autocast_enabled("cpu"):
            out = out.clone()
            out[:, :, 0, 0] = float("nan")
        return out


def wrap(module, scale, channels=3, fp16_safe=True):
    return LoadedModel(module.eval(), "test-model", "test", scale, channels, channels, fp16_safe)


def conv_net_with_radius_4():
    """x2 network whose output depends on input pixels at most 4 away (3 convs + 1 after the shuffle)."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 12, 3, padding=1),
        nn.PixelShuffle(2),
        nn.Conv2d(3, 3, 3, padding=1),
        nn.Sigmoid(),
    )


@pytest.mark.parametrize("batch_tiles", [1, 3])
def test_tiled_output_equals_untiled_for_a_finite_receptive_field(batch_tiles):
    model = wrap(conv_net_with_radius_4(), scale=2)
    image = torch.rand(2, 3, 37, 53)
    untiled = Upscaler(model, tile=0).upscale_tensor(image)
    tiled_upscaler = Upscaler(model, tile=12, tile_overlap=4, batch_tiles=batch_tiles)
    windows = []
    tiled = tiled_upscaler.upscale_tensor(image, progress=lambda done, total: windows.append((done, total)))
    assert tiled.shape == (2, 3, 74, 106)
    assert windows[-1][0] == windows[-1][1] > 4  # really cut into many tiles
    assert (tiled - untiled).abs().max() < 1e-4


def test_too_little_overlap_is_not_exact_so_the_equality_test_has_teeth():
    model = wrap(conv_net_with_radius_4(), scale=2)
    image = torch.rand(1, 3, 37, 53)
    untiled = Upscaler(model, tile=0).upscale_tensor(image)
    tiled = Upscaler(model, tile=12, tile_overlap=1).upscale_tensor(image)
    assert (tiled - untiled).abs().max() > 1e-4


def test_tiled_srresnet_equals_untiled():
    # receptive field of this SRResNet: 9x9 head (4) + 3 convs (3) + x2 convs (1.5) + 9x9 tail at x4 (1)
    module = create_model("srresnet_x4", num_blocks=1, num_features=8)
    model = wrap(module, scale=4)
    image = torch.rand(1, 3, 30, 41)
    untiled = Upscaler(model, tile=0).upscale_tensor(image)
    tiled = Upscaler(model, tile=8, tile_overlap=10).upscale_tensor(image)
    assert (tiled - untiled).abs().max() < 1e-4


def test_bicubic_model_tiles_exactly_and_matches_the_resize():
    model = load_model("bicubic", scale=3)
    image = torch.rand(1, 3, 20, 27)
    tiled = Upscaler(model, tile=6, tile_overlap=3).upscale_tensor(image)
    expected = matlab_bicubic_resize(image, scale=3).clamp(0, 1)
    assert (tiled - expected).abs().max() < 1e-5


def test_blend_weights_sum_to_one_and_skip_the_context():
    plan = _plan_axis(length=100, tile=20, overlap=5, scale=2)
    assert plan.starts[0] == 0 and plan.starts[-1] + plan.window == 100
    coverage = torch.zeros(200)
    for start, weight in zip(plan.starts, plan.weights, strict=True):
        coverage[start * 2 : (start + plan.window) * 2] += weight
    assert torch.allclose(coverage, torch.ones(200))
    inner_first, inner_last = plan.weights[0], plan.weights[-1]
    assert torch.all(inner_first[-10:] == 0)  # 5 input pixels of context on the inner side
    assert torch.all(inner_last[:10] == 0)
    assert inner_first[0] == 1 and inner_last[-1] == 1  # image borders are not faded


def test_blend_weights_change_smoothly_across_the_seam():
    plan = _plan_axis(length=60, tile=10, overlap=6, scale=1)
    steps = plan.weights[0][1:] - plan.weights[0][:-1]
    assert steps.abs().max() < 0.5  # a ramp, not a hard cut


def test_tile_zero_sends_the_whole_image_at_once():
    module = NearestUpsample()
    Upscaler(wrap(module, 2), tile=0).upscale_tensor(torch.rand(1, 3, 50, 70))
    assert module.window_shapes == [(1, 3, 50, 70)]


def test_automatic_tile_on_cpu_is_the_host_default():
    upscaler = Upscaler(wrap(NearestUpsample(), 2), device="cpu")
    upscaler.upscale_tensor(torch.rand(1, 3, 8, 8))
    assert upscaler.tile == DEFAULT_HOST_TILE


def test_out_of_memory_halves_the_tile_until_it_fits():
    module = NearestUpsample(scale=2, oom_above=40)
    upscaler = Upscaler(wrap(module, 2), tile=64, tile_overlap=2)
    image = torch.rand(1, 3, 100, 90)
    with pytest.warns(UserWarning, match="retrying with 32-pixel tiles"):
        result = upscaler.upscale_tensor(image)
    assert upscaler.tile == 32
    assert torch.allclose(result, F.interpolate(image, scale_factor=2, mode="nearest"), atol=1e-6)
    assert max(max(shape[-2:]) for shape in module.window_shapes[-4:]) <= 40


def test_out_of_memory_at_the_smallest_tile_is_a_clear_error():
    upscaler = Upscaler(wrap(NearestUpsample(oom_above=4), 2), tile=32, tile_overlap=0)
    with pytest.warns(UserWarning), pytest.raises(SrganError, match="out of memory even with 16-pixel tiles"):
        upscaler.upscale_tensor(torch.rand(1, 3, 40, 40))


def test_half_precision_nan_tiles_are_rerun_in_fp32():
    module = NearestUpsample(nan_under_autocast=True)
    upscaler = Upscaler(wrap(module, 2), tile=8, tile_overlap=0)
    upscaler.compute_dtype = torch.bfloat16  # what "auto" picks on CUDA; CPU autocast stands in for it
    result = upscaler.upscale_tensor(torch.rand(1, 3, 16, 16))
    assert torch.isfinite(result).all()
    assert upscaler.fp32_fallbacks == 4


def test_output_is_clamped():
    module = nn.Sequential(NearestUpsample(), nn.Hardtanh(-3, 3))
    upscaler = Upscaler(wrap(module, 2), tile=0)
    result = upscaler.upscale_tensor(torch.rand(1, 3, 4, 4) * 6 - 3)
    assert result.min() == 0 and result.max() == 1


def test_wrong_channel_count_is_refused():
    with pytest.raises(ValueError, match=r"expected \(N, 3, H, W\)"):
        Upscaler(wrap(NearestUpsample(), 2)).upscale_tensor(torch.rand(1, 1, 4, 4))


def test_model_with_wrong_declared_scale_is_refused():
    upscaler = Upscaler(wrap(NearestUpsample(scale=2), scale=4), tile=0)
    with pytest.raises(SrganError, match="not x4"):
        upscaler.upscale_tensor(torch.rand(1, 3, 4, 4))


def test_cpu_runs_channels_last():
    module = conv_net_with_radius_4()
    Upscaler(wrap(module, 2), device="cpu")
    assert module[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_precision_policy():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert select_precision("auto", cpu, fp16_safe=True) == torch.float32
    assert select_precision("auto", cuda, fp16_safe=True) == torch.float16
    assert select_precision("auto", cuda, fp16_safe=False) == torch.float32
    assert select_precision("bf16", cuda, fp16_safe=False) == torch.bfloat16
    with pytest.warns(UserWarning, match="fp16 is only used on CUDA; running fp32 on cpu"):
        assert select_precision("fp16", cpu, fp16_safe=True) == torch.float32
    with pytest.raises(SrganError, match="precision 'fp8'"):
        select_precision("fp8", cpu, fp16_safe=True)


def test_device_selection():
    assert select_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert select_device(None).type == expected
    with pytest.raises(SrganError, match="not a device name"):
        select_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(SrganError, match="CUDA is not available"):
            select_device("cuda")


def test_premultiplied_alpha_leaves_no_dark_fringe():
    rgb = torch.zeros(3, 8, 8)
    alpha = torch.zeros(1, 8, 8)
    rgb[0, :, :4] = 1.0  # opaque red on the left, transparent black on the right
    alpha[0, :, :4] = 1.0
    upscaler = Upscaler(load_model("bicubic", scale=2), tile=0)
    color, alpha_up = upscale_image(upscaler, rgb, alpha)
    assert alpha_up.shape == (1, 16, 16)
    visible = alpha_up[0] > 0.05
    assert 0 < alpha_up[0, 0, 8] < 1  # the edge is semi-transparent
    assert torch.all(color[0][visible] > 0.99) and torch.all(color[1:][:, visible] < 0.01)


def test_four_channel_model_upscales_alpha_itself():
    alpha = torch.zeros(1, 4, 4)
    alpha[0, :, :2] = 1.0
    upscaler = Upscaler(wrap(NearestUpsample(), 2, channels=4), tile=0)
    _, alpha_up = upscale_image(upscaler, torch.rand(3, 4, 4), alpha)
    assert torch.equal(alpha_up, F.interpolate(alpha[None], scale_factor=2)[0])  # nearest, not bicubic


def test_outscale_resizes_after_the_model():
    upscaler = Upscaler(load_model("bicubic", scale=4), tile=0)
    color, alpha = upscale_image(upscaler, torch.rand(3, 10, 7), torch.rand(1, 10, 7), outscale=1.5)
    assert color.shape == (3, 15, 10) and alpha.shape == (1, 15, 10)


def test_upscale_api_keeps_pil_modes():
    bicubic = load_model("bicubic", scale=2)
    gray = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8))
    result = upscale(gray, bicubic)
    assert result.mode == "L" and result.size == (16, 12)

    rgba = Image.fromarray(np.full((6, 8, 4), 200, np.uint8))
    result = upscale(rgba, bicubic, outscale=3)
    assert result.mode == "RGBA" and result.size == (24, 18)
    assert np.abs(np.asarray(result).astype(int) - 200).max() <= 1

    sixteen = Image.fromarray(np.full((4, 4), 40000, np.uint16))
    result = upscale(sixteen, bicubic)
    assert result.mode == "I;16" and np.asarray(result).max() == 40000


@pytest.mark.parametrize(
    ("dtype", "value"), [(np.uint8, 77), (np.uint16, 51234), (np.float32, 0.25), (np.float64, 0.75)]
)
def test_upscale_api_keeps_numpy_dtype_and_shape(dtype, value):
    bicubic = load_model("bicubic", scale=2)
    gray = np.full((5, 6), value, dtype)
    result = upscale(gray, bicubic)
    assert result.dtype == dtype and result.shape == (10, 12)
    np.testing.assert_allclose(result, value, atol=1e-5)

    rgba = np.full((5, 6, 4), value, dtype)
    result = upscale(rgba, bicubic)
    assert result.dtype == dtype and result.shape == (10, 12, 4)


def test_upscale_api_refuses_other_inputs():
    bicubic = load_model("bicubic", scale=2)
    with pytest.raises(TypeError, match="PIL image or a numpy array"):
        upscale([[0, 1]], bicubic)
    with pytest.raises(SrganError, match="expected uint8, uint16 or float"):
        upscale(np.zeros((4, 4), np.int32), bicubic)
    with pytest.raises(SrganError, match=r"array of shape \(4, 4, 5\)"):
        upscale(np.zeros((4, 4, 5), np.uint8), bicubic)


def test_upscale_api_loads_a_model_by_name():
    assert upscale(np.zeros((3, 3, 3), np.uint8), "bicubic").shape == (12, 12, 3)


class SharpeningUpsample(nn.Module):
    """x2 nearest upscaling followed by a strong unsharp mask: overshoots at every edge, as SR models do."""

    def forward(self, x):
        up = F.interpolate(x, scale_factor=2, mode="nearest")
        blur = F.avg_pool2d(F.pad(up, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        return up + 2.0 * (up - blur)


def hard_disc(size=24, radius=7):
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= radius**2).float()[None]


@pytest.mark.parametrize("alpha_mode", ["bicubic", "model"])
def test_hard_alpha_edge_has_no_fringe_with_an_overshooting_model(alpha_mode):
    alpha = hard_disc()
    rgb = torch.zeros(3, 24, 24)
    rgb[:, alpha[0] > 0] = torch.tensor([0.8, 0.3, 0.1])[:, None]  # orange disc over transparent black
    upscaler = Upscaler(wrap(SharpeningUpsample(), 2), tile=0)
    color, alpha_up = upscale_image(upscaler, rgb, alpha, alpha_mode=alpha_mode)
    visible = alpha_up[0] > 0.02
    if alpha_mode == "bicubic":
        assert (visible & (alpha_up[0] < 0.98)).sum() > 20  # a soft edge to look at
    error = (color[:, visible] - torch.tensor([0.8, 0.3, 0.1])[:, None]).abs().max()
    assert error < 1 / 255


def test_colour_under_transparent_pixels_is_kept():
    alpha = hard_disc()
    rgb = torch.zeros(3, 24, 24)
    rgb[1] = 0.6  # green stored everywhere, visible only inside the disc
    rgb[0, alpha[0] > 0] = 1.0
    rgb[1, alpha[0] > 0] = 0.0
    upscaler = Upscaler(wrap(SharpeningUpsample(), 2), tile=0)
    color, alpha_up = upscale_image(upscaler, rgb, alpha)
    hidden = alpha_up[0] == 0
    assert hidden.sum() > 1000
    assert torch.allclose(color[1][hidden], torch.tensor(0.6), atol=1e-5)
    visible = alpha_up[0] > 0.02
    assert color[0][visible].min() > 0.99 and color[1][visible].max() < 1 / 255  # no green fringe either


def test_integer_assembly_equals_float_and_holds_only_the_result_and_a_band():
    import tracemalloc

    from srgan.inference import upscale_pixels

    rgb = torch.rand(3, 400, 150)
    upscaler = Upscaler(load_model("bicubic", scale=4), tile=32, tile_overlap=4)
    reference = (upscale_image(upscaler, rgb)[0].permute(1, 2, 0).numpy() * 255).round()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        pixels = upscale_pixels(upscaler, rgb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pixels.dtype == np.uint8 and pixels.shape == (1600, 600, 3)
    assert np.abs(pixels.astype(float) - reference).max() <= 1
    result_bytes = 1600 * 600 * 3  # 3 bytes per output pixel (8-bit RGB)
    window = 32 + 2 * 4 + 3
    band_bytes = 2 * window * 4 * 600 * 3 * 4  # two float bands of one window row, at most
    # a float copy of the whole result would add 12 bytes per output pixel (11.5 MB here)
    assert peak < result_bytes + band_bytes + 1_000_000, peak


def test_a_plain_rgb_image_is_tiled_from_its_own_storage(monkeypatch):
    """The engine slices windows out of the caller's tensor; a copy of it cost 72 MB on a 3000x2000 photo."""
    from srgan.inference import upscale_pixels

    upscaler = Upscaler(load_model("bicubic", scale=2), tile=16)
    tiled = []
    run_tiled = upscaler.run_tiled
    monkeypatch.setattr(upscaler, "run_tiled", lambda image, *rest: tiled.append(image) or run_tiled(image, *rest))
    rgb = torch.rand(3, 20, 30)
    assert upscale_pixels(upscaler, rgb).shape == (40, 60, 3)
    assert tiled[0].shape == (1, 3, 20, 30) and tiled[0].data_ptr() == rgb.data_ptr()


def test_result_memory_check_names_the_image_before_allocating():
    from srgan.inference import upscale_pixels

    upscaler = Upscaler(load_model("bicubic", scale=2), tile=0)
    with pytest.raises(SrganError, match=r"tiny.png: a 64000x48000 result: needs about 8\.6 GiB"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("srgan.inference.available_memory", lambda: 2**30)
            upscale_pixels(upscaler, torch.rand(3, 48, 64), outscale=1000, name="tiny.png")


def test_outscale_in_strips_matches_the_whole_image_resize():
    from srgan.resize import resize_array_in_strips

    array = (np.random.default_rng(1).random((70, 50, 3)) * 255).round().astype(np.uint8)
    whole = matlab_bicubic_resize(torch.from_numpy(array).permute(2, 0, 1).float() / 255, size=(31, 77))
    expected = (whole.clamp(0, 1) * 255).round().permute(1, 2, 0).numpy()
    strips = resize_array_in_strips(array, (31, 77), strip_rows=8)
    assert strips.shape == (31, 77, 3) and np.abs(strips.astype(float) - expected).max() <= 1
