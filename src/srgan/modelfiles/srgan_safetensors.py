"""srgan's own model files: safetensors with a header that says how to rebuild the network.

Header keys: `format=srgan`, `arch` (a key of `srgan.archs.registry.ARCHS`), `kwargs` (the builder's
keyword arguments as JSON, scale included), plus free-form provenance strings (`source`,
`license`, `description`, `trained_on`, `iterations`, ...). Files written before the scale moved
into the kwargs only carry a separate `scale` key too; it is checked against the kwargs on read.
Weights other projects publish as safetensors carry no header and are recognised from their keys.
"""

from __future__ import annotations

import json
from pathlib import Path

from srgan.archs.spec import NetworkSpec
from srgan.errors import SrganError
from srgan.fileutil import atomic_write
from srgan.modelfiles import ModelFile, recognised, spec_named_by

FORMAT_TAG = "srgan"
STRUCTURE_KEYS = ("format", "arch", "kwargs", "scale")


def read_header(path: str | Path) -> dict[str, str]:
    """The metadata header of a safetensors file, without loading its tensors."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError) as error:
        raise SrganError(f"{path}: not a readable safetensors file ({error}); re-download or re-export it") from None


def header_spec(header: dict[str, str], path: str | Path) -> NetworkSpec | None:
    """The spec an srgan header records (None when there is none); a stale `scale` key must agree."""
    if "arch" not in header or "kwargs" not in header:
        return None
    try:
        kwargs = json.loads(header["kwargs"])
        if not isinstance(kwargs, dict):
            raise ValueError("kwargs is not a JSON object")
    except ValueError as error:
        raise SrganError(f"{path}: damaged metadata ({error}); re-export the model") from None
    spec = spec_named_by(Path(path), header["arch"], kwargs)
    if "scale" in header and header["scale"] != str(spec.scale):
        raise SrganError(
            f"{path}: the header says scale x{header['scale']} but the network's kwargs say x{spec.scale}; "
            "re-export the model"
        )
    return spec


def read(path: Path) -> ModelFile:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    header = read_header(path)
    try:
        state_dict = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise SrganError(f"{path}: not a readable safetensors file ({error}); re-download or re-export it") from None
    spec, state_dict, layout = recognised(state_dict, path, stated=header_spec(header, path))
    provenance = {key: value for key, value in header.items() if key not in STRUCTURE_KEYS}
    return ModelFile(spec, state_dict, provenance, layout)


def write(path: Path, model_file: ModelFile) -> None:
    from safetensors.torch import save_file

    header = {key: value for key, value in model_file.provenance.items() if key not in STRUCTURE_KEYS}
    header.update(format=FORMAT_TAG, arch=model_file.spec.arch, kwargs=model_file.spec.kwargs_json())
    with atomic_write(path) as temp_path:
        save_file(model_file.state_dict, str(temp_path), metadata=header)
