"""`srgan metrics niqe IMAGE...`: no-reference quality of any image, no ground truth needed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "metrics",
        help="image quality scores of single images (NIQE: no ground truth needed)",
        description="Score image files on their own. NIQE needs no reference, so it compares the outputs "
        "of several models on your own low-resolution photos, where no high-resolution original exists.",
    )
    actions = parser.add_subparsers(dest="metrics_action", metavar="METRIC", required=True)
    niqe = actions.add_parser(
        "niqe",
        help="NIQE (lower is better) of each image, as the official MATLAB code computes it",
        description="NIQE (Mittal et al. 2013) of each image on its BT.601 Y channel (MATLAB rgb2ycbcr; "
        "1-channel files on their gray values), "
        "96x96 blocks, with the official pristine-image model (`srgan models fetch-niqe`). Lower is "
        "better. An image needs at least two whole 96x96 blocks after --crop.",
    )
    niqe.add_argument("images", nargs="+", metavar="IMAGE", help="image files to score")
    niqe.add_argument("--crop", type=int, default=0, metavar="N",
                      help="pixels removed at each border first (default: %(default)s; published SR tables use the scale)")
    niqe.add_argument("--params", metavar="FILE",
                      help="niqe_pris_params.npz (default: the one `srgan models fetch-niqe` downloaded)")
    niqe.add_argument("--json", metavar="OUT", help="write the scores as JSON, keyed by file name")
    niqe.set_defaults(handler=niqe_command)


def niqe_command(args: argparse.Namespace) -> int:
    from srgan.downloads import niqe_params_path
    from srgan.errors import SrganError
    from srgan.fileutil import atomic_write_bytes
    from srgan.imageio import read_image
    from srgan.quality.niqe import load_niqe_model, niqe

    if args.crop < 0:
        raise SrganError(f"--crop {args.crop}: must be 0 or more pixels")
    model = load_niqe_model(args.params or niqe_params_path())
    scores: dict[str, float] = {}
    failures = 0
    width = max(len(name) for name in args.images)
    for name in args.images:
        try:
            loaded = read_image(name)
            # a 1-channel file is scored on its gray values, as MATLAB's niqe does (no Y formula)
            image = loaded.to_tensor()[None, :1] if loaded.is_gray else loaded.to_tensor()[None]
            scores[name] = niqe(image, model, crop_border=args.crop).item()
        except SrganError as error:  # names the file already
            failures += 1
            print(f"srgan: error: {error}", file=sys.stderr)
            continue
        except ValueError as error:  # too small for NIQE's blocks
            failures += 1
            print(f"srgan: error: {name}: {error}", file=sys.stderr)
            continue
        print(f"{name:<{width}}  {scores[name]:.4f}")
    if len(scores) > 1:
        print(f"{'mean':<{width}}  {sum(scores.values()) / len(scores):.4f}  ({len(scores)} images; NIQE, lower is better)")
    if args.json:
        atomic_write_bytes(Path(args.json), (json.dumps(scores, indent=2) + "\n").encode("utf-8"))
        print(f"wrote {args.json}")
    return 1 if failures else 0
