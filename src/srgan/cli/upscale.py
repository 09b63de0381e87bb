"""`srgan upscale INPUT... [-o OUT]`: upscale image files, folders and globs with a model."""

from __future__ import annotations

import argparse
import contextlib
import glob
import sys
import warnings
from pathlib import Path

from srgan.cli import upscale_video

# --format choices -> file extension written
FORMAT_EXTENSIONS = {
    "png": ".png",
    "jpg": ".jpg",
    "jpeg": ".jpg",
    "webp": ".webp",
    "tif": ".tif",
    "tiff": ".tif",
    "bmp": ".bmp",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "upscale",
        help="upscale images with a super-resolution model",
        description="Upscale image files, the images in folders, and glob patterns. Outputs are named "
        "<stem>_x<scale>.<ext> and keep the input's format, mode (gray, alpha), bit depth and colour "
        "profile. A bad input is reported on one line and skipped; the exit status is then 1.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image file, folder of images, or glob pattern")
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
        choices=("auto", "torch", "ncnn"),
        default="auto",
        help="who runs the network: auto uses ncnn on CPU for the pretrained models (converted from ncnn "
        "files; faster there, same output) when the ncnn package is installed, PyTorch otherwise; "
        "torch always uses PyTorch (default: %(default)s)",
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
    parser.add_argument("--suffix", help="added to output names (default: _x<scale>)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    parser.add_argument(
        "--max-pixels", type=int, metavar="N", help="refuse inputs with more pixels (default: 100 million; 0: no limit)"
    )
    parser.add_argument("--progress", action="store_true", help="show progress bars even when stderr is not a terminal")
    upscale_video.add_arguments(parser)
    parser.set_defaults(handler=upscale_command)


def upscale_command(args: argparse.Namespace) -> int:
    from srgan.imageio import DEFAULT_MAX_PIXELS
    from srgan.inference import Upscaler
    from srgan.models import DEFAULT_MODEL, load_model

    _check_numbers(args)
    max_pixels = DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels or None
    model = load_model(args.model or DEFAULT_MODEL, scale=args.scale)
    scale_label = f"{args.outscale:g}" if args.outscale else str(model.scale)
    suffix = f"_x{scale_label}" if args.suffix is None else args.suffix
    video_jobs = upscale_video.take_videos(args, suffix)
    sources, failures = _expand_inputs(args.inputs) if args.inputs or not video_jobs else ([], [])
    jobs = _plan_outputs(sources, args.output, suffix, args.format)
    for message in failures:
        _report(message)

    with _warnings_as_notes():
        upscaler = Upscaler(
            model,
            device=None if args.device == "auto" else args.device,
            precision=args.precision,
            tile=args.tile,
            tile_overlap=args.tile_overlap,
            batch_tiles=args.batch_tiles,
            runtime=args.runtime,
        )
        written, skipped, failed = _run_jobs(jobs, upscaler, args, max_pixels)
        videos, videos_skipped, videos_failed = upscale_video.run_videos(video_jobs, upscaler, args, _report)
    failed += len(failures) + videos_failed
    skipped += videos_skipped
    also = f" and {videos} video(s)" if video_jobs else ""
    print(f"upscaled {written} image(s){also} with {model.name} x{scale_label}; {skipped} skipped, {failed} failed")
    return 1 if failed else 0


