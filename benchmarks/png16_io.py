"""Time 16-bit colour PNG reading and writing: srgan.imageio and the libraries it was chosen among.

    python benchmarks/png16_io.py                              # 2000x1500 RGB, srgan.imageio only
    pip install pypng imagecodecs opencv-python-headless       # optional: the rejected candidates
    python benchmarks/png16_io.py --repeats 5 --json png16.json

The image is a smooth 16-bit gradient with noise in the low 6 bits, like a scan or a raw export.
`srgan.imageio` is read_image / write_image: pyvips for the pixels, and read_image also has Pillow
check the file and read its EXIF (an 8-bit decode). Each library decodes the same adaptively filtered
file (libvips `filter="all"`, the filters other encoders use) and encodes the array at zlib level 6,
and at level 1. Prints a Markdown table of best wall times and file sizes; a library that is not
installed is skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from srgan.fileutil import atomic_write_bytes
from srgan.imageio import read_image, write_image


def sample_image(height: int, width: int) -> np.ndarray:
    rows, cols = np.mgrid[0:height, 0:width]
    red = cols / width
    green = rows / height
    blue = 0.5 + 0.5 * np.sin(cols / 97.0) * np.cos(rows / 61.0)
    smooth = np.stack([red, green, blue], axis=2) * (65535 - 63)
    noise = np.random.default_rng(0).integers(0, 64, smooth.shape)
    return (np.rint(smooth) + noise).astype(np.uint16)


def srgan_codec(pixels: np.ndarray) -> tuple[Callable, Callable]:
    def encode(path: Path, level: int) -> None:
        write_image(path, pixels, compress_level=level)

    def decode(path: Path) -> np.ndarray:
        return read_image(path, max_pixels=None).array

    return encode, decode


def pyvips_codec(pixels: np.ndarray) -> tuple[Callable, Callable]:
    import pyvips

    def encode(path: Path, level: int) -> None:
        image = pyvips.Image.new_from_array(pixels).copy(interpretation="rgb16")
        path.write_bytes(image.pngsave_buffer(compression=level))

    def decode(path: Path) -> np.ndarray:
        return pyvips.Image.pngload_buffer(path.read_bytes()).numpy()

    return encode, decode


def pypng_codec(pixels: np.ndarray) -> tuple[Callable, Callable]:
    import png

    height, width, channels = pixels.shape

    def encode(path: Path, level: int) -> None:
        with open(path, "wb") as handle:
            writer = png.Writer(width, height, greyscale=False, bitdepth=16, compression=level)
            writer.write(handle, pixels.reshape(height, width * channels))

    def decode(path: Path) -> np.ndarray:
        decoded_width, decoded_height, rows, _ = png.Reader(filename=str(path)).asDirect()
        return np.vstack([np.asarray(row, np.uint16) for row in rows]).reshape(decoded_height, decoded_width, -1)

    return encode, decode


def imagecodecs_codec(pixels: np.ndarray) -> tuple[Callable, Callable]:
    import imagecodecs

    def encode(path: Path, level: int) -> None:
        path.write_bytes(imagecodecs.png_encode(pixels, level=level))

    def decode(path: Path) -> np.ndarray:
        return imagecodecs.png_decode(path.read_bytes())

    return encode, decode


def opencv_codec(pixels: np.ndarray) -> tuple[Callable, Callable]:
    import cv2

    def encode(path: Path, level: int) -> None:
        _, data = cv2.imencode(".png", pixels[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, level])
        path.write_bytes(data.tobytes())

    def decode(path: Path) -> np.ndarray:
        return cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1]

    return encode, decode


# name -> (module that must be importable, codec factory)
CODECS = {
    "srgan.imageio": ("pyvips", srgan_codec),
    "pyvips": ("pyvips", pyvips_codec),
    "pypng": ("png", pypng_codec),
    "imagecodecs": ("imagecodecs", imagecodecs_codec),
    "opencv-python-headless": ("cv2", opencv_codec),
}


def best_time(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(pixels: np.ndarray, names: list[str], repeats: int, work_dir: Path) -> list[dict]:
    import pyvips

    reference = work_dir / "adaptive.png"
    rgb16 = pyvips.Image.new_from_array(pixels).copy(interpretation="rgb16")
    reference.write_bytes(rgb16.pngsave_buffer(filter="all"))
    rows = []
    for name in names:
        module, factory = CODECS[name]
        if importlib.util.find_spec(module) is None:
            print(f"skipped {name}: {module} is not installed")
            continue
        encode, decode = factory(pixels)
        encode(work_dir / "warm-up.png", 6)  # untimed: first calls import and initialise the library
        if not np.array_equal(decode(reference), pixels):
            raise SystemExit(f"{name} decoded the reference file wrongly")
        row = {"library": name, "decode_s": best_time(partial(decode, reference), repeats)}
        for level in (6, 1):
            target = work_dir / f"level{level}.png"
            row[f"encode_level{level}_s"] = best_time(partial(encode, target, level), repeats)
            row[f"level{level}_mb"] = target.stat().st_size / 1e6
        rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| library | decode (s) | encode level 6 (s) | size (MB) | encode level 1 (s) | size (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['library']} | {row['decode_s']:.2f} | {row['encode_level6_s']:.2f} | {row['level6_mb']:.1f} "
            f"| {row['encode_level1_s']:.2f} | {row['level1_mb']:.1f} |"
        )
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=1500)
    parser.add_argument("--width", type=int, default=2000)
    parser.add_argument("--libraries", nargs="+", choices=list(CODECS), default=list(CODECS))
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per step; the best is kept")
    parser.add_argument("--json", type=Path, help="also write the results and the machine to this file")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    options = parse_args(argv)
    pixels = sample_image(options.height, options.width)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as work_dir:
        rows = measure(pixels, options.libraries, options.repeats, Path(work_dir))
    load_after = os.getloadavg()[0]
    print(f"{options.width}x{options.height} 16-bit RGB, best of {options.repeats}")
    print(markdown_table(rows))
    print(f"1-minute load average: {load_before:.1f} before, {load_after:.1f} after on {os.cpu_count()} CPUs")
    if options.json:
        machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
        report = {"machine": machine, "load_average": [load_before, load_after], "results": rows}
        atomic_write_bytes(options.json, json.dumps(report, indent=1).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
