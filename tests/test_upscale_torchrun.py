"""`torchrun --nproc_per_node=2 -m srgan upscale ...`: two CPU processes (gloo) share the files.

Runs torchrun itself (as `python -m torch.distributed.run`), so the test sees what a user sees: every
output written once, one summary counting both processes' work, each process's own share in its log.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import srgan

IMAGES = 5
TIMEOUT_S = 300


def torchrun_upscale(tmp_path: Path, logs: Path, *arguments: str) -> subprocess.CompletedProcess:
    source_root = str(Path(srgan.__file__).resolve().parents[1])
    path = os.pathsep.join([source_root, os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "--redirects", "3", "--log-dir", str(logs),  # each process's stdout/stderr in logs/.../<rank>/
        "-m", "srgan", "upscale", *arguments, "--model", "bicubic", "--scale", "2", "--progress", "log",
    ]  # fmt: skip
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


def rank_log(logs: Path, rank: int, stream: str) -> str:
    (path,) = logs.glob(f"*/attempt_0/{rank}/{stream}.log")
    return path.read_text()


def test_two_processes_share_images_and_videos_and_report_one_total(tmp_path):
    av = pytest.importorskip("av")
    from test_video import make_video

    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(IMAGES):
        Image.new("RGB", (8 + index, 6), (40 * index, 90, 200)).save(inputs / f"photo{index}.png")
    videos = [make_video(tmp_path / f"clip{index}.mp4", frames=4, audio=False) for index in range(2)]
    out = tmp_path / "out"

    done = torchrun_upscale(tmp_path, tmp_path / "logs", str(inputs), *map(str, videos), "-o", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    summaries = [rank_log(tmp_path / "logs", rank, "stdout") for rank in (0, 1)]
    # one summary, from rank 0, counting the work of both (a file done twice would count twice)
    total = f"upscaled {IMAGES} image(s) and 2 video(s) with bicubic x2 (torch on cpu) on 2 processes; 0 skipped, 0 failed\n"
    assert summaries == [total, ""]
    expected = {f"photo{index}_bicubic_x2.png" for index in range(IMAGES)}
    expected |= {"clip0_bicubic_x2.mp4", "clip1_bicubic_x2.mp4"}
    assert {path.name for path in out.iterdir()} == expected
    assert Image.open(out / "photo4_bicubic_x2.png").size == (24, 12)
    with av.open(str(out / "clip1_bicubic_x2.mp4")) as clip:
        assert sum(1 for _ in clip.decode(video=0)) == 4
    # each process did its own share: every other image from its rank, one video each
    errors = [rank_log(tmp_path / "logs", rank, "stderr") for rank in (0, 1)]
    assert "srgan rank 0/2: 3/3 images" in errors[0] and "clip0.mp4 ->" in errors[0] and "clip1" not in errors[0]
    assert "srgan rank 1/2: 2/2 images" in errors[1] and "clip1.mp4 ->" in errors[1] and "clip0" not in errors[1]
    # every progress line says which process wrote it (torchrun without --redirects interleaves them)
    assert "srgan rank 1/2: clip1.mp4 4/4 frames" in errors[1]
    assert not [line for line in errors[1].splitlines() if line.startswith("srgan: ")]

    # run again: every output exists; both processes fail, and the total names all seven
    again = torchrun_upscale(tmp_path, tmp_path / "logs-again", str(inputs), *map(str, videos), "-o", str(out))
    assert again.returncode != 0
    assert "upscaled 0 image(s) with bicubic x2 (torch on cpu) on 2 processes; 0 skipped, 7 failed" in rank_log(
        tmp_path / "logs-again", 0, "stdout"
    )
