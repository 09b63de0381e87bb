"""Score the shipped models on Set5 and Set14 with `srgan eval` and put the table into the README.

    python benchmarks/model_quality.py [--shared ../shared] [--model NAME ...]

Writes docs/models/results.md (protocol + table) and replaces the README's results table between
the `<!-- results:start -->` / `<!-- results:end -->` markers, so the README's numbers are always
the output of `srgan.evaluate`, never typed by hand.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date
from pathlib import Path

from srgan.evaluate import evaluate_models, format_markdown, write_text

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"), help="the shared data folder")
    parser.add_argument("--model", action="append", help="models to score (default: the shipped ones)")
    args = parser.parse_args()
    models = args.model or ["compact-psnr-x4", "compact-srgan-x4"]
    bench = Path(args.shared) / "data" / "bench"

    started = time.perf_counter()
    report = evaluate_models(models, [bench / "Set5", bench / "Set14"], 4)
    seconds = time.perf_counter() - started

    command = "python benchmarks/model_quality.py"
    table = format_markdown(report)
    footer = (
        f"\nMeasured {date.today().isoformat()} by `{command}` on {platform.processor() or platform.machine()} "
        f"(CPU, {seconds:.0f} s).\n"
    )
    write_text(ROOT / "docs" / "models" / "results.md", "# Shipped models on Set5 and Set14\n\n" + table + footer)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    write_text(ROOT / "README.md", head + START + "\n" + table + footer + END + tail)
    print(table + footer)


if __name__ == "__main__":
    main()
