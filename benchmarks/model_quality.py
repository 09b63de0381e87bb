"""Score the shipped models on Set5 and Set14 with `srgan eval` and put the table into the README.

    python benchmarks/model_quality.py [--shared ../shared] [--model NAME ...] [--no-figures]

Writes docs/models/results.md (protocol + table) and replaces the README's results table between
the `<!-- results:start -->` / `<!-- results:end -->` markers, so the README's numbers are always
the output of `srgan.evaluate`, never typed by hand. It also redraws the model cards' comparison
figures (docs/models/figures/): the bundled demo photo and two Set14 images, every model side by side.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

import torch
from machine import cpu_name  # benchmarks/machine.py, beside this script

from srgan.evaluate import evaluate_models, format_markdown, write_text

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"
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
    args = parser.parse_args()
    models = args.model or ["compact-psnr-x4", "compact-srgan-x4"]
    bench = Path(args.shared) / "data" / "bench"

    started = time.perf_counter()
    report = evaluate_models(models, [bench / "Set5", bench / "Set14"], 4)
    seconds = time.perf_counter() - started

    command = "python benchmarks/model_quality.py"
    table = format_markdown(report)
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
    write_text(ROOT / "README.md", head + START + "\n" + table + footer + END + tail)
    print(table + footer)


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
