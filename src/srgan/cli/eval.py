"""`srgan eval`: PSNR / SSIM (and NIQE, VIF) of models on benchmark folders under the standard protocol."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="PSNR/SSIM (and NIQE, VIF, LPIPS) of models on benchmark image folders",
        description="Evaluate each model on each folder of HR images. The LR input is MATLAB bicubic of the "
        "HR cropped to a multiple of the scale (or read with --lr-dir); outputs are rounded to 8 bits and "
        "scored on the Y channel with SCALE pixels cropped at each border, as in published tables. "
        "Bicubic is always evaluated as the reference row.",
    )
    parser.add_argument("--model", action="append", default=[], metavar="NAME|PATH",
                        help="named weights (`srgan models`), a model file, or 'bicubic'; repeat for several")
    parser.add_argument("--data", action="append", required=True, metavar="DIR",
                        help="folder of HR images (e.g. Set5); repeat for several datasets")
    parser.add_argument("--scale", type=int, default=4, help="upscaling factor (default: %(default)s)")
    parser.add_argument("--lr-dir", action="append", metavar="DIR",
                        help="folder of LR inputs for the matching --data (names NAME or NAMEx<scale>, "
                        "X<scale>/ subfolder understood); give one per --data, in order")
    parser.add_argument("--rgb", action="store_true", help="score RGB instead of the Y channel")
    parser.add_argument("--metric", default="psnr,ssim", metavar="LIST",
                        help="metrics to show, comma-separated, from psnr, ssim, niqe (no reference, lower is "
                        "better; `srgan models fetch-niqe`), vif (pip install \"srgan[vif]\"), lpips (lower is better; "
                        "`srgan models fetch-lpips`) "
                        "(default: %(default)s)")
    parser.add_argument("--niqe-params", metavar="FILE",
                        help="NIQE's niqe_pris_params.npz (default: the one `srgan models fetch-niqe` downloaded)")
    parser.add_argument("--crop-border", type=int, metavar="N", help="pixels cropped at each border (default: scale)")
    parser.add_argument("--per-image", action="store_true", help="also show and write per-image scores")
    parser.add_argument("--json", metavar="FILE", help="write protocol, means and per-image scores as JSON")
    parser.add_argument("--csv", metavar="FILE", help="write the scores as CSV")
    parser.add_argument("--markdown", metavar="FILE", help="write the tables as Markdown")
    parser.add_argument("--lpips-weights", metavar="FILE",
                        help="LPIPS weights from `srgan models fetch-lpips` (default: the fetched AlexNet one)")
    parser.add_argument("--figures", metavar="DIR", help="write a comparison figure per image to DIR/<dataset>/ and, "
                        "with niqe or lpips among the metrics, the perception-distortion plane to DIR/perception_distortion.png")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (default: %(default)s)")
    parser.add_argument("--tile", type=int, help="tile side in input pixels for large images (default: automatic)")
    parser.add_argument("--progress", action="store_true", help="show progress bars even when stderr is not a terminal")
    parser.add_argument("--allow-missing", action="store_true",
                        help="leave out unreadable (truncated, corrupt) HR/LR files instead of stopping; the "
                        "dataset is then marked PARTIAL in every table and file (default: such a file is an error)")
    parser.set_defaults(handler=eval_command)


def eval_command(args: argparse.Namespace) -> int:
    from srgan.evaluate import evaluate_models, format_csv, format_json, format_markdown, format_table, write_text

    report = evaluate_models(
        args.model,
        args.data,
        args.scale,
        lr_dirs=args.lr_dir,
        y_channel=not args.rgb,
        crop_border=args.crop_border,
        device=None if args.device == "auto" else args.device,
        tile=args.tile,
        figures_dir=args.figures,
        progress=True if args.progress else None,
        allow_missing=args.allow_missing,
        metrics=args.metric,
        niqe_params=args.niqe_params,
        lpips_weights=args.lpips_weights,
    )
    for dataset in report.datasets:
        if dataset.partial:
            print(f"srgan: warning: {dataset.label}: scores are over part of the dataset only", file=sys.stderr)
    print(format_table(report, per_image=args.per_image), end="")
    outputs = {
        args.json: lambda: format_json(report),
        args.csv: lambda: format_csv(report, per_image=args.per_image),
        args.markdown: lambda: format_markdown(report, per_image=args.per_image),
    }
    for path, render in outputs.items():
        if path:
            write_text(Path(path), render())
            print(f"wrote {path}")
    return 0
