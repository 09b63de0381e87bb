"""`NetworkSpec`: which network a set of weights belongs to, and nothing else.

A spec is an architecture name (a key of `srgan.archs.registry.ARCHS`) plus its builder's keyword
arguments. Everything else about the network is derived from those two, never stored beside them:
`scale` and the channel counts come from the kwargs (with the builder's defaults), so a model file,
a preset and a loaded model cannot disagree about them.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from torch import nn

from srgan.errors import SrganError


def _plain(value: Any) -> Any:
    """JSON's view of a kwarg (tuples become lists), so a spec read from a file equals the one written."""
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class NetworkSpec:
    arch: str
    kwargs: Mapping[str, Any]

    def __post_init__(self):
        # Every builder argument is written out (defaults filled in), so two specs of the same network
        # compare equal however they were written, and an unknown arch or option fails here, at read.
        from srgan.archs.registry import architecture, nearest

        parameters = inspect.signature(architecture(self.arch).builder).parameters
        for key in self.kwargs:
            if key not in parameters:
                raise SrganError(
                    f"{self.arch}: unknown option {key!r}{nearest(key, parameters)}; valid options: {', '.join(parameters)}"
                )
        full = {
            key: _plain(parameter.default)
            for key, parameter in parameters.items()
            if parameter.default is not inspect.Parameter.empty
        }
        full.update({key: _plain(value) for key, value in self.kwargs.items()})
        # read-only, so neither the spec nor a caller holding its kwargs can change it
        object.__setattr__(self, "kwargs", MappingProxyType(full))

    def __hash__(self) -> int:
        return hash((self.arch, self.kwargs_json()))

    @property
    def scale(self) -> int:
        return int(self.kwargs.get("scale", 1))

    @property
    def in_channels(self) -> int:
        return int(self.kwargs.get("in_channels", 3))

    @property
    def out_channels(self) -> int:
        return int(self.kwargs.get("out_channels", 3))

    @property
    def fp16_safe(self) -> bool:
        """Whether half precision (fp16 / bf16) keeps this architecture's output finite and close."""
        from srgan.archs.registry import architecture

        return architecture(self.arch).fp16_safe

    def kwargs_json(self) -> str:
        return json.dumps(dict(self.kwargs), sort_keys=True)

    def build(self, **overrides: Any) -> nn.Module:
        """A freshly initialised module; `overrides` replace keyword arguments."""
        from srgan.archs.registry import build_arch

        return build_arch(self.arch, {**self.kwargs, **overrides})


def spec_from_shapes(arch: str, **kwargs: Any) -> NetworkSpec:
    """A spec whose integer kwargs were read off tensor shapes (torch.Size entries become ints)."""
    return NetworkSpec(arch, {key: value if isinstance(value, (str, float)) else int(value) for key, value in kwargs.items()})


def numbered(state_dict: Mapping[str, Any], prefix: str) -> list[int]:
    """Sorted distinct N of keys `prefix.N.*` (the indices of an nn.Sequential's children)."""
    found = set()
    for key in state_dict:
        if key.startswith(prefix + "."):
            index = key[len(prefix) + 1 :].split(".", 1)[0]
            if index.isdigit():
                found.add(int(index))
    return sorted(found)
