"""`srgan train`, `srgan plot`, `srgan export`, `srgan interpolate`: training runs and what comes out of them."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from srgan.cli.notes import warnings_said

EXPORT_FORMATS = ("safetensors", "pth", "onnx")
_FORMAT_OF_SUFFIX = {".safetensors": "safetensors", ".pth": "pth", ".pt": "pth", ".onnx": "onnx"}


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a generator from a YAML recipe (configs/*.yaml)",
        description="Train a super-resolution generator (optionally with a GAN) as a YAML recipe describes.",
    )
    train.add_argument("config", help="recipe file, e.g. configs/srgan_x4.yaml")
    train.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        nargs="+",
        action="extend",
        default=[],
        help="override a config key (dotted path, value parsed as YAML), e.g. --set preset=quick train.iterations=500",
    )
    train.add_argument("--resume", metavar="auto|PATH", help="continue from the newest valid checkpoint in the run folder (auto) or from PATH")
    train.add_argument("--out", metavar="DIR", help="run folder (default runs/NAME[_PRESET])")
    train.set_defaults(handler=run_train)

    plot = subparsers.add_parser("plot", help="redraw a run's loss / PSNR / discriminator plots from metrics.jsonl")
    plot.add_argument("run_dir", metavar="RUN_DIR")
    plot.set_defaults(handler=run_plot)

    export = subparsers.add_parser(
        "export",
        help="write any model (name, model file, training checkpoint) as .safetensors, .pth or .onnx",
    )
    export.add_argument("source", metavar="SOURCE",
                        help="a model name (`srgan models`), a model file, or a .ckpt from RUN_DIR/checkpoints/")
    export.add_argument("-o", "--output", required=True, metavar="OUT.safetensors|OUT.pth|OUT.onnx")
    export.add_argument("--format", choices=EXPORT_FORMATS,
                        help="output format (default: from OUT's extension; .pth is BasicSR's {'params_ema': ...})")
    export.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True,
                        help="export the EMA weights when the run kept them (default: yes)")
    export.add_argument("--fp16", action="store_true", help="store weights as float16 (half the size; not ONNX)")
    export.add_argument("--description", metavar="TEXT", help="one line on what the model is, shown by `srgan models`")
    export.add_argument("--license", metavar="TEXT", help="the weights' licence, shown by `srgan models`")
    export.set_defaults(handler=run_export)

    interpolate = subparsers.add_parser(
        "interpolate",
        help="blend two generators of the same architecture: (1 - alpha) * A + alpha * B (ESRGAN)",
    )
    interpolate.add_argument("model_a", metavar="A", help="model name, file or checkpoint, e.g. the PSNR-oriented model")
    interpolate.add_argument("model_b", metavar="B", help="model name, file or checkpoint, e.g. the GAN model")
    interpolate.add_argument("--alpha", type=float, required=True, help="weight of B, between 0 and 1")
    interpolate.add_argument("-o", "--output", required=True, metavar="OUT.safetensors|OUT.pth|OUT.onnx")
    interpolate.set_defaults(handler=run_interpolate)


def run_train(args) -> int:
    from srgan.train.config import load_config
    from srgan.train.trainer import train

    config = load_config(args.config, args.overrides)
    run_dir = train(config, args.out, resume=args.resume)
    # under torchrun every process gets here; rank 0 speaks for the run
    if os.environ.get("RANK", "0") == "0":
        print(run_dir)
    return 0


def run_plot(args) -> int:
    from srgan.train.monitor import plot_metrics

    for path in plot_metrics(args.run_dir):
        print(path)
    return 0


def run_export(args) -> int:
    from srgan.errors import SrganError

    # readers go by the extension, so the bytes must match it (a .pth holding safetensors loads nowhere)
    named = _FORMAT_OF_SUFFIX.get(Path(args.output).suffix.lower())
    export_format = args.format or named
    if named is None or export_format != named:
        wanted = f".{args.format}" if args.format else ".safetensors, .pth or .onnx"
        raise SrganError(f"{args.output}: name the output {wanted}; the extension says which format it holds")
    from srgan.models import export_model

    with warnings_said():
        print(export_model(args.source, args.output, ema=args.ema, fp16=args.fp16,
                           description=args.description, license=args.license))
    return 0


def run_interpolate(args) -> int:
    from srgan.models import interpolate_models

    with warnings_said():
        print(interpolate_models(args.model_a, args.model_b, args.alpha, args.output))
    return 0
