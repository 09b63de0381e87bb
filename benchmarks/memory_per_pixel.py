"""Peak memory of `srgan upscale` per output pixel: the cost of the band-by-band assembly, measured.

For each input side, writes a smooth synthetic PNG, then upscales it with `srgan upscale` in a fresh
subprocess and reads that process's peak RSS (`ru_maxrss`). The marginal cost (the slope of peak
RSS against output pixels between the smallest and the largest image) is the memory the result
itself takes per output pixel; the rest is the interpreter, torch and the tile-sized bands. Prints
a Markdown table; `--json OUT` keeps every number.

    python benchmarks/memory_per_pixel.py                      # bicubic x4, inputs 250..1500 px square
    python benchmarks/memory_per_pixel.py --model compact-psnr-x4 --sides 128 256 512
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
from pathlib import Path

from machine import cpu_name  # benchmarks/machine.py, beside this script

from srgan.fileutil import atomic_write


def make_image(path: Path, side: int) -> None:
    """A smooth RGB gradient (compresses well, so PNG encoding stays cheap beside the upscale)."""
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 255, side, dtype=np.float32)
    pixels = np.stack([ramp[None, :] + 0 * ramp[:, None], ramp[:, None] + 0 * ramp[None, :],
                       (ramp[None, :] + ramp[:, None]) / 2], axis=-1)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def run_one(arguments: list[str]) -> None:
    """Child process: one `srgan upscale`, then its wall time and peak RSS as JSON on stdout."""
    from srgan.cli import main

    started = time.perf_counter()
    code = main(arguments)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"code": code, "seconds": seconds, "peak_bytes": peak_kib * 1024}))


def measure(model: str, scale: int, side: int, folder: Path) -> dict:
    source, target = folder / f"in_{side}.png", folder / f"out_{side}.png"
    make_image(source, side)
    arguments = ["upscale", str(source), "-o", str(target), "--model", model, "--scale", str(scale), "--overwrite"]
    child = subprocess.run([sys.executable, __file__, "--child", json.dumps(arguments)],
                           capture_output=True, text=True, check=True)
    numbers = json.loads(child.stdout.strip().splitlines()[-1])
    if numbers["code"] != 0:
        raise SystemExit(f"srgan upscale failed on {side}x{side}:\n{child.stderr}")
    target.unlink()
    return {"side": side, "output_pixels": (side * scale) ** 2, **numbers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bicubic")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--sides", type=int, nargs="+", default=[250, 500, 1000, 1500])
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_one(json.loads(args.child))
        return

    with tempfile.TemporaryDirectory() as folder:
        rows = [measure(args.model, args.scale, side, Path(folder)) for side in sorted(args.sides)]
    first, last = rows[0], rows[-1]
    slope = (last["peak_bytes"] - first["peak_bytes"]) / (last["output_pixels"] - first["output_pixels"])
    load = os.getloadavg()[0]
    print(f"{args.model} x{args.scale}, {cpu_name()}, {os.cpu_count()} logical CPUs, "
          f"{datetime.date.today()}, load average (1 min) at the end: {load:.1f}\n")
    print("| input | output | output MP | seconds | peak RSS (MB) | peak RSS per output pixel (B) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        out_side = row["side"] * args.scale
        print(f"| {row['side']}x{row['side']} | {out_side}x{out_side} | {row['output_pixels'] / 1e6:.1f} | "
              f"{row['seconds']:.1f} | {row['peak_bytes'] / 1e6:.0f} | {row['peak_bytes'] / row['output_pixels']:.1f} |")
    print(f"\nmarginal peak RSS per output pixel ({first['side']} -> {last['side']} px inputs): {slope:.2f} bytes")
    if args.json:
        record = {"model": args.model, "scale": args.scale, "cpu": cpu_name(), "load_1min": load,
                  "rows": rows, "marginal_bytes_per_output_pixel": slope}
        with atomic_write(args.json) as temp_path:
            Path(temp_path).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
