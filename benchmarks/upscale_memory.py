"""Peak memory (RSS) and wall time of `srgan upscale` on one large photo, each case in a fresh process.

The photo is the shipped sample (`coffee.png`) resized to `--size` (default 3000x2000, a typical camera
photo) and saved as `--format` (default jpg); each case runs `python -m srgan upscale PHOTO -o OUT
--progress log ...` as its own process, so its peak resident set (the kernel's `ru_maxrss` of that
process, from `wait4`) includes everything: Python, torch, the model, the tiles in flight, the decoded
input, the assembled result and the encoder. The JSON also keeps the resident set every 5 s
(`rss_trace_mib`), which shows whether the peak falls among the tiles or at the encoder. The machine
and its load are recorded with the figures.

    python benchmarks/upscale_memory.py                                    # default model, x4plus --tile 256
    python benchmarks/upscale_memory.py --cases default default-torch --format png
    python benchmarks/upscale_memory.py --cases x4plus-tile256-torch --size 640x480 --timeout 1800

`--timeout S` stops a case after S seconds; its row then says so and gives the peak reached until then
(a lower bound, not the run's peak). `--limit-mb` (default 1536, i.e. 1.5 GiB) marks each row within or over.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_name  # benchmarks/machine.py, beside this script

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "srgan" / "assets" / "samples" / "coffee.png"
X4PLUS_TILE_256 = ["--model", "realesrgan-x4plus", "--tile", "256"]
# case name -> extra `srgan upscale` arguments
CASES = {
    "default": [],
    "default-torch": ["--runtime", "torch"],
    "x4plus-tile256": X4PLUS_TILE_256,
    "x4plus-tile256-torch": [*X4PLUS_TILE_256, "--runtime", "torch"],
    "x4plus-tile256-openvino": [*X4PLUS_TILE_256, "--runtime", "openvino"],
    "bicubic": ["--model", "bicubic"],
}
DEFAULT_CASES = ("default", "x4plus-tile256")
TRACE_SECONDS = 5.0


def make_photo(size: tuple[int, int], image_format: str, folder: Path) -> Path:
    from PIL import Image

    path = folder / f"photo.{image_format}"
    with Image.open(SAMPLE) as sample:
        sample.convert("RGB").resize(size, Image.Resampling.LANCZOS).save(path, quality=92)
    return path


def run_case(name: str, photo: Path, folder: Path, timeout: float | None) -> dict:
    """Run one case in a new process; its peak RSS (MiB), wall time and outcome."""
    output = folder / f"out-{name}{photo.suffix}"
    command = [sys.executable, "-m", "srgan", "upscale", str(photo), "-o", str(output), "--progress", "log"]
    command += CASES[name]
    log_path = folder / f"{name}.log"
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    timed_out = False
    deadline = None if timeout is None else start + timeout
    trace = []  # (seconds, resident MiB) every TRACE_SECONDS: where in the run the peak falls
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        elapsed = time.perf_counter() - start
        if not trace or elapsed - trace[-1][0] >= TRACE_SECONDS:
            resident = resident_mib(process.pid)
            if resident is not None:
                trace.append((round(elapsed, 1), resident))
        if deadline is not None and time.perf_counter() > deadline:
            process.send_signal(signal.SIGKILL)
            timed_out = True
            _, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    lines = log_path.read_text(errors="replace").splitlines()
    return {
        "case": name,
        "arguments": " ".join(CASES[name]),
        "peak_rss_mib": usage.ru_maxrss / 1024,  # Linux reports KiB
        "seconds": seconds,
        "exit_status": process.returncode,
        "timed_out": timed_out,
        "last_lines": lines[-3:],
        "load_average": [load_before, os.getloadavg()[0]],
        "rss_trace_mib": trace,
    }


def resident_mib(pid: int) -> float | None:
    """The resident set of a running process in MiB (Linux /proc), None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def markdown_table(rows: list[dict], limit_mib: float) -> str:
    lines = ["| case | `srgan upscale` arguments | peak RSS (MiB) | time (s) | outcome |", "|---|---|---:|---:|---|"]
    for row in rows:
        if row["timed_out"]:
            outcome = f"stopped after {row['seconds']:.0f} s (peak so far)"
        elif row["exit_status"]:
            outcome = f"exit {row['exit_status']}: {row['last_lines'][-1] if row['last_lines'] else ''}"
        else:
            outcome = "within" if row["peak_rss_mib"] <= limit_mib else "OVER"
            outcome += f" {limit_mib:.0f} MiB"
        lines.append(
            f"| {row['case']} | `{row['arguments'] or '(defaults)'}` | {row['peak_rss_mib']:.0f} | "
            f"{row['seconds']:.1f} | {outcome} |"
        )
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(DEFAULT_CASES))
    parser.add_argument("--size", default="3000x2000", help="WIDTHxHEIGHT of the photo (default: %(default)s)")
    parser.add_argument("--format", default="jpg", choices=("jpg", "png"), help="photo and output format")
    parser.add_argument("--timeout", type=float, help="seconds after which a case is stopped")
    parser.add_argument("--limit-mb", type=float, default=1536.0, help="peak RSS budget in MiB (default: 1536)")
    parser.add_argument("--json", type=Path, help="also write the rows and the machine to this file")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    options = parse_args(argv)
    width, height = (int(side) for side in options.size.lower().split("x"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="srgan-memory-") as work:
        folder = Path(work)
        photo = make_photo((width, height), options.format, folder)
        for name in options.cases:
            row = run_case(name, photo, folder, options.timeout)
            rows.append(row)
            print(f"{name}: {row['peak_rss_mib']:.0f} MiB, {row['seconds']:.1f} s, exit {row['exit_status']}", flush=True)
    print(f"\n{width}x{height} {options.format} photo -> x4 {options.format}, one fresh process per case")
    print(markdown_table(rows, options.limit_mb))
    loads = [load for row in rows for load in row["load_average"]]
    print(f"CPU: {cpu_name()}, {os.cpu_count()} CPUs; 1-minute load average {min(loads):.1f}-{max(loads):.1f}")
    if options.json:
        report = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": {"cpu": cpu_name(), "cpus": os.cpu_count(), "python": platform.python_version()},
            "photo": {"width": width, "height": height, "format": options.format},
            "limit_mib": options.limit_mb,
            "rows": rows,
        }
        options.json.write_text(json.dumps(report, indent=1))
    return 0 if all(row["exit_status"] == 0 and row["peak_rss_mib"] <= options.limit_mb for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
