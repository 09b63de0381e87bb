"""PSNR / SSIM: known values, agreement with scikit-image, and the published bicubic x4 baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from srgan.imageio import read_image
from srgan.metrics import psnr, rgb_to_y, ssim
from srgan.resize import matlab_bicubic_resize


def _textured(shape: tuple[int, ...]) -> torch.Tensor:
    """Smooth structure plus noise, in [0, 1]: SSIM is then neither ~0 nor ~1."""
    base = torch.rand(shape[:-2] + (shape[-2] // 4 + 1, shape[-1] // 4 + 1))
    smooth = matlab_bicubic_resize(base, size=shape[-2:])
    return (smooth + 0.1 * torch.randn(shape)).clamp(0, 1).double()


def test_rgb_to_y_known_values():
    colors = torch.tensor([[0.0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]).view(5, 3, 1, 1)
    y = rgb_to_y(colors).flatten() * 255
    expected = torch.tensor([16, 235, 16 + 65.481, 16 + 128.553, 16 + 24.966])
    torch.testing.assert_close(y, expected)
    assert rgb_to_y(torch.rand(2, 3, 4, 5)).shape == (2, 1, 4, 5)


def test_psnr_known_values():
    hr = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    # A uniform error of 25.5 levels: 20 * log10(255 / 25.5) = 20 dB.
    assert psnr(hr + 0.1, hr).item() == pytest.approx(20.0, abs=1e-9)
    # An error on a quarter of the pixels quarters the MSE: +10 log10(4) dB.
    partial = hr.clone()
    partial[..., :4, :4] = 0.1
    assert psnr(partial, hr).item() == pytest.approx(20.0 + 10 * math.log10(4), abs=1e-9)
    # On Y, a uniform RGB shift d moves Y by d * (65.481 + 128.553 + 24.966) = 219 d levels.
    rgb = torch.full((1, 3, 8, 8), 0.5, dtype=torch.float64)
    assert psnr(rgb + 0.01, rgb).item() == pytest.approx(20 * math.log10(255 / 2.19), abs=1e-9)
    # On RGB the shift is 2.55 levels in every channel.
    assert psnr(rgb + 0.01, rgb, y_channel=False).item() == pytest.approx(40.0, abs=1e-9)
    assert psnr(rgb, rgb).item() == math.inf


def test_crop_border_ignores_the_border():
    hr = torch.rand(1, 3, 20, 20)
    sr = hr.clone()
    sr[..., :3, :] = 0  # damage confined to the top 3 rows
    assert psnr(sr, hr, crop_border=3).item() == math.inf
    assert psnr(sr, hr, crop_border=2).item() < 40
    assert ssim(sr, hr, crop_border=3).item() == pytest.approx(1.0)


def test_one_channel_images_are_scored_on_their_own_values():
    gray_hr = _textured((1, 1, 24, 24))
    gray_sr = (gray_hr + 0.02 * torch.randn_like(gray_hr)).clamp(0, 1)
    # The Y formula would compress the range to 219/255 and raise PSNR by ~1.3 dB; it must not apply.
    expected = 10 * torch.log10(1 / (gray_sr - gray_hr).pow(2).mean())
    torch.testing.assert_close(psnr(gray_sr, gray_hr), expected.view(1))
    torch.testing.assert_close(psnr(gray_sr, gray_hr), psnr(gray_sr, gray_hr, y_channel=False))


def test_batched_scores_equal_per_image_scores():
    hr = _textured((3, 3, 32, 30))
    sr = (hr + 0.05 * torch.randn_like(hr)).clamp(0, 1)
    for metric in (psnr, ssim):
        together = metric(sr, hr, crop_border=2)
        assert together.shape == (3,)
        one_by_one = torch.cat([metric(sr[i : i + 1], hr[i : i + 1], crop_border=2) for i in range(3)])
        torch.testing.assert_close(together, one_by_one)


# scikit-image filters the full image with reflect padding and then drops (win_size - 1) / 2 = 5 pixels
# from each side of the SSIM map before averaging. With an 11x11 window, exactly the positions whose
# window lies inside the image remain: the same "valid" region that ours (and MATLAB's) computes
# without padding. So both get the same (already border-cropped) images and must agree.
@pytest.mark.parametrize("y_channel", [True, False])
def test_ssim_agrees_with_scikit_image(y_channel):
    structural_similarity = pytest.importorskip("skimage.metrics").structural_similarity
    hr = _textured((2, 3, 40, 36))
    sr = (hr + 0.08 * torch.randn_like(hr)).clamp(0, 1)
    ours = ssim(sr, hr, crop_border=3, y_channel=y_channel)
    for index in range(2):
        if y_channel:
            pair = [rgb_to_y(image[index : index + 1])[0, 0] for image in (sr, hr)]
            options = {}
        else:
            pair = [image[index] for image in (sr, hr)]
            options = {"channel_axis": 0}
        pair = [(image[..., 3:-3, 3:-3] * 255).numpy() for image in pair]
        reference = structural_similarity(
            *pair, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, **options
        )
        assert 0.2 < reference < 0.95
        assert ours[index].item() == pytest.approx(reference, abs=1e-4)


def test_ssim_of_identical_images_is_one_and_drops_with_noise():
    hr = _textured((1, 3, 24, 24))
    assert ssim(hr, hr).item() == pytest.approx(1.0, abs=1e-12)
    slightly = ssim((hr + 0.02 * torch.randn_like(hr)).clamp(0, 1), hr).item()
    badly = ssim((hr + 0.2 * torch.randn_like(hr)).clamp(0, 1), hr).item()
    assert 1.0 > slightly > badly


def test_rejects_mismatched_or_too_small_inputs():
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match="leaves nothing"):
        psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), crop_border=4)
    with pytest.raises(ValueError, match="11x11"):
        ssim(torch.rand(1, 3, 12, 12), torch.rand(1, 3, 12, 12), crop_border=1)
    with pytest.raises(ValueError, match="expected"):
        psnr(torch.rand(1, 2, 8, 8), torch.rand(1, 2, 8, 8))


def _bicubic_x4_scores(folder) -> tuple[float, float]:
    """Mean Y-channel PSNR / SSIM of bicubic x4 on a folder: mod-crop, MATLAB downscale, MATLAB upscale."""
    scale = 4
    psnrs, ssims = [], []
    for path in sorted(folder.glob("*.png")):
        hr = torch.tensor(read_image(path).array).permute(2, 0, 1)  # bridge.png keeps its 1 channel
        height, width = hr.shape[1:]
        hr = hr[:, : height - height % scale, : width - width % scale]
        lr = matlab_bicubic_resize(hr, scale=1 / scale)  # uint8 in, uint8 out: bit-exact with MATLAB
        sr = matlab_bicubic_resize(lr, scale=scale)
        sr, hr = sr[None].double() / 255, hr[None].double() / 255
        psnrs.append(psnr(sr, hr, crop_border=scale).item())
        ssims.append(ssim(sr, hr, crop_border=scale).item())
    return float(np.mean(psnrs)), float(np.mean(ssims))


@pytest.mark.parametrize(
    ("name", "published"),
    [("Set5", (28.42, 0.8104)), pytest.param("Set14", (26.00, 0.7027), marks=pytest.mark.slow)],
)
def test_reproduces_published_bicubic_x4_baselines(shared_dir, name, published):
    # Published by the ESRGAN supplement, Table 2 (see shared/docs/RECIPES.md). Set14's bridge.png is
    # 1-channel and scored on its gray values.
    mean_psnr, mean_ssim = _bicubic_x4_scores(shared_dir / "data" / "bench" / name)
    assert mean_psnr == pytest.approx(published[0], abs=0.03)
    assert mean_ssim == pytest.approx(published[1], abs=0.002)
