"""`srgan eval --metric`: perceptual metrics in the report, its files and the perception-distortion plane."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srgan.cli import main
from srgan.errors import SrganError
from srgan.evaluate import evaluate_models, format_csv, format_markdown, format_table
from srgan.imageio import read_image
from srgan.quality.niqe import load_niqe_model, niqe
from srgan.quality.registry import parse_metrics
from srgan.quality.vif import vif
from srgan.resize import matlab_bicubic_resize

PARAMS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "reference" / "niqe" / "niqe_pris_params.npz"
needs_params = pytest.mark.skipif(not PARAMS.is_file(), reason="../shared NIQE parameters are not on this machine")


@pytest.fixture
def photos(tmp_path):
    """Two 200x200 smooth-noise RGB images: two 96x96 NIQE blocks each after a 2-pixel crop."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in (1, 2):
        generator = torch.Generator().manual_seed(seed)
        coarse = torch.rand(3, 30, 30, generator=generator)
        image = matlab_bicubic_resize(coarse, size=(200, 200)) + 0.03 * torch.randn(3, 200, 200, generator=generator)
        pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        Image.fromarray(pixels).save(folder / f"p{seed}.png")
    return folder


@needs_params
def test_report_holds_niqe_and_vif_of_the_8bit_outputs(photos):
    report = evaluate_models([], [photos], 2, metrics="psnr,niqe,vif", niqe_params=PARAMS)

    model = load_niqe_model(PARAMS)
    for score in report.scores:
        hr = read_image(photos / f"{score.image}.png").to_tensor()[None]
        output = matlab_bicubic_resize(matlab_bicubic_resize((hr * 255).round().to(torch.uint8), scale=0.5).float() / 255,
                                       scale=2).clamp(0, 1)
        output = (output * 255).round() / 255
        assert score.extra["niqe"] == pytest.approx(niqe(output, model, crop_border=2).item(), abs=1e-6)
        assert score.extra["vif"] == pytest.approx(vif(output, hr, crop_border=2).item(), abs=1e-6)
        assert 0 < score.extra["vif"] < 1
    assert report.protocol.metrics == ("psnr", "niqe", "vif")
    assert report.protocol.lower_is_better == ["niqe"]


@needs_params
def test_files_say_which_metrics_are_lower_is_better(photos, tmp_path):
    out = tmp_path / "out"
    code = main(["eval", "--data", str(photos), "--scale", "2", "--metric", "psnr,ssim,niqe",
                 "--niqe-params", str(PARAMS), "--json", str(out / "r.json"), "--csv", str(out / "r.csv"),
                 "--markdown", str(out / "r.md"), "--figures", str(out / "figures")])

    assert code == 0
    saved = json.loads((out / "r.json").read_text())
    assert saved["protocol"]["metrics"] == ["psnr", "ssim", "niqe"]
    assert saved["protocol"]["lower_is_better"] == ["niqe"]
    assert set(saved["means"][0]["extra"]) == {"niqe"}
    rows = list(csv.DictReader(io.StringIO((out / "r.csv").read_text())))
    assert rows[0]["lower_is_better"] == "niqe" and float(rows[0]["niqe"]) == pytest.approx(
        saved["means"][0]["extra"]["niqe"], abs=1e-6)
    assert "PSNR (dB) / SSIM / NIQE; lower is better for NIQE" in (out / "r.md").read_text()
    figure = Image.open(out / "figures" / "perception_distortion.png")
    assert figure.size[0] > 300


def test_table_shows_only_the_chosen_metrics(photos):
    report = evaluate_models([], [photos], 2, metrics=["ssim"])
    table = format_table(report)
    assert "Mean SSIM." in table and "/" not in table.splitlines()[-1]
    assert format_csv(report).splitlines()[0].endswith("lr,missing,lower_is_better")
    assert "lower is better" not in format_markdown(report).splitlines()[0]


def test_unknown_metric_and_missing_niqe_parameters_are_clear_errors(photos, tmp_path, monkeypatch, capsys):
    with pytest.raises(SrganError, match=r"metric 'fid': unknown; choose from psnr, ssim, niqe"):
        parse_metrics("psnr,fid")
    assert parse_metrics(" PSNR , niqe,psnr") == ("psnr", "niqe")
    monkeypatch.setenv("SRGAN_CACHE_DIR", str(tmp_path / "empty-cache"))
    assert main(["eval", "--data", str(photos), "--scale", "2", "--metric", "niqe"]) == 1
    assert "NIQE parameters not found; run `srgan models fetch-niqe`" in capsys.readouterr().err


