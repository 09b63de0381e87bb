"""The video part of `srgan upscale`: options, which inputs are videos, and their runs (`srgan.video`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "video (.mp4 .m4v .mkv .mov .webm .gif inputs; needs srgan[video])",
        "A video is decoded, upscaled frame by frame and encoded again; audio and subtitles are copied "
        "unchanged and every frame keeps its timestamp. A folder of frames with -o CLIP.mp4 becomes a video.",
    )
    group.add_argument("--codec", help="video encoder (default: H.264 for mp4/mkv/mov, VP9 for webm, gif for gif)")
    group.add_argument("--crf", type=int, default=18, help="constant quality, 0 = lossless (default: %(default)s)")
    group.add_argument("--pix-fmt", metavar="FORMAT", help="pixel format (default: yuv420p; gif: rgb8)")
    group.add_argument("--fps", type=float, default=25.0, help="frame rate of a folder of frames (default: %(default)s)")
    group.add_argument(
        "--frames", action="store_true", help="write a video's upscaled frames as PNGs into a folder, not a video"
    )


def take_videos(args: argparse.Namespace, suffix: str) -> list[tuple[Path, Path]]:
    """(input, output) pairs for the video inputs, removed from `args.inputs` (images stay there)."""
    from srgan.errors import SrganError
    from srgan.video import is_video_path

    target = Path(args.output).expanduser() if args.output else None
    if target is not None and is_video_path(target) and len(args.inputs) == 1 and Path(args.inputs[0]).is_dir():
        folder = Path(args.inputs[0]).expanduser()
        args.inputs = []  # a folder of frames becomes one video
        return [(folder, target)]
    videos = [Path(text).expanduser() for text in args.inputs if is_video_path(text)]
    args.inputs = [text for text in args.inputs if not is_video_path(text)]
    if not videos:
        return []
    names_a_file = target is not None and is_video_path(target) and not args.frames
    if names_a_file and len(videos) > 1:
        raise SrganError(f"-o {target}: names one output but there are {len(videos)} videos; give a folder")
    jobs = []
    for video in videos:
        if names_a_file:
            destination = target
        else:
            folder = target if target is not None else video.parent
            destination = folder / (f"{video.stem}{suffix}" if args.frames else f"{video.stem}{suffix}{video.suffix}")
        jobs.append((video, destination))
    return jobs


def run_videos(jobs: list[tuple[Path, Path]], upscaler, args: argparse.Namespace, result, say, *, label: str) -> None:
    """Upscale each video job into `result` (a `srgan.batch.BatchResult`): written to `result.videos`, an
    existing output kept to `skipped`, a failure (reported through `say`, not fatal) to `failed`.
    `label` starts the progress lines."""
    from srgan.errors import SrganError
    from srgan.progress import FrameProgress
    from srgan.video import VideoOptions, upscale_video

    options = VideoOptions(
        codec=args.codec, crf=args.crf, pixel_format=args.pix_fmt, outscale=args.outscale, fps=args.fps
    )
    for source, target in jobs:
        if target.exists() and not args.overwrite:
            message = f"{source}: {target} exists; pass --overwrite to replace it"
            if args.skip_existing:
                result.skipped.append(target)
            else:
                result.failed.append(message)
                say(f"srgan: error: {message}")
            continue
        progress = FrameProgress(source.name, mode=args.progress, label=label)
        try:
            video = upscale_video(upscaler, source, target, options=options, progress=progress.update)
        except SrganError as error:
            result.failed.append(str(error))
            say(f"srgan: error: {error}")
            continue
        finally:
            progress.close()
        say(f"{source} -> {target}: {video.frames} frames, {video.width}x{video.height}")
        result.videos.append(target)
