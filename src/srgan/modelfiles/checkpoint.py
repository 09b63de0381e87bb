"""srgan training checkpoints, read-only: the generator inside and the config that built it.

A checkpoint is one weights-only pickle (written by `srgan.train.checkpoint.save_checkpoint`) whose
generator sits under BasicSR's `params` / `params_ema`, next to the training config. This module is
the one reader of that file: training resumes through `read_state`, and every other user (load_model,
export, interpolate, ONNX) sees the generator through `read` like any other model file, its spec
taken from the stored config, never guessed from the weights.

Every checkpoint records the sha256 of its payload (`CHECKSUM_KEY`, see `payload_digest`): torch's
zip reader does not check its records' CRCs, so bytes damaged on disk would otherwise load as
silently changed weights and optimiser moments. `read_state` refuses a checkpoint whose payload no
longer matches; checkpoints written before the checksum existed are read unchecked.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from srgan.archs.spec import NetworkSpec
from srgan.errors import SrganError
from srgan.modelfiles import ModelFile, recognised, spec_named_by
from srgan.safeload import load_weights_only

CHECKPOINT_FORMAT = "srgan-train-checkpoint"
CHECKSUM_KEY = "payload_sha256"


def payload_digest(state: dict[str, Any]) -> str:
    """sha256 (hex) of everything in a checkpoint's state but the checksum: tensors by dtype, shape and
    bytes, containers item by item in order, other values by their repr."""
    digest = hashlib.sha256()
    _feed(digest, {key: value for key, value in state.items() if key != CHECKSUM_KEY})
    return digest.hexdigest()


def _feed(digest, value: Any) -> None:
    import torch

    if isinstance(value, torch.Tensor):
        tensor = value.detach().to("cpu").contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}:".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}:".encode())
        for key, item in value.items():
            _feed(digest, key)
            _feed(digest, item)
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}:".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"V{value!r};".encode())


def read_state(path: str | os.PathLike) -> dict[str, Any]:
    """The whole training state of a checkpoint; SrganError naming the file if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise SrganError(f"{path}: checkpoint not found; check the path (a run keeps them in RUN_DIR/checkpoints/)")
    state = load_weights_only(path, what="training checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise SrganError(f"{path}: not an srgan training checkpoint; export model files with `srgan export`")
    if CHECKSUM_KEY in state and payload_digest(state) != state[CHECKSUM_KEY]:
        raise SrganError(
            f"{path}: checkpoint is corrupt (its contents no longer match the checksum written with it); "
            "use an earlier checkpoint of the run (--resume auto skips corrupt ones)"
        )
    return state


def generator_spec(config: dict[str, Any], path: str | os.PathLike | None = None) -> NetworkSpec:
    """The generator a training config (as a dict) describes: its arch and kwargs, with the run's scale."""
    kwargs = {**config["generator"]["kwargs"], "scale": int(config["scale"])}
    if path is None:
        return NetworkSpec(config["generator"]["arch"], kwargs)
    return spec_named_by(Path(path), config["generator"]["arch"], kwargs)


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


def generator(state: dict[str, Any], *, ema: bool = True, path: str | os.PathLike | None = None) -> ModelFile:
    """The generator of a training state; `ema` picks the EMA weights when the run kept them."""
    used_ema = bool(ema and state.get("params_ema"))
    params = state["params_ema"] if used_ema else state["params"]
    spec = generator_spec(state["config"], path)
    shown = Path(path) if path is not None else Path("checkpoint")
    spec, params, _ = recognised(params, shown, stated=spec)
    return ModelFile(spec, params, provenance(state, used_ema=used_ema), "training checkpoint")


def read(path: Path, *, ema: bool = True) -> ModelFile:
    return generator(read_state(path), ema=ema, path=path)
