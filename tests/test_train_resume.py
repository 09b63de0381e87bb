"""Resuming training: exact continuation, damaged checkpoints, a run killed with SIGKILL."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from srgan.errors import SrganError
from srgan.train import checkpoint as ckpt
from srgan.train.config import load_config
from srgan.train.monitor import read_metrics
from srgan.train.trainer import train

# the tiny recipe, its images and the single-thread setting are shared with the loop tests
from test_train_loop import _one_thread, image_dirs, tiny_recipe, train_losses  # noqa: F401


def test_resumed_gan_run_repeats_the_uninterrupted_losses(tiny_recipe, tmp_path):
    whole = train(load_config(tiny_recipe, ["preset=gan"]), tmp_path / "whole")
    half = tmp_path / "half"
    train(load_config(tiny_recipe, ["preset=gan", "train.iterations=6"]), half)
    train(load_config(tiny_recipe, ["preset=gan"]), half, resume="auto")
    for key in ("l_g_total", "l_d", "discriminator_score"):
        expected, resumed = train_losses(whole, key), train_losses(half, key)
        assert resumed.keys() == expected.keys()
        assert all(abs(resumed[i] - expected[i]) <= 1e-6 for i in expected), key
    # the summary counts what the resumed invocation trained, not the run's total
    summary = re.search(r"trained (\d+) iterations \(iterations 7-(\d+), resumed at 6\)", (half / "train.log").read_text())
    assert summary and int(summary[1]) == int(summary[2]) - 6


def test_resume_names_the_started_config_and_what_differs(tiny_recipe, tmp_path):
    run_dir = train(load_config(tiny_recipe, ["preset=gan", "train.iterations=4"]), tmp_path / "run")
    with pytest.raises(SrganError, match=r"generator\.init.*not found.*resuming: the run was started with "
                                         r"preset='gan'.*generator\.init="):
        train(load_config(tiny_recipe, [f"generator.init={tmp_path / 'absent.safetensors'}"]), run_dir, resume="auto")


def test_fresh_run_refuses_a_folder_with_checkpoints(tiny_recipe, tmp_path):
    config = load_config(tiny_recipe, ["train.iterations=6"])
    train(config, tmp_path / "run")
    with pytest.raises(SrganError, match="already holds checkpoints; pass --resume auto"):
        train(load_config(tiny_recipe), tmp_path / "run")


def test_resume_auto_skips_a_damaged_newest_checkpoint(tiny_recipe, tmp_path, caplog, monkeypatch):
    run_dir = train(load_config(tiny_recipe, ["train.iterations=6"]), tmp_path / "run")
    monkeypatch.setattr(logging.getLogger("srgan.train"), "propagate", True)  # let caplog see the warning
    ckpt.iteration_checkpoint_path(run_dir, 9).write_bytes(b"truncated")
    path, state = ckpt.find_resume_checkpoint(run_dir)
    assert path.name == "iter_00000006.ckpt" and state["iteration"] == 6
    assert "skipping damaged checkpoint" in caplog.text


def test_killed_run_resumes_from_its_last_checkpoint(tiny_recipe, tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "srgan", "train", str(tiny_recipe), "--out", str(run_dir),
               "--set", "train.iterations=100000", "checkpoint.every=5", "log.val_every=100000"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not ckpt.iteration_checkpoints(run_dir) and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode()
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    saved = ckpt.iteration_checkpoints(run_dir)[0][0]
    logged = max(train_losses(run_dir))
    assert saved >= 5 and logged - saved <= 5  # at most one interval lost
    target = saved + 3
    train(load_config(tiny_recipe, [f"train.iterations={target}", "log.val_every=100000"]), run_dir, resume="auto")
    assert f"resumed from {run_dir / 'checkpoints'}" in (run_dir / "train.log").read_text()
    iterations = [r["iteration"] for r in read_metrics(run_dir) if r["kind"] == "train"]
    assert iterations == list(range(1, target + 1))  # the killed run's records past the checkpoint are dropped
    assert ckpt.iteration_checkpoints(run_dir)[0][0] == target


def test_resume_auto_exports_the_generator_a_killed_final_export_never_wrote(tiny_recipe, tmp_path):
    run_dir = train(load_config(tiny_recipe, ["train.iterations=6"]), tmp_path / "run")
    (run_dir / "generator.safetensors").unlink()
    # what SIGKILL during the export leaves: an empty temporary file of a writer that no longer runs
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = run_dir / f".generator.safetensors.{int(finished.stdout)}-abcd1234.partial"
    leftover.write_bytes(b"")
    train(load_config(tiny_recipe, ["train.iterations=6"]), run_dir, resume="auto")
    assert (run_dir / "generator.safetensors").stat().st_size > 0
    assert not leftover.exists()
    assert "done: 6 iterations; generator written to" in (run_dir / "train.log").read_text()


def test_a_checkpoint_with_damaged_bytes_is_named_and_resume_auto_uses_the_previous_one(tiny_recipe, tmp_path):
    from srgan.models import load_model

    run_dir = train(load_config(tiny_recipe, ["train.iterations=6", "checkpoint.every=3"]), tmp_path / "run")
    newest = ckpt.iteration_checkpoint_path(run_dir, 6)
    # zero the bytes of the largest Adam moment inside the file: the zip stays readable, as with a bad sector
    state = ckpt.load_checkpoint(newest)
    moments = [tensor for optimizer in state["optimizers"].values() for per_param in optimizer["state"].values()
               for tensor in per_param.values() if tensor.numel() > 1]
    target = max(moments, key=torch.Tensor.numel).numpy().tobytes()
    data = newest.read_bytes()
    assert data.count(target) == 1
    newest.write_bytes(data.replace(target, bytes(len(target))))

    for read in (ckpt.load_checkpoint, load_model):
        with pytest.raises(SrganError, match=rf"^{re.escape(str(newest))}: checkpoint is corrupt"):
            read(newest)
    with pytest.raises(SrganError, match="checkpoint is corrupt"):
        train(load_config(tiny_recipe, ["train.iterations=9"]), run_dir, resume=str(newest))
    train(load_config(tiny_recipe, ["train.iterations=9", "checkpoint.every=3"]), run_dir, resume="auto")
    log = (run_dir / "train.log").read_text()
    assert f"skipping damaged checkpoint: {newest}: checkpoint is corrupt" in log
    assert f"resumed from {ckpt.iteration_checkpoint_path(run_dir, 3)} at iteration 3" in log
    assert ckpt.load_checkpoint(ckpt.iteration_checkpoint_path(run_dir, 9))["iteration"] == 9
