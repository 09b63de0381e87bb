"""Where and how training runs: process rank, device, precision, seeds and RNG state.

Everything that writes files or prints asks `is_main_process()`, so under torchrun (see
`distributed`) only rank 0 does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from srgan.errors import SrganError


def is_main_process() -> bool:
    """True on the process that logs and writes checkpoints (rank 0, or the only process)."""
    distributed = torch.distributed
    if distributed.is_available() and distributed.is_initialized():
        return distributed.get_rank() == 0
    return True


def select_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device must exist on this machine."""
    from srgan.inference import select_device as select_available_device

    try:
        return select_available_device(name, cpu_hint="train.device: cpu")
    except SrganError as error:
        raise SrganError(f"config key 'train.device': {error}") from None


@dataclass(frozen=True)
class Precision:
    """Autocast dtype (None = plain fp32) and whether a GradScaler guards fp16 gradients."""

    autocast_dtype: torch.dtype | None
    use_grad_scaler: bool
    description: str


def select_precision(requested: str, device: torch.device) -> Precision:
    """Mixed precision on CUDA only; `auto` means bf16 where the GPU supports it, else fp32."""
    if device.type != "cuda":
        if requested in ("bf16", "fp16"):
            return Precision(None, False, f"fp32 ({requested} mixed precision is only used on CUDA)")
        return Precision(None, False, "fp32")
    if requested == "auto":
        requested = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if requested == "bf16":
        return Precision(torch.bfloat16, False, "bf16 autocast")
    if requested == "fp16":
        return Precision(torch.float16, True, "fp16 autocast + GradScaler")
    return Precision(None, False, "fp32")


def seed_everything(seed: int, *, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


def capture_rng_state() -> dict:
    """Every global RNG a training step may draw from, in a form `torch.load(weights_only=True)` accepts."""
    bit_generator, key, position, has_gauss, cached_gaussian = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": bit_generator,
            "key": torch.from_numpy(key.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["bit_generator"],
            numpy_state["key"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
