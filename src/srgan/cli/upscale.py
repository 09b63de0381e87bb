"""`srgan upscale INPUT... [-o OUT]`: argument parsing over `srgan.batch`."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings

from srgan.cli import upscale_video


def register(subparsers) -> None:
    from srgan.batch import FORMAT_EXTENSIONS
    from srgan.inference import ALPHA_MODES
    from srgan.progress import PROGRESS_MODES
    from srgan.runtimes import RUNTIMES

    parser = subparsers.add_parser(
        "upscale",
        help="upscale images with a super-resolution model",
        description="Upscale image files, the images in folders, and glob patterns. Outputs are named "
        "<stem>_<model>_x<scale>.<ext> and keep the input's format, mode (gray, alpha), bit depth and colour "
        "profile; files named so are not picked up again, and no input file is ever overwritten. A bad "
        "input, or an output that exists (without --overwrite or --skip-existing), is reported on one line "
        "and the rest still done; the exit status is then 1. Under torchrun each process takes its share.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image file, folder of images, or glob pattern")
    parser.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="search folders (and ** in globs) in depth; outputs keep the tree",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output folder (created), or an output file when there is one input image "
        "(default: next to each input file)",
    )
    parser.add_argument(
        "--model",
        metavar="NAME|PATH",
        help="named weights (`srgan models`), a model file, or 'bicubic' (default: srgan.models.DEFAULT_MODEL)",
    )
    parser.add_argument(
        "--scale", type=int, metavar="N", help="upscaling factor of the model (bicubic: any; others: a check)"
    )
    parser.add_argument(
        "--outscale", type=float, metavar="X", help="final scale, reached by bicubic resizing after the model"
    )
    parser.add_argument(
        "--device", default="auto", metavar="DEVICE", help="cpu, cuda, cuda:N, mps or auto (default: %(default)s)"
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "fp16", "bf16"),
        default="auto",
        help="auto: fp16 on CUDA for fp16-safe models, fp32 elsewhere (default: %(default)s)",
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="auto",
        help="who runs the network, all in fp32 (same output): auto takes on a CPU the runtime measured "
        "fastest for the model's architecture among those installed (OpenVINO for RRDBNet and "
        "SRVGGNetCompact), PyTorch otherwise; the summary line says which ran (default: %(default)s)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="say which runtime runs the network, and why"
    )
    parser.add_argument(
        "--tile", type=int, metavar="PIXELS", help="tile side in input pixels (default: automatic; 0: no tiling)"
    )
    parser.add_argument(
        "--tile-overlap", type=int, metavar="PIXELS", help="context pixels around each tile (default: 32)"
    )
    parser.add_argument(
        "--batch-tiles", type=int, default=1, metavar="N", help="tiles run together on the device (default: 1)"
    )
    parser.add_argument(
        "--format",
        choices=sorted(FORMAT_EXTENSIONS),
        help="output format (default: the input's; an output file's extension decides for itself)",
    )
    parser.add_argument(
        "--quality", type=int, default=95, metavar="1-100", help="JPEG and WebP quality (default: %(default)s)"
    )
    parser.add_argument(
        "--alpha",
        choices=ALPHA_MODES,
        default="bicubic",
        help="how an alpha channel is upscaled: bicubic, or model (through the network as a gray image) "
        "(default: %(default)s)",
    )
    parser.add_argument("--suffix", help="added to output names (default: _<model>_x<scale>)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument(
        "--overwrite", action="store_true", help="replace existing outputs (never an input file)"
    )
    existing.add_argument(
        "--skip-existing", action="store_true", help="keep existing outputs and count them as done"
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        metavar="N",
        help="refuse inputs with more pixels (default: 100 million; 0: no limit); a result the machine's "
        "free memory cannot hold is refused too, before any work",
    )
    parser.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        default="auto",
        help="auto: a bar on a terminal, a log line every few seconds otherwise (default: %(default)s)",
    )
    upscale_video.add_arguments(parser)
    parser.set_defaults(handler=upscale_command)


def upscale_command(args: argparse.Namespace) -> int:
    from srgan import batch

    _check_numbers(args)
    with batch.Processes() as processes:
        return _upscale(args, processes)


def _upscale(args: argparse.Namespace, processes) -> int:
    from srgan import batch
    from srgan.inference import Upscaler
    from srgan.models import DEFAULT_MODEL, load_model
    from srgan.progress import DEFAULT_LABEL, BatchProgress

    model = load_model(args.model or DEFAULT_MODEL, scale=args.scale)
    existing = "overwrite" if args.overwrite else "skip" if args.skip_existing else "error"
    naming = batch.naming_for(
        model, output=args.output, suffix=args.suffix, format=args.format, existing=existing, outscale=args.outscale
    )
    video_jobs = upscale_video.take_videos(args, naming.suffix)
    if args.inputs or not video_jobs:
        expansion = batch.expand_inputs(args.inputs, recursive=args.recursive)
    else:
        expansion = batch.Expansion()
    plan = batch.plan_outputs(expansion.sources, naming)
    problems = expansion.errors + plan.errors
    main_process = processes.rank == 0
    if main_process:  # every process plans the same; one says so
        for line in expansion.notes + plan.notes:
            print(f"srgan: note: {line}", file=sys.stderr)
        for line in problems:
            print(f"srgan: error: {line}", file=sys.stderr)
    processes.wait_for_all()  # every plan is made before any process writes an output
    jobs, video_jobs = processes.share(plan.jobs), processes.share(video_jobs)
    device = None if args.device == "auto" else args.device
    if processes.world_size > 1 and device is None:
        import torch

        device = f"cuda:{processes.local_rank}" if torch.cuda.is_available() else "cpu"

    # under torchrun each process reports its own share; the label says whose lines these are
    label = DEFAULT_LABEL
    if processes.world_size > 1:
        label += f" rank {processes.rank}/{processes.world_size}"
    progress = BatchProgress(len(jobs), mode=args.progress, label=label)
    with _warnings_as_notes(progress):
        upscaler = Upscaler(
            model,
            device=device,
            precision=args.precision,
            tile=args.tile,
            tile_overlap=args.tile_overlap,
            batch_tiles=args.batch_tiles,
            runtime=args.runtime,
        )
        if args.verbose and main_process:
            progress.write(f"srgan: runtime {upscaler.runtime} on {upscaler.device} ({upscaler.runtime_reason})")
        try:
            result = batch.run_batch(
                jobs,
                upscaler,
                outscale=args.outscale,
                alpha=args.alpha,
                quality=args.quality,
                max_pixels=args.max_pixels,
                progress=progress,
                report=progress.write,
            )
        finally:
            progress.close()
        upscale_video.run_videos(video_jobs, upscaler, args, result, progress.write, label=label)
    if main_process:
        result.failed[:0] = problems
        result.skipped[:0] = [job.target for job in plan.skipped]
    result = processes.combine(result)
    if main_process:
        label = batch.scale_label(model.scale, args.outscale)
        where = f" on {processes.world_size} processes" if processes.world_size > 1 else ""
        print(result.summary(f"{model.name} x{label} ({upscaler.runtime} on {upscaler.device}){where}"))
    return 0 if result.ok else 1


def _check_numbers(args: argparse.Namespace) -> None:
    from srgan.errors import SrganError

    if args.outscale is not None and args.outscale <= 0:
        raise SrganError(f"--outscale {args.outscale:g}: must be a positive number")
    if args.max_pixels is not None and args.max_pixels < 0:
        raise SrganError(f"--max-pixels {args.max_pixels}: must be 0 (no limit) or a positive number")
    if not 1 <= args.quality <= 100:
        raise SrganError(f"--quality {args.quality}: must be between 1 and 100")


@contextlib.contextmanager
def _warnings_as_notes(progress):
    """Show the engine's warnings (precision fallback, tile halving) as one-line notes."""

    def show(message, category, filename, lineno, file=None, line=None):
        progress.write(f"srgan: note: {message}")

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield
