"""`srgan demo`: the first thing a new user runs — our default model against bicubic on a real photo.

The bundled CC0 photo (`srgan/assets/samples/coffee.png`, kept out of the shipped models' training
data) is downscaled x4 with MATLAB's bicubic, upscaled back by bicubic and by the model, and scored
under the standard protocol; a comparison figure (LR / bicubic / model / HR crops) is written. It is
`srgan eval` on a one-image dataset, so the numbers mean exactly what the eval tables mean.
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

SAMPLE_NAME = "coffee.png"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="upscale a bundled photo with the default model and compare it with bicubic",
        description="Downscale a bundled photo x4 (MATLAB bicubic), upscale it back with bicubic and with "
        "a model, print PSNR/SSIM of both and write a comparison figure. No network needed.",
    )
    parser.add_argument("--model", metavar="NAME|PATH", help="model to show (default: the default model)")
    parser.add_argument("-o", "--output", default="srgan-demo", metavar="DIR",
                        help="folder for the comparison figure (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (default: %(default)s)")
    parser.set_defaults(handler=demo_command)


def demo_command(args: argparse.Namespace) -> int:
    from srgan.evaluate import evaluate_models, format_table
    from srgan.models import DEFAULT_MODEL

    samples = Path(str(resources.files("srgan") / "assets" / "samples"))
    output = Path(args.output)
    report = evaluate_models(
        [args.model or DEFAULT_MODEL],
        [samples],
        4,
        device=None if args.device == "auto" else args.device,
        figures_dir=output,
    )
    print(f"{SAMPLE_NAME} (CC0, see {samples / 'README.md'}) downscaled x4, then upscaled back:\n")
    print(format_table(report), end="")
    figure = output / samples.name / f"{Path(SAMPLE_NAME).stem}.png"
    print(f"\ncomparison figure (LR / bicubic / model / HR): {figure.resolve()}")
    return 0
