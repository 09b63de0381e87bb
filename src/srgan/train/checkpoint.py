"""Training checkpoints: the whole training state, written atomically; read by `srgan.modelfiles.checkpoint`.

A checkpoint is one `torch.save` file, loadable with `weights_only=True`. The generator sits under
BasicSR's key names (`params`, `params_ema`) so other tools that read BasicSR checkpoints find it;
the rest is what an exact resume needs: discriminator, optimisers, schedulers, grad scaler,
iteration, RNG states (python, numpy, torch, cuda, data sampler) and the config that produced it.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import re
from pathlib import Path
from typing import Any

import torch

from srgan.errors import SrganError
from srgan.fileutil import atomic_write
from srgan.modelfiles.checkpoint import CHECKPOINT_FORMAT, CHECKSUM_KEY, payload_digest, read_state

CHECKPOINT_SUFFIX = ".ckpt"
BEST_CHECKPOINT_NAME = "best.ckpt"
_ITERATION_NAME = re.compile(r"^iter_(\d+)\.ckpt$")

logger = logging.getLogger("srgan.train")


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def iteration_checkpoint_path(run_dir: Path, iteration: int) -> Path:
    return checkpoint_dir(run_dir) / f"iter_{iteration:08d}{CHECKPOINT_SUFFIX}"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write `state` atomically with the checksum of its payload; refuse non-finite weights so a diverged
    run never overwrites good ones."""
    for key in ("params", "params_ema", "params_d"):
        for name, tensor in (state.get(key) or {}).items():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise SrganError(f"not writing {path}: {key}.{name} contains NaN or inf; the run has diverged")
    payload = {"format": CHECKPOINT_FORMAT, **state}
    payload[CHECKSUM_KEY] = payload_digest(payload)
    try:
        with atomic_write(path) as temp_path:
            torch.save(payload, temp_path)
    except RuntimeError as error:
        # torch's zip writer reports a full disk as "[enforce fail ...] unexpected pos"
        if shutil.disk_usage(path.parent).free < (64 << 20):
            raise OSError(errno.ENOSPC, "no space left on device", str(path)) from None
        raise SrganError(f"{path}: writing the checkpoint failed ({str(error).splitlines()[0]}); check the disk") from None


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (through the one reader, `srgan.modelfiles.checkpoint`)."""
    return read_state(path)


def iteration_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(iteration, path) of the run's periodic checkpoints, newest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _ITERATION_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def find_resume_checkpoint(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint in `run_dir` that loads and matches its checksum; damaged or corrupt newer ones
    are skipped with a warning naming them."""
    for _, path in iteration_checkpoints(run_dir):
        try:
            return path, load_checkpoint(path)
        except SrganError as error:
            logger.warning("skipping damaged checkpoint: %s", error)
    return None


def prune_checkpoints(run_dir: Path, keep_last: int) -> None:
    for _, path in iteration_checkpoints(run_dir)[keep_last:]:
        path.unlink(missing_ok=True)
