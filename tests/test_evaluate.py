"""`srgan eval` and `srgan.evaluate`: scores against an independent computation, files, figures, errors."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srgan.cli import main
from srgan.errors import SrganError
from srgan.evaluate import (
    DatasetInfo,
    EvaluationReport,
    ImageScore,
    Protocol,
    evaluate_models,
    format_json,
    format_markdown,
    format_table,
)
from srgan.metrics import psnr, ssim
from srgan.resize import matlab_bicubic_resize

SCALE = 2


def _smooth_noise(height: int, width: int, channels: int, seed: int) -> np.ndarray:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(channels, height // 6 + 2, width // 6 + 2, generator=generator)
    image = matlab_bicubic_resize(coarse, size=(height, width)) + 0.05 * torch.randn(
        channels, height, width, generator=generator
    )
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return pixels[..., 0] if channels == 1 else pixels


@pytest.fixture
def hr_folder(tmp_path):
    """Two RGB images (one not a multiple of the scale) and one 1-channel image."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    Image.fromarray(_smooth_noise(33, 30, 3, seed=1)).save(folder / "a.png")
    Image.fromarray(_smooth_noise(28, 28, 3, seed=2)).save(folder / "b.png")
    Image.fromarray(_smooth_noise(26, 32, 1, seed=3), mode="L").save(folder / "gray.png")
    return folder