def test_vif_is_one_for_identical_images_and_matches_sewar_on_y():
    from sewar.full_ref import vifp

    generator = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 80, 90, generator=generator)
    noisy = (hr + 0.05 * torch.randn(hr.shape, generator=generator)).clamp(0, 1)

    assert vif(hr, hr).tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    scores = vif(noisy, hr, crop_border=3)
    y = lambda x: (16 + (x.double() * torch.tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1)).sum(1))[:, 3:-3, 3:-3]
    expected = [vifp(y(hr)[i].numpy(), y(noisy)[i].numpy()) for i in range(2)]
    assert scores.tolist() == pytest.approx(expected, rel=1e-7)
    assert (scores < 1).all()
    with pytest.raises(ValueError, match="needs at least 65x65 pixels"):
        vif(noisy, hr, crop_border=10)


def test_lpips_in_eval_uses_the_given_weights_file_and_draws_the_plane(photos, tmp_path):
    from safetensors.torch import save_file

    from srgan.quality.lpips import LPIPS, load_lpips, lpips

    torch.manual_seed(0)
    module = LPIPS("alex")
    for head in module.heads:
        head.weight.abs_()  # heads are non-negative, as the trained ones
    save_file(module.state_dict(), str(tmp_path / "lpips.safetensors"), metadata={"net": "alex"})

    report = evaluate_models([], [photos], 2, metrics="psnr,lpips", lpips_weights=tmp_path / "lpips.safetensors",
                             figures_dir=tmp_path / "figures")

    loaded = load_lpips(tmp_path / "lpips.safetensors")
    score = report.scores[0]
    hr = read_image(photos / f"{score.image}.png").to_tensor()[None]
    output = matlab_bicubic_resize(matlab_bicubic_resize((hr * 255).round().to(torch.uint8), scale=0.5).float() / 255,
                                   scale=2).clamp(0, 1)
    expected = lpips((output * 255).round() / 255, hr, loaded, crop_border=2).item()
    assert score.extra["lpips"] == pytest.approx(expected, rel=1e-5) and expected > 0
    assert report.protocol.lower_is_better == ["lpips"]
    assert (tmp_path / "figures" / "perception_distortion.png").is_file()


@needs_params
def test_training_validation_logs_and_plots_the_configured_metrics(photos, tmp_path, monkeypatch):
    import shutil

    import yaml
    from safetensors.torch import save_file

    from srgan.quality.lpips import LPIPS
    from srgan.train.config import load_config
    from srgan.train.monitor import read_metrics
    from srgan.train.trainer import train

    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(PARAMS, cache / "niqe_pris_params.npz")
    torch.manual_seed(0)
    module = LPIPS("alex")
    for head in module.heads:
        head.weight.abs_()
    save_file(module.state_dict(), str(cache / "lpips_alex_v0.1.safetensors"), metadata={"net": "alex"})
    monkeypatch.setenv("SRGAN_CACHE_DIR", str(cache))
    recipe = {
        "name": "metrics", "scale": 2,
        "generator": {"arch": "edsr", "kwargs": {"num_features": 4, "num_blocks": 1}},
        "data": {"train_dirs": [str(photos)], "val_dir": str(photos), "hr_patch": 16, "batch_size": 2,
                 "num_workers": 0, "prepare": False, "val_metrics": ["niqe", "lpips"]},
        "losses": {"pixel": {"kind": "l1"}},
        "train": {"iterations": 2, "seed": 1},
        "log": {"every": 1, "val_every": 2, "sample_images": 0, "tensorboard": "off", "progress": "off", "plots": True},
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")

    run_dir = train(load_config(tmp_path / "r.yaml", []), tmp_path / "run")

    (record,) = [r for r in read_metrics(run_dir) if r["kind"] == "val"]
    assert record["niqe"] > 0 and record["lpips"] > 0 and record["psnr"] > 10
    assert (run_dir / "plots" / "validation.png").is_file()
    (cache / "niqe_pris_params.npz").unlink()
    with pytest.raises(SrganError, match=r"'data.val_metrics': .*NIQE parameters not found"):
        train(load_config(tmp_path / "r.yaml", []), tmp_path / "run2")
