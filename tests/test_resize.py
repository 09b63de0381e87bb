"""MATLAB-compatible bicubic resize: known answers, an independent per-pixel reference, and shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from srgan.imageio import read_image
from srgan.resize import BicubicUpsampler, matlab_bicubic_resize

SET5_NAMES = ("baby", "bird", "butterfly", "head", "woman")


def _read_uint8_chw(path) -> torch.Tensor:
    return torch.tensor(read_image(path).array).permute(2, 0, 1).contiguous()


def _reference_resize_1d(values: list[float], out_length: int, scale: float, antialias: bool) -> list[float]:
    """MATLAB imresize along one axis, one output pixel at a time, straight from the published formulas."""

    def cubic(t: float) -> float:
        t = abs(t)
        if t <= 1:
            return 1.5 * t**3 - 2.5 * t**2 + 1
        if t <= 2:
            return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
        return 0.0

    def mirror(index: int) -> int:  # 1-based, symmetric padding that repeats the edge pixel
        n = len(values)
        while index < 1 or index > n:
            index = 1 - index if index < 1 else 2 * n + 1 - index
        return index

    stretch = 1 / scale if (antialias and scale < 1) else 1.0
    result = []
    for x in range(1, out_length + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        total = weight_sum = 0.0
        for j in range(math.floor(u - 2 * stretch) - 1, math.ceil(u + 2 * stretch) + 2):
            weight = cubic((u - j) / stretch) / stretch
            total += weight * values[mirror(j) - 1]
            weight_sum += weight
        result.append(total / weight_sum)
    return result


def _reference_resize_2d(image: np.ndarray, out_height: int, out_width: int) -> np.ndarray:
    # In exact arithmetic the two passes commute, so the order MATLAB picks does not matter here.
    scale_h, scale_w = out_height / image.shape[0], out_width / image.shape[1]
    columns = [_reference_resize_1d(list(column), out_height, scale_h, True) for column in image.T]
    image = np.array(columns).T
    return np.array([_reference_resize_1d(list(row), out_width, scale_w, True) for row in image])


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_downscale_matches_matlab_lr_files_of_set5(shared_dir, scale):
    bench = shared_dir / "data" / "bench"
    for name in SET5_NAMES:
        hr = _read_uint8_chw(bench / "Set5" / f"{name}.png")
        height, width = hr.shape[1:]
        hr = hr[:, : height - height % scale, : width - width % scale]  # mod-crop, the standard protocol
        expected = _read_uint8_chw(bench / "Set5_LR_bicubic" / f"X{scale}" / f"{name}x{scale}.png")

        lr = matlab_bicubic_resize(hr, scale=1 / scale)

        assert lr.dtype == torch.uint8 and lr.shape == expected.shape
        difference = (lr.int() - expected.int()).abs()
        assert difference.max().item() <= 1, name
        assert (difference == 0).float().mean().item() >= 0.995, name
        # The uint8 path rounds between passes as MATLAB does, which makes it bit-exact.
        assert torch.equal(lr, expected), name


def test_float_path_stays_within_two_levels_of_uint8_path():
    image = torch.randint(0, 256, (3, 37, 29), dtype=torch.uint8)
    from_uint8 = matlab_bicubic_resize(image, scale=0.25).float()
    from_float = matlab_bicubic_resize(image.float() / 255, scale=0.25) * 255
    assert (from_float.round() - from_uint8).abs().max().item() <= 2


@pytest.mark.parametrize(
    ("in_size", "out_size"),
    [((7, 5), (21, 15)), ((12, 10), (5, 4)), ((9, 11), (4, 20)), ((6, 8), (6, 8))],
)
def test_matches_per_pixel_reference(in_size, out_size):
    image = torch.rand(in_size, dtype=torch.float64)
    expected = _reference_resize_2d(image.numpy(), *out_size)
    result = matlab_bicubic_resize(image[None], size=out_size)[0]
    np.testing.assert_allclose(result.numpy(), expected, rtol=0, atol=1e-12)


def test_scale_one_is_identity():
    image = torch.rand(2, 3, 9, 13)
    torch.testing.assert_close(matlab_bicubic_resize(image, scale=1), image)


def test_upscaling_reproduces_a_linear_ramp_away_from_the_borders():
    # Keys' a = -0.5 kernel reproduces polynomials up to degree 2, so a ramp i (1-based) is sampled
    # exactly at MATLAB's input coordinate u = x/s + (1 - 1/s)/2 wherever no tap is mirrored.
    scale = 3
    ramp = torch.arange(1, 11, dtype=torch.float64).expand(1, 4, 10)
    result = matlab_bicubic_resize(ramp, scale=scale)[0, 0]
    x = torch.arange(1, 31, dtype=torch.float64)
    expected = x / scale + 0.5 * (1 - 1 / scale)
    interior = (expected >= 3) & (expected <= 8)
    torch.testing.assert_close(result[interior], expected[interior])


def test_constant_image_stays_constant_at_any_scale():
    image = torch.full((1, 1, 10, 14), 0.3)
    for scale in (0.3, 0.5, 1.7, 4):
        resized = matlab_bicubic_resize(image, scale=scale)
        torch.testing.assert_close(resized, torch.full_like(resized, 0.3))


def test_output_size_rank_and_dtype():
    image = torch.rand(2, 3, 10, 7)
    assert matlab_bicubic_resize(image, scale=0.25).shape == (2, 3, 3, 2)  # ceil like MATLAB
    assert matlab_bicubic_resize(image[0], scale=2).shape == (3, 20, 14)
    assert matlab_bicubic_resize(image, size=(5, 21)).shape == (2, 3, 5, 21)
    assert matlab_bicubic_resize(image.double(), scale=2).dtype == torch.float64


def test_batch_is_resized_image_by_image():
    batch = torch.rand(3, 2, 8, 6)
    together = matlab_bicubic_resize(batch, scale=0.5)
    one_by_one = torch.stack([matlab_bicubic_resize(image, scale=0.5) for image in batch])
    torch.testing.assert_close(together, one_by_one)


def test_bicubic_upsampler_module():
    model = BicubicUpsampler(scale=4)
    assert model.scale == 4
    image = torch.rand(1, 3, 6, 5)
    torch.testing.assert_close(model(image), matlab_bicubic_resize(image, scale=4))
    assert model(image).shape == (1, 3, 24, 20)


def test_rejects_bad_arguments():
    image = torch.rand(1, 3, 4, 4)
    with pytest.raises(ValueError, match="exactly one"):
        matlab_bicubic_resize(image, scale=2, size=(8, 8))
    with pytest.raises(ValueError, match="exactly one"):
        matlab_bicubic_resize(image)
    with pytest.raises(ValueError, match="shape"):
        matlab_bicubic_resize(torch.rand(4, 4), scale=2)
    with pytest.raises(ValueError, match="int64"):
        matlab_bicubic_resize(torch.zeros(3, 4, 4, dtype=torch.int64), scale=2)
