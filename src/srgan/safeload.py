"""The one `torch.load` of the package: weights only, with errors a user can act on.

Every pickle srgan opens (`.pth` model files, training checkpoints, VGG19 weights) comes through
`load_weights_only`. torch refuses any pickled class or function under `weights_only=True`, since
such a file could run code when loaded; srgan reports that as a refusal naming the referenced code,
and never passes on torch's advice to retry with `weights_only=False`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from srgan.errors import SrganError

# torch words it "Unsupported global: GLOBAL x.y" or "unsupported GLOBAL posix.system whose module ..."
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def load_weights_only(path: str | os.PathLike, *, shown_as: str | os.PathLike | None = None, what: str = "PyTorch file") -> Any:
    """`torch.load(path, weights_only=True)` on the CPU; SrganError naming `shown_as` (default: `path`).

    `what` names the expected content in the error ("training checkpoint", "VGG19 weights file").
    """
    import pickle

    import torch

    label = shown_as or path
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        raise SrganError(f"{label}: file is empty (0 bytes), not a {what}; re-download or re-create it")
    try:
        return torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SrganError(f"{label}: file not found; check the path") from None
    except pickle.UnpicklingError as error:
        unsafe = _GLOBAL.search(str(error))
        if unsafe is not None:
            raise SrganError(
                f"{label}: refused: the file's pickle references code ({unsafe.group(1)}); srgan loads weights "
                "only and never runs code from a file; ask for a .safetensors file or a weights-only .pth"
            ) from None
        raise SrganError(f"{label}: not a readable {what} (damaged pickle data); re-download or re-create it") from None
    except Exception as error:  # a damaged zip or tensor record fails in many ways inside torch
        detail = (str(error).strip().splitlines() or ["unreadable"])[0]
        if "weights_only" in detail or not detail:  # torch's retry advice is never the right fix here
            detail = type(error).__name__
        raise SrganError(f"{label}: not a readable {what} ({detail}); re-download or re-create it") from None
