"""The README's first command: the embedded default model against bicubic on the bundled photo."""

import re
from importlib import resources
from pathlib import Path

from PIL import Image

from srgan.cli import main
from srgan.evaluate import evaluate_models
from srgan.models import DEFAULT_MODEL, load_model

REPO = Path(__file__).resolve().parents[1]


def shown_as(value: float, printed: float, decimals: int) -> bool:
    """`printed` is `value` rounded to `decimals`, allowing a hair for another CPU's kernels at a boundary."""
    return abs(value - printed) <= 0.5 * 10**-decimals + 1e-6


def test_default_model_is_embedded_and_beats_bicubic_on_the_bundled_photo():
    model = load_model(DEFAULT_MODEL)
    assert model.scale == 4 and model.metadata.get("source") == "srgan train"
    samples = Path(str(resources.files("srgan") / "assets" / "samples"))
    report = evaluate_models([model], [samples], 4)
    ours = report.mean_of("samples", DEFAULT_MODEL).psnr
    bicubic = report.mean_of("samples", "bicubic").psnr
    assert ours > bicubic + 0.5
    # The README quotes these two numbers next to its first command; they must be the files' own.
    quoted = re.search(r"PSNR/SSIM for both \((\d+\.\d+) vs\s+(\d+\.\d+) dB\)", (REPO / "README.md").read_text("utf-8"))
    assert quoted is not None, "README no longer quotes the demo's numbers"
    assert shown_as(bicubic, float(quoted[1]), 2) and shown_as(ours, float(quoted[2]), 2)


def test_demo_writes_the_comparison_figure(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path)]) == 0
    figure = tmp_path / "samples" / "coffee.png"
    assert str(figure.resolve()) in capsys.readouterr().out
    with Image.open(figure) as image:
        assert image.width > 3 * image.height  # LR / bicubic / model / HR side by side


def test_shipped_models_score_on_set5_what_the_results_table_says(shared_dir):
    # docs/models/results.md (and the README table) come from benchmarks/model_quality.py; re-scoring
    # the embedded weights must give the same Set5 numbers, so the cards cannot drift from the files.
    results = (REPO / "docs" / "models" / "results.md").read_text(encoding="utf-8")
    published = {}
    for line in results.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 3 and " / " in cells[1]:
            psnr, ssim = cells[1].split(" / ")[:2]  # then NIQE
            published[cells[0]] = (float(psnr), float(ssim))
    shipped = [name for name in published if name != "bicubic"]
    assert DEFAULT_MODEL in shipped
    report = evaluate_models(shipped, [shared_dir / "data" / "bench" / "Set5"], 4)
    for name in ["bicubic", *shipped]:
        score = report.mean_of("Set5", name)
        psnr, ssim = published[name]
        assert shown_as(score.psnr, psnr, 2) and shown_as(score.ssim, ssim, 4), name
