"""Score the shipped models on Set5 and Set14 with `srgan eval` and put the table into the README.

    python benchmarks/model_quality.py [--shared ../shared] [--model NAME ...] [--no-figures]

Writes docs/models/results.md (protocol + PSNR / SSIM / NIQE table) and replaces the README's results
table (PSNR / SSIM) between the `<!-- results:start -->` / `<!-- results:end -->` markers, so the
README's numbers are always the output of `srgan.evaluate`, never typed by hand. Each model card
(docs/models/<model>.md) gets its NIQE table (bicubic, the shipped models and the HR images
themselves) between `<!-- niqe:start -->` / `<!-- niqe:end -->`, and docs/models/figures/ the
perception-distortion plane. NIQE's parameters are read from the shared copy
(`--niqe-params`, default ../shared/data/reference/niqe/niqe_pris_params.npz). It also redraws the
model cards' comparison figures (docs/models/figures/): the bundled demo photo and two Set14 images,
every model side by side.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import torch
from machine import cpu_name  # benchmarks/machine.py, beside this script

from srgan.evaluate import (
    evaluate_models,
    format_markdown,
    save_perception_distortion_figure,
    write_text,
)

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"
NIQE_START, NIQE_END = "<!-- niqe:start -->", "<!-- niqe:end -->"
FIGURES = ROOT / "docs" / "models" / "figures"
# (dataset folder label, image name) -> figure file in docs/models/figures
CARD_FIGURES = {
    ("samples", "coffee"): "coffee.png",
    ("Set14", "comic"): "set14_comic.png",
    ("Set14", "baboon"): "set14_baboon.png",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"), help="the shared data folder")
    parser.add_argument("--model", action="append", help="models to score (default: the shipped ones)")
    parser.add_argument(
        "--no-figures",
        action="store_true",
        help="leave docs/models/figures as they are",
    )
    parser.add_argument("--niqe-params", help="NIQE's niqe_pris_params.npz (default: the shared copy)")
    args = parser.parse_args()
    models = args.model or ["compact-psnr-x4", "compact-srgan-x4"]
    bench = Path(args.shared) / "data" / "bench"
    niqe_params = args.niqe_params or Path(args.shared) / "data" / "reference" / "niqe" / "niqe_pris_params.npz"

    started = time.perf_counter()
    report = evaluate_models(models, [bench / "Set5", bench / "Set14"], 4, metrics="psnr,ssim,niqe",
                             niqe_params=niqe_params)
    hr_niqe = {name: hr_mean_niqe(bench / name, niqe_params, 4) for name in ("Set5", "Set14")}
    seconds = time.perf_counter() - started

    command = "python benchmarks/model_quality.py"
    table = format_markdown(report)
    psnr_ssim = replace(report, protocol=replace(report.protocol, metrics=("psnr", "ssim")))
    save_perception_distortion_figure(FIGURES / "perception_distortion.png", report, "niqe")
    if not args.no_figures:
        draw_card_figures(models, bench / "Set14")
    footer = (
        f"\nMeasured {date.today().isoformat()} by `{command}` on {cpu_name()}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__}; {seconds:.0f} s for the table.\n"
    )
    write_text(
        ROOT / "docs" / "models" / "results.md",
        "# Shipped models on Set5 and Set14\n\n" + table + footer,
    )
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    write_text(ROOT / "README.md", head + START + "\n" + format_markdown(psnr_ssim) + footer + END + tail)
    niqe_table = niqe_card_table(report, hr_niqe) + footer
    for model in models:
        card = ROOT / "docs" / "models" / f"{model}.md"
        if card.is_file():
            text = card.read_text(encoding="utf-8")
            head, rest = text.split(NIQE_START, 1)
            _, tail = rest.split(NIQE_END, 1)
            write_text(card, head + NIQE_START + "\n" + niqe_table + NIQE_END + tail)
    print(table + "\n" + niqe_table)


def hr_mean_niqe(folder: Path, niqe_params: Path, scale: int) -> float:
    """Mean NIQE of the HR images as eval treats them: cut to a multiple of the scale, `scale` px
    border crop, 1-channel files on their gray values."""
    from srgan.data.files import images_in_folder
    from srgan.imageio import read_image
    from srgan.quality.niqe import load_niqe_model, niqe

    model = load_niqe_model(niqe_params)
    scores = []
    for path in images_in_folder(folder):
        loaded = read_image(path)
        pixels = loaded.to_tensor()[None, :1] if loaded.is_gray else loaded.to_tensor()[None]
        height, width = pixels.shape[-2:]
        pixels = pixels[..., : height // scale * scale, : width // scale * scale]
        scores.append(niqe(pixels, model, crop_border=scale).item())
    return sum(scores) / len(scores)


def niqe_card_table(report, hr_niqe: dict[str, float]) -> str:
    """Markdown: mean NIQE per dataset of bicubic, each model and the HR images (lower is better)."""
    names = [dataset.name for dataset in report.datasets]
    lines = [
        "| NIQE (lower is better) | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for model in report.models:
        lines.append(f"| {model} | " + " | ".join(f"{report.mean_of(n, model).extra['niqe']:.4f}" for n in names) + " |")
    lines.append("| HR (ground truth) | " + " | ".join(f"{hr_niqe[n]:.4f}" for n in names) + " |")
    return "\n".join(lines) + "\n"


def draw_card_figures(models: list[str], set14: Path) -> None:
    """Comparison figures of the bundled demo photo (unseen in training) and two Set14 images."""
    from importlib import resources

    from srgan.cli.demo import SAMPLE_NAME

    with tempfile.TemporaryDirectory() as work:
        samples = Path(work) / "samples"
        samples.mkdir()
        shutil.copy(
            Path(str(resources.files("srgan") / "assets" / "samples" / SAMPLE_NAME)),
            samples / SAMPLE_NAME,
        )
        evaluate_models(models, [samples, set14], 4, figures_dir=Path(work) / "figures")
        for (dataset, image), target in CARD_FIGURES.items():
            shutil.copy(Path(work) / "figures" / dataset / f"{image}.png", FIGURES / target)


if __name__ == "__main__":
    main()
