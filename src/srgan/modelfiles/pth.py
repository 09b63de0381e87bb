"""`.pth` model files, as BasicSR, Real-ESRGAN, ESRGAN and spandrel exchange them.

Reading: the one weights-only `torch.load` (`srgan.safeload`), then the generator's state dict is
picked (`params_ema`, else `params`, else `state_dict`, else the file itself), `module.` prefixes
(DataParallel) are stripped and the architecture modules recognise the network, in BasicSR's names
or a foreign layout they know (the original ESRGAN `model.N` one).

Writing: `{"params_ema": state_dict, "srgan": {...}}`, loadable with `torch.load(weights_only=True)`,
in BasicSR's key names wherever BasicSR / Real-ESRGAN define the network (every srgan architecture
but srresnet and wdrn, which keep srgan's names); the `srgan` entry (plain strings) keeps the spec
and provenance so srgan reads back exactly what it wrote, and other tools ignore it. When spandrel
(chaiNNer, ComfyUI) will not open the file (no such architecture there, or RRDBNet growth channels
other than 32, a non-PReLU SRVGGNetCompact), a warning says so and names what loads it instead.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import Tensor

from srgan.errors import SrganError
from srgan.fileutil import atomic_write
from srgan.modelfiles import ModelFile, recognised, spec_named_by
from srgan.safeload import load_weights_only

SRGAN_KEY = "srgan"
_GENERATOR_KEYS = ("params_ema", "params", "state_dict")


def read_state_dict(path: Path, *, shown_as: str | None = None) -> dict[str, Tensor]:
    """The generator's state dict in a `.pth`: EMA weights first, no `module.` prefix."""
    return _contents(path, shown_as or path)[0]


def _contents(path: Path, label) -> tuple[dict[str, Tensor], dict[str, str] | None]:
    """(generator state dict, srgan's own entry if the file has one) from one weights-only load."""
    checkpoint = load_weights_only(path, shown_as=label)
    entry = checkpoint.get(SRGAN_KEY) if isinstance(checkpoint, dict) else None
    if not (isinstance(entry, dict) and all(isinstance(value, str) for value in entry.values())):
        entry = None
    if isinstance(checkpoint, dict):
        for key in _GENERATOR_KEYS:
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
    if (
        not isinstance(checkpoint, dict)
        or not checkpoint
        or not all(isinstance(value, Tensor) for value in checkpoint.values())
    ):
        raise SrganError(f"{label}: no state dict of tensors found in the checkpoint; expected a generator's weights")
    return {key.removeprefix("module."): value for key, value in checkpoint.items()}, entry


def read(path: Path) -> ModelFile:
    from srgan.archs.registry import architecture

    state_dict, entry = _contents(path, path)
    if entry is None or "arch" not in entry or "kwargs" not in entry:
        spec, state_dict, layout = recognised(state_dict, path)
        return ModelFile(spec, state_dict, {"source": path.name}, layout)
    try:
        kwargs = json.loads(entry["kwargs"])
    except ValueError as error:
        raise SrganError(f"{path}: damaged srgan metadata ({error}); re-export the model") from None
    spec, state_dict, _ = recognised(state_dict, path, stated=spec_named_by(path, entry["arch"], kwargs))
    provenance = {key: value for key, value in entry.items() if key not in ("arch", "kwargs")}
    return ModelFile(spec, state_dict, provenance, "BasicSR" if architecture(spec.arch).basicsr_keys else "srgan")


def write(path: Path, model_file: ModelFile) -> None:
    from srgan.archs.registry import pth_note

    spec = model_file.spec
    if (note := pth_note(spec)) is not None:
        logging.getLogger("srgan").warning("%s: %s", path, note)
    entry = {key: str(value) for key, value in model_file.provenance.items()}
    entry.update(arch=spec.arch, kwargs=spec.kwargs_json())
    with atomic_write(path) as temp_path:
        torch.save({"params_ema": model_file.state_dict, SRGAN_KEY: entry}, temp_path)