def _expected_bicubic_scores(path, *, y_channel: bool = True, gray_as_rgb: bool = False) -> tuple[float, float]:
    """The protocol written out by hand: mod-crop, 8-bit MATLAB downscale, float upscale, 8-bit output."""
    pixels = np.array(Image.open(path))
    hr = torch.from_numpy(pixels.reshape(pixels.shape[:2] + (-1,))).permute(2, 0, 1)
    if gray_as_rgb:
        hr = hr.expand(3, -1, -1)
    hr = hr[:, : hr.shape[1] // SCALE * SCALE, : hr.shape[2] // SCALE * SCALE]
    lr = matlab_bicubic_resize(hr, scale=1 / SCALE).float() / 255
    sr = (matlab_bicubic_resize(lr, scale=SCALE).clamp(0, 1) * 255).round() / 255
    hr = hr.float() / 255
    options = {"crop_border": SCALE, "y_channel": y_channel}
    return psnr(sr[None], hr[None], **options).item(), ssim(sr[None], hr[None], **options).item()


def _tiny_model_file(path):
    from srgan.archs.registry import build_arch
    from srgan.modelfiles import save_model

    kwargs = {"num_features": 4, "num_convs": 1, "scale": SCALE}
    save_model(path, build_arch("srvgg_compact", kwargs), arch="srvgg_compact", kwargs=kwargs)
    return path


def test_cli_scores_and_writes_json_csv_markdown(hr_folder, tmp_path, capsys):
    model_path = _tiny_model_file(tmp_path / "tiny_net.safetensors")
    json_path, csv_path, md_path = tmp_path / "out" / "r.json", tmp_path / "r.csv", tmp_path / "r.md"
    code = main(
        ["eval", "--model", str(model_path), "--data", str(hr_folder), "--scale", str(SCALE), "--per-image",
         "--json", str(json_path), "--csv", str(csv_path), "--markdown", str(md_path), "--device", "cpu"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.count("Protocol: x2; PSNR (dB) / SSIM") == 2  # the summary and the per-image table
    assert "bicubic" in printed and "tiny_net" in printed

    report = json.loads(json_path.read_text())
    assert report["models"] == ["bicubic", "tiny_net"]  # bicubic added first as the reference
    assert report["protocol"] | {"description": None} == {
        "scale": 2, "y_channel": True, "crop_border": 2, "channel": "Y", "description": None,
        "metrics": ["psnr", "ssim"], "lower_is_better": [],
    }
    assert report["datasets"][0]["name"] == "tiny" and report["datasets"][0]["images"] == 3
    bicubic = {row["image"]: row for row in report["per_image"] if row["model"] == "bicubic"}
    assert sorted(bicubic) == ["a", "b", "gray"]
    for image, row in bicubic.items():
        expected_psnr, expected_ssim = _expected_bicubic_scores(hr_folder / f"{image}.png")
        assert row["psnr"] == pytest.approx(expected_psnr, abs=1e-3), image
        assert row["ssim"] == pytest.approx(expected_ssim, abs=1e-5), image
    means = {row["model"]: row for row in report["means"]}
    assert means["bicubic"]["psnr"] == pytest.approx(np.mean([row["psnr"] for row in bicubic.values()]))
    assert means["tiny_net"]["images"] == 3 and 0 < means["tiny_net"]["psnr"] < means["bicubic"]["psnr"]

    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 + 2 * 3  # one mean row per model, then every image per model
    mean_row = next(row for row in rows if row["model"] == "bicubic" and row["image"] == "")
    assert float(mean_row["psnr"]) == pytest.approx(means["bicubic"]["psnr"], abs=1e-4)
    assert (mean_row["images"], mean_row["channel"], mean_row["crop_border"], mean_row["scale"]) == ("3", "Y", "2", "2")
    assert "MATLAB bicubic" in mean_row["lr"]

    markdown = md_path.read_text()
    assert "| Model | tiny (3 images) |" in markdown
    assert f"| bicubic | {means['bicubic']['psnr']:.2f} / {means['bicubic']['ssim']:.4f} |" in markdown
    assert "| gray |" in markdown and markdown.count("Protocol:") == 2


def test_gray_image_is_scored_on_its_gray_values(hr_folder, tmp_path):
    gray_only = tmp_path / "gray_only"
    gray_only.mkdir()
    (gray_only / "gray.png").write_bytes((hr_folder / "gray.png").read_bytes())
    report = evaluate_models([], [gray_only], SCALE, progress=False)
    (score,) = report.scores
    on_gray = _expected_bicubic_scores(gray_only / "gray.png")  # 1 channel: scored on its own values
    assert (score.psnr, score.ssim) == pytest.approx(on_gray, abs=1e-3)
    # Through the Y formula the range shrinks to 219/255, which would raise PSNR by 20*log10(255/219).
    through_y = _expected_bicubic_scores(gray_only / "gray.png", gray_as_rgb=True)
    assert through_y[0] - score.psnr == pytest.approx(20 * np.log10(255 / 219), abs=0.05)


def test_rgb_file_with_equal_channels_is_scored_on_y(hr_folder, tmp_path):
    # Set14's man.png is such a file; the published tables score it on Y like any RGB image.
    folder = tmp_path / "rgb_gray"
    folder.mkdir()
    Image.open(hr_folder / "gray.png").convert("RGB").save(folder / "gray_rgb.png")
    (score,) = evaluate_models([], [folder], SCALE, progress=False).scores
    expected = _expected_bicubic_scores(folder / "gray_rgb.png")
    assert (score.psnr, score.ssim) == pytest.approx(expected, abs=1e-3)


def test_each_image_is_decoded_once(hr_folder, monkeypatch):
    import srgan.data.store
    import srgan.imageio

    decoded = []
    read_image = srgan.imageio.read_image

    def counting_read_image(path, **options):
        decoded.append(Path(path).name)
        return read_image(path, **options)

    monkeypatch.setattr(srgan.imageio, "read_image", counting_read_image)
    monkeypatch.setattr(srgan.data.store, "read_image", counting_read_image)
    evaluate_models([], [hr_folder], SCALE, progress=False)
    assert sorted(decoded) == ["a.png", "b.png", "gray.png"]


def test_json_report_writes_infinite_psnr_as_null():
    report = EvaluationReport(Protocol(2, True, 2), ["perfect"], [DatasetInfo("set", "hr", None, 1, 2)],
                              [ImageScore("set", "img", "perfect", math.inf, 1.0)])

    def refuse(constant):
        raise AssertionError(f"not strict JSON: {constant}")

    written = json.loads(format_json(report), parse_constant=refuse)
    assert written["per_image"][0]["psnr"] is None and written["per_image"][0]["ssim"] == 1.0
    assert written["means"][0]["psnr"] is None


def test_rgb_option_and_crop_border_reach_the_metrics(hr_folder):
    report = evaluate_models(["bicubic"], [hr_folder], SCALE, y_channel=False, crop_border=3, progress=False)
    assert report.protocol.channel == "RGB" and report.protocol.crop_border == 3
    assert "on RGB; 3 px cropped" in format_table(report)
    score = next(s for s in report.scores if s.image == "a")
    pixels = np.array(Image.open(hr_folder / "a.png"))[:32, :30]
    hr = torch.from_numpy(pixels).permute(2, 0, 1).float()[None] / 255
    lr = matlab_bicubic_resize(torch.from_numpy(pixels).permute(2, 0, 1), scale=1 / SCALE).float()[None] / 255
    sr = (matlab_bicubic_resize(lr, scale=SCALE).clamp(0, 1) * 255).round() / 255
    assert score.psnr == pytest.approx(psnr(sr, hr, crop_border=3, y_channel=False).item(), abs=1e-3)


def _write_lr_files(hr_folder: Path, lr_folder: Path, *, suffix: str = "") -> None:
    """The LR file of every HR image, as MATLAB would write it (mod-crop, then 8-bit bicubic)."""
    lr_folder.mkdir(parents=True)
    for path in hr_folder.glob("*.png"):
        pixels = np.array(Image.open(path))
        hr = torch.from_numpy(pixels.reshape(pixels.shape[:2] + (-1,))).permute(2, 0, 1)
        hr = hr[:, : hr.shape[1] // SCALE * SCALE, : hr.shape[2] // SCALE * SCALE]
        lr = matlab_bicubic_resize(hr, scale=1 / SCALE).permute(1, 2, 0).numpy()
        Image.fromarray(lr[..., 0] if lr.shape[2] == 1 else lr).save(lr_folder / f"{path.stem}{suffix}.png")


def test_lr_dir_inputs_give_the_same_scores_as_made_lr(hr_folder, tmp_path):
    _write_lr_files(hr_folder, tmp_path / "lr" / f"X{SCALE}", suffix=f"x{SCALE}")
    made = evaluate_models([], [hr_folder], SCALE, progress=False)
    given = evaluate_models([], [hr_folder], SCALE, lr_dirs=[tmp_path / "lr"], progress=False)
    assert [(s.image, s.psnr, s.ssim) for s in given.scores] == [(s.image, s.psnr, s.ssim) for s in made.scores]
    assert given.datasets[0].lr_source.startswith("read from")
    assert "read from" in format_markdown(given)


def test_figures_are_written_as_png(hr_folder, tmp_path):
    single = tmp_path / "single"
    single.mkdir()
    (single / "b.png").write_bytes((hr_folder / "b.png").read_bytes())
    figures = tmp_path / "figures"
    evaluate_models([], [single], SCALE, figures_dir=figures, progress=False)
    written = sorted(path.relative_to(figures).as_posix() for path in figures.rglob("*") if path.is_file())
    assert written == ["single/b.png"]
    with Image.open(figures / "single" / "b.png") as figure:
        assert figure.format == "PNG"
        figure.verify()
        assert figure.width > figure.height > 50  # LR, bicubic and HR panels side by side


def test_missing_empty_and_unknown_inputs_are_clear_errors(hr_folder, tmp_path, capsys):
    with pytest.raises(SrganError, match="no_such_set: folder not found"):
        evaluate_models([], [tmp_path / "no_such_set"], SCALE, progress=False)
    empty = tmp_path / "empty_set"
    empty.mkdir()
    with pytest.raises(SrganError, match="empty_set: no images found"):
        evaluate_models([], [empty], SCALE, progress=False)
    with pytest.raises(SrganError, match="no_such_model: unknown model"):
        evaluate_models(["no_such_model"], [hr_folder], SCALE, progress=False)
    with pytest.raises(SrganError, match="one --lr-dir per --data"):
        evaluate_models([], [hr_folder, hr_folder], SCALE, lr_dirs=[hr_folder], progress=False)

    assert main(["eval", "--model", "no_such_model", "--data", str(hr_folder), "--scale", "2"]) == 1
    assert "srgan: error: no_such_model: unknown model" in capsys.readouterr().err


def test_no_report_file_is_left_when_evaluation_fails(tmp_path):
    target = tmp_path / "r.json"
    assert main(["eval", "--data", str(tmp_path / "missing"), "--json", str(target)]) == 1
    assert list(tmp_path.iterdir()) == []


def test_reproduces_published_bicubic_x4_on_set5(shared_dir):
    report = evaluate_models(["bicubic"], [shared_dir / "data" / "bench" / "Set5"], 4, progress=False)
    mean = report.mean_of("Set5", "bicubic")
    assert mean.images == 5
    # ESRGAN supplement, Table 2: 28.42 dB / 0.8104 (Y channel, 4 px border, MATLAB bicubic).
    assert mean.psnr == pytest.approx(28.42, abs=0.03)
    assert mean.ssim == pytest.approx(0.8104, abs=0.002)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("damaged", ["hr", "lr"])
def test_an_unreadable_file_is_named_not_left_out_of_the_mean(hr_folder, tmp_path, capsys, damaged):
    lr_folder = tmp_path / "lr"
    _write_lr_files(hr_folder, lr_folder)
    _truncate((hr_folder if damaged == "hr" else lr_folder) / "b.png")
    json_path = tmp_path / "r.json"
    args = ["eval", "--data", str(hr_folder), "--lr-dir", str(lr_folder), "--scale", str(SCALE), "--json", str(json_path)]

    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("srgan: error: ") and err.count("\n") == 1 and "b.png: image data is truncated" in err
    assert "pass --allow-missing to score the rest" in err
    assert not json_path.exists()

    md_path, csv_path = tmp_path / "r.md", tmp_path / "r.csv"
    assert main([*args, "--allow-missing", "--markdown", str(md_path), "--csv", str(csv_path)]) == 0
    out, err = capsys.readouterr()
    assert "tiny (2 of 3 images, PARTIAL)" in out and "PARTIAL tiny, left out:" in out and "b.png" in out
    assert "tiny (2 of 3 images, PARTIAL)" in err and "Traceback" not in err and "UserWarning" not in err
    assert "PARTIAL tiny, left out:" in md_path.read_text()
    (dataset,) = json.loads(json_path.read_text())["datasets"]
    assert dataset["partial"] is True and dataset["images"] == 2 and "b.png" in dataset["missing"][0]
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(row["missing"] == "1" and row["images"] == "2" for row in rows)
