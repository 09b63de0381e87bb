"""Training checkpoints (the whole training state, atomically) and generator export / interpolation.

A checkpoint is one `torch.save` file, loadable with `weights_only=True`. The generator sits under
BasicSR's key names (`params`, `params_ema`) so other tools that read BasicSR checkpoints find it;
the rest is what an exact resume needs: discriminator, optimisers, schedulers, grad scaler,
iteration, RNG states (python, numpy, torch, cuda, data sampler) and the config that produced it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import torch

from srgan.errors import SrganError
from srgan.fileutil import atomic_write
from srgan.safeload import load_weights_only

CHECKPOINT_FORMAT = "srgan-train-checkpoint"
CHECKPOINT_SUFFIX = ".ckpt"
BEST_CHECKPOINT_NAME = "best.ckpt"
_ITERATION_NAME = re.compile(r"^iter_(\d+)\.ckpt$")

logger = logging.getLogger("srgan.train")


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def iteration_checkpoint_path(run_dir: Path, iteration: int) -> Path:
    return checkpoint_dir(run_dir) / f"iter_{iteration:08d}{CHECKPOINT_SUFFIX}"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write `state` atomically; refuse non-finite weights so a diverged run never overwrites good ones."""
    for key in ("params", "params_ema", "params_d"):
        for name, tensor in (state.get(key) or {}).items():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise SrganError(f"not writing {path}: {key}.{name} contains NaN or inf; the run has diverged")
    with atomic_write(path) as temp_path:
        torch.save({"format": CHECKPOINT_FORMAT, **state}, temp_path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; SrganError naming the file if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise SrganError(f"{path}: checkpoint not found; check the path (a run keeps them in RUN_DIR/checkpoints/)")
    state = load_weights_only(path, what="training checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise SrganError(f"{path}: not an srgan training checkpoint; export model files with `srgan export`")
    return state


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
    """The newest checkpoint in `run_dir` that loads; damaged newer ones are skipped with a warning."""
    for _, path in iteration_checkpoints(run_dir):
        try:
            return path, load_checkpoint(path)
        except SrganError as error:
            logger.warning("skipping damaged checkpoint: %s", error)
    return None


def prune_checkpoints(run_dir: Path, keep_last: int) -> None:
    for _, path in iteration_checkpoints(run_dir)[keep_last:]:
        path.unlink(missing_ok=True)


# --- generators out of checkpoints and model files -------------------------------------------------


def generator_structure(config: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
    """(arch, builder kwargs including scale, scale) of the generator a training config describes."""
    scale = int(config["scale"])
    return config["generator"]["arch"], {**config["generator"]["kwargs"], "scale": scale}, scale


def read_generator(path: str | os.PathLike, *, ema: bool = True) -> tuple[dict[str, torch.Tensor], str, dict, int, dict]:
    """(state dict, arch, kwargs, scale, metadata) from a training checkpoint or any model file.

    For checkpoints `ema` picks the EMA weights when the run kept them.
    """
    from srgan.weights import model_structure, read_model_file

    path = Path(path)
    if path.suffix == CHECKPOINT_SUFFIX:
        return _checkpoint_generator(load_checkpoint(path), ema=ema)
    state_dict, metadata = read_model_file(path)
    arch, kwargs, scale = model_structure(metadata, path=path)
    return state_dict, arch, kwargs, scale, metadata


def _checkpoint_generator(state: dict[str, Any], *, ema: bool) -> tuple[dict[str, torch.Tensor], str, dict, int, dict]:
    params = state["params_ema"] if ema and state.get("params_ema") else state["params"]
    arch, kwargs, scale = generator_structure(state["config"])
    return params, arch, kwargs, scale, provenance(state, used_ema=params is state.get("params_ema"))


def provenance(state: dict[str, Any], *, used_ema: bool) -> dict[str, str]:
    config = state["config"]
    name = config["name"] + (f" (preset {config['preset']})" if config.get("preset") else "")
    return {
        "source": "srgan train",
        "config": name,
        "iterations": str(state["iteration"]),
        "trained_on": json.dumps(config["data"]["train_dirs"]),
        "weights": "ema" if used_ema else "raw",
    }


def export_generator(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    *,
    ema: bool = True,
    fp16: bool = False,
    description: str | None = None,
    license: str | None = None,
) -> Path:
    """Write the generator of a training checkpoint as an srgan model file (safetensors + metadata).

    `description` and `license` go into the metadata, where `srgan models` shows them.
    """
    from srgan.weights import save_model

    state = load_checkpoint(checkpoint)
    if ema and not state.get("params_ema"):
        logger.warning("%s has no EMA weights (train.ema_decay was 0); exporting the raw generator", checkpoint)
    params, arch, kwargs, scale, metadata = _checkpoint_generator(state, ema=ema)
    metadata.update({key: value for key, value in (("description", description), ("license", license)) if value})
    save_model(out, params, arch=arch, kwargs=kwargs, scale=scale, metadata=metadata,
               dtype=torch.float16 if fp16 else None)
    return Path(out)


def interpolate_generators(path_a: str | os.PathLike, path_b: str | os.PathLike, alpha: float, out: str | os.PathLike) -> Path:
    """ESRGAN network interpolation: θ = (1 − α)·θ_A + α·θ_B, for two generators of the same arch."""
    from srgan.weights import save_model

    if not 0.0 <= alpha <= 1.0:
        raise SrganError(f"--alpha {alpha}: must be between 0 (all A) and 1 (all B)")
    state_a, arch_a, kwargs_a, scale, _ = read_generator(path_a)
    state_b, arch_b, kwargs_b, _, metadata_b = read_generator(path_b)
    if (arch_a, kwargs_a) != (arch_b, kwargs_b):
        raise SrganError(
            f"{path_a} ({arch_a} {json.dumps(kwargs_a, sort_keys=True)}) and {path_b} "
            f"({arch_b} {json.dumps(kwargs_b, sort_keys=True)}) are different networks; "
            "interpolate two trainings of the same architecture"
        )
    if state_a.keys() != state_b.keys() or any(state_a[k].shape != state_b[k].shape for k in state_a):
        raise SrganError(f"{path_a} and {path_b} hold different weight layouts; re-export both with this srgan")
    blended = {}
    for key, tensor_a in state_a.items():
        tensor_b = state_b[key]
        if tensor_a.is_floating_point():
            blended[key] = (1.0 - alpha) * tensor_a.float() + alpha * tensor_b.float()
        else:  # counters such as BatchNorm's num_batches_tracked are not weights
            blended[key] = tensor_b
    # B's structure keys are rewritten by save_model, and its description names B, not the blend
    dropped = ("format", "arch", "scale", "kwargs", "description")
    metadata = {key: value for key, value in metadata_b.items() if key not in dropped}
    metadata["interpolated"] = json.dumps({"a": str(path_a), "b": str(path_b), "alpha": alpha})
    save_model(out, blended, arch=arch_a, kwargs=kwargs_a, scale=scale, metadata=metadata)
    return Path(out)
