"""`srgan train`, `srgan plot`, `srgan export`, `srgan interpolate`: training runs and what comes out of them."""

from __future__ import annotations

import argparse
import os

EXPORT_FORMATS = ("safetensors", "onnx")


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
        help="write the generator of a training checkpoint as a model file, or any model as ONNX",
    )
    export.add_argument("source", metavar="SOURCE",
                        help="a .ckpt file from RUN_DIR/checkpoints/; for ONNX also a model file or a model name")
    export.add_argument("-o", "--output", required=True, metavar="OUT.safetensors|OUT.onnx")
    export.add_argument("--format", choices=EXPORT_FORMATS,
                        help="output format (default: onnx when OUT ends in .onnx, else safetensors)")
    export.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True,
                        help="export the EMA weights when the run kept them (default: yes)")
    export.add_argument("--fp16", action="store_true", help="store weights as float16 (half the size; safetensors only)")
    export.add_argument("--description", metavar="TEXT", help="one line on what the model is, shown by `srgan models` (safetensors only)")
    export.add_argument("--license", metavar="TEXT", help="the weights' licence, shown by `srgan models` (safetensors only)")
    export.set_defaults(handler=run_export)

    interpolate = subparsers.add_parser(
        "interpolate",
        help="blend two generators of the same architecture: (1 - alpha) * A + alpha * B (ESRGAN)",
    )
    interpolate.add_argument("model_a", metavar="A", help="model file or checkpoint, e.g. the PSNR-oriented model")
    interpolate.add_argument("model_b", metavar="B", help="model file or checkpoint, e.g. the GAN model")
    interpolate.add_argument("--alpha", type=float, required=True, help="weight of B, between 0 and 1")
    interpolate.add_argument("-o", "--output", required=True, metavar="OUT.safetensors")
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

    export_format = args.format or ("onnx" if args.output.lower().endswith(".onnx") else "safetensors")
    if export_format == "onnx":
        from srgan.onnx_export import export_model_onnx

        if args.fp16 or args.description or args.license:
            raise SrganError(
                "--fp16, --description and --license apply to safetensors exports; ONNX files are written in "
                "float32 with the model's own metadata"
            )
        print(export_model_onnx(args.source, args.output, ema=args.ema))
    else:
        from srgan.train.checkpoint import export_generator

        print(
            export_generator(
                args.source, args.output, ema=args.ema, fp16=args.fp16, description=args.description, license=args.license
            )
        )
    return 0


def run_interpolate(args) -> int:
    from srgan.train.checkpoint import interpolate_generators

    print(interpolate_generators(args.model_a, args.model_b, args.alpha, args.output))
    return 0
