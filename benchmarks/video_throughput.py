"""Video upscaling: frames per second and peak memory against clip length (`srgan.video.upscale_video`).

Builds synthetic H.264 clips (moving gradient, AAC sine track) of each `--frames` length, then upscales
each one in a fresh subprocess and reads that process's peak RSS (`ru_maxrss`). Constant memory means
the peak does not grow with the frame count. Prints a Markdown table; `--json OUT` keeps every number.

    python benchmarks/video_throughput.py                                      # bicubic, 160x120
    python benchmarks/video_throughput.py --model compact-psnr-x4 --frames 10 40 --size 96 72
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from machine import cpu_name  # benchmarks/machine.py, beside this script

from srgan.fileutil import atomic_write


def make_clip(path: Path, frames: int, width: int, height: int) -> None:
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream("aac", rate=16000, layout="mono")
        ramp = np.linspace(0, 255, width, dtype=np.float32)
        for index in range(frames):
            row = (ramp + 7 * index) % 256
            pixels = np.broadcast_to(row[None, :, None], (height, width, 3)).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
            frame.pts = index
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        samples = 16000 * frames // 25
        wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 16000)).astype(np.float32)[None]
        for start in range(0, samples, 1024):
            chunk = av.AudioFrame.from_ndarray(wave[:, start : start + 1024].copy(), format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts, chunk.time_base = 16000, start, Fraction(1, 16000)
            for packet in sound.encode(chunk):
                out.mux(packet)
        for packet in sound.encode(None):
            out.mux(packet)


def run_one(model: str, source: str, target: str, threads: int) -> None:
    """Child process: upscale one clip, print its numbers as JSON."""
    import torch

    from srgan.inference import Upscaler
    from srgan.models import load_model
    from srgan.video import upscale_video

    torch.set_num_threads(threads)
    upscaler = Upscaler(load_model(model), device="cpu")
    started = time.perf_counter()
    result = upscale_video(upscaler, source, target)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": result.frames, "seconds": seconds, "fps": result.frames / seconds, "peak_rss_mb": peak_mb,
                      "output": f"{result.width}x{result.height}", "codec": result.codec}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bicubic")
    parser.add_argument("--frames", type=int, nargs="+", default=[25, 100, 400])
    parser.add_argument("--size", type=int, nargs=2, default=[160, 120], metavar=("W", "H"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_one(args.model, *args.child, args.threads)
        return
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for frames in args.frames:
            source = Path(folder) / f"clip_{frames}.mp4"
            make_clip(source, frames, *args.size)
            command = [sys.executable, __file__, "--model", args.model, "--threads", str(args.threads),
                       "--child", str(source), str(Path(folder) / f"out_{frames}.mp4")]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            row["load_1min"] = os.getloadavg()[0]
            rows.append(row)
    print(f"{args.model}, {args.size[0]}x{args.size[1]} H.264 + AAC in, libx264 CRF 18 out, "
          f"{args.threads} threads, {cpu_name()}\n")
    print("| frames | output | seconds | frames/s | peak RSS (MB) | load (1 min) |")
    print("|---:|---|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['frames']} | {row['output']} | {row['seconds']:.1f} | {row['fps']:.1f} | "
              f"{row['peak_rss_mb']:.0f} | {row['load_1min']:.1f} |")
    if args.json:
        record = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(), "machine": cpu_name(),
                  "model": args.model, "size": args.size, "threads": args.threads, "runs": rows}
        with atomic_write(args.json) as temp:
            temp.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