def _run_jobs(jobs, upscaler, args: argparse.Namespace, max_pixels: int | None) -> tuple[int, int, int]:
    """Upscale each (input, output) pair; a bad input is reported and counted, not fatal.

    On a folder of frames the device stays busy: while one image is upscaled, one thread decodes the
    next and another encodes the previous (the image codecs release the GIL). At most one image waits
    on each side, so memory stays that of three images.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    from srgan.errors import SrganError
    from srgan.imageio import read_image, write_image

    show_progress = args.progress or sys.stderr.isatty()
    to_do = []
    for source, target in jobs:
        if target.exists() and not args.overwrite:
            print(f"srgan: note: skipping {source}: {target} exists (use --overwrite)", file=sys.stderr)
        else:
            to_do.append((source, target))
    skipped = len(jobs) - len(to_do)
    written = failed = 0
    writing = None
    with (
        ThreadPoolExecutor(1, thread_name_prefix="srgan-read") as reader,
        ThreadPoolExecutor(1, thread_name_prefix="srgan-write") as writer,
        tqdm(to_do, desc="images", unit="image", disable=not show_progress, file=sys.stderr) as images_bar,
    ):
        reads = [reader.submit(read_image, source, max_pixels=max_pixels) for source, _ in to_do[:1]]
        for index, (source, target) in enumerate(images_bar):
            if index + 1 < len(to_do):
                reads.append(reader.submit(read_image, to_do[index + 1][0], max_pixels=max_pixels))
            try:
                image = reads.pop(0).result()
                with tqdm(
                    desc=source.name, unit="tile", leave=False, disable=not show_progress, file=sys.stderr
                ) as tiles_bar:
                    pixels = _upscale_pixels(image, upscaler, args.outscale, tiles_bar)
            except SrganError as error:
                _report(str(error))
                failed += 1
                continue
            if writing is not None:
                written, failed = _tally_write(*writing, written, failed)
            writing = (target, writer.submit(write_image, target, pixels, like=image))
        if writing is not None:
            written, failed = _tally_write(*writing, written, failed)
    return written, skipped, failed


def _tally_write(target: Path, write, written: int, failed: int) -> tuple[int, int]:
    """Wait for one background write; return the (written, failed) counts with it added (failures reported)."""
    from srgan.errors import SrganError

    try:
        write.result()
    except SrganError as error:
        _report(str(error))
        return written, failed + 1
    except OSError as error:
        _report(f"{target}: cannot write ({error})")
        return written, failed + 1
    return written + 1, failed


def _check_numbers(args: argparse.Namespace) -> None:
    from srgan.errors import SrganError

    if args.outscale is not None and args.outscale <= 0:
        raise SrganError(f"--outscale {args.outscale:g}: must be a positive number")
    if args.max_pixels is not None and args.max_pixels < 0:
        raise SrganError(f"--max-pixels {args.max_pixels}: must be 0 (no limit) or a positive number")


def _report(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"srgan: error: {message}", file=sys.stderr)


@contextlib.contextmanager
def _warnings_as_notes():
    """Show the engine's warnings (precision fallback, tile halving) as one-line notes."""

    def show(message, category, filename, lineno, file=None, line=None):
        from tqdm import tqdm

        tqdm.write(f"srgan: note: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield


def _readable_extensions() -> set[str]:
    from PIL import Image

    return {extension for extension, name in Image.registered_extensions().items() if name in Image.OPEN}


def _expand_inputs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Image files named by `inputs` (files, folders, globs), and one message per input that gave none."""
    extensions = _readable_extensions()
    sources: list[Path] = []
    failures: list[str] = []
    for text in inputs:
        path = Path(text).expanduser()
        if path.is_dir():
            images = sorted(
                entry
                for entry in path.iterdir()
                if entry.is_file() and not entry.name.startswith(".") and entry.suffix.lower() in extensions
            )
            if not images:
                failures.append(f"{path}: no images in this folder")
            sources.extend(images)
        elif path.exists() or not glob.has_magic(text):
            sources.append(path)  # read_image reports a missing or unreadable file by name
        else:
            matches = sorted(Path(match) for match in glob.glob(str(path)) if Path(match).is_file())
            if not matches:
                failures.append(f"{text}: no files match this pattern")
            sources.extend(matches)
    unique = list(dict.fromkeys(sources))
    return unique, failures


def _output_extension(source: Path, format_choice: str | None) -> str:
    from PIL import Image

    if format_choice:
        return FORMAT_EXTENSIONS[format_choice]
    writable = Image.registered_extensions().get(source.suffix.lower()) in Image.SAVE
    return source.suffix if writable else ".png"  # e.g. a PSD input: written as PNG


def _plan_outputs(
    sources: list[Path], output: str | None, suffix: str, format_choice: str | None
) -> list[tuple[Path, Path]]:
    """(input, output path) pairs; refuses plans that would replace an input or write a file twice."""
    from srgan.errors import SrganError

    target = Path(output).expanduser() if output else None
    names_a_file = target is not None and not target.is_dir() and target.suffix.lower() in _readable_extensions()
    if names_a_file and len(sources) > 1:
        raise SrganError(f"-o {target}: names one file but there are {len(sources)} inputs; give a folder")
    single_file_output = names_a_file and len(sources) == 1
    jobs: list[tuple[Path, Path]] = []
    for source in sources:
        if single_file_output:
            destination = target
        else:
            folder = target if target is not None else source.parent
            destination = folder / f"{source.stem}{suffix}{_output_extension(source, format_choice)}"
        if destination.resolve() == source.resolve():
            raise SrganError(f"{source}: the output would replace the input; give another -o or --suffix")
        jobs.append((source, destination))
    destinations = [destination for _, destination in jobs]
    for destination in set(destinations):
        if destinations.count(destination) > 1:
            clashing = ", ".join(str(source) for source, out in jobs if out == destination)
            raise SrganError(f"{destination}: would be written from several inputs ({clashing}); rename one")
    return jobs


def _upscale_pixels(image, upscaler, outscale, tiles_bar):
    """The upscaled pixels of a read image (colour, plus alpha when it has one)."""
    import torch

    from srgan.inference import upscale_image

    def on_tiles(done: int, total: int) -> None:
        tiles_bar.total = total
        tiles_bar.n = done
        tiles_bar.refresh()

    color, alpha = upscale_image(
        upscaler, image.to_tensor(), image.alpha_tensor(), outscale=outscale, progress=on_tiles
    )
    return color if alpha is None else torch.cat([color, alpha])
