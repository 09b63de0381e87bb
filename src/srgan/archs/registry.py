"""The explicit model registry: architecture names -> builders, preset names -> `ModelSpec`.

`create_model(name)` and `list_models()` are the only ways in for the CLI, training and tests.
Presets are written out below, one small function per family; nothing is discovered by scanning.
Each preset records its parameter count (checked against the built module by the tests) so
`srgan models` can list sizes without building 43M-parameter networks. Presets are generators;
discriminators are architectures only, built from a training config with `build_arch`.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from torch import nn

from srgan.archs.discriminator import SRGANDiscriminator, VGGFeatureDiscriminator
from srgan.archs.edsr import EDSR
from srgan.archs.rrdbnet import RRDBNet
from srgan.archs.srresnet import SRResNet
from srgan.archs.srvgg import SRVGGNetCompact
from srgan.archs.wdrn import WDRN
from srgan.errors import SrganError

ARCHS: dict[str, Callable[..., nn.Module]] = {
    "srresnet": SRResNet,
    "edsr": EDSR,
    "rrdbnet": RRDBNet,
    "srvgg_compact": SRVGGNetCompact,
    "wdrn": WDRN,
    "srgan_discriminator": SRGANDiscriminator,
    "vgg_feature_discriminator": VGGFeatureDiscriminator,
}


@dataclass(frozen=True)
class ModelSpec:
    """A named, buildable configuration of one architecture plus what callers need to know about it."""

    name: str
    arch: str
    kwargs: Mapping[str, Any]
    scale: int
    in_channels: int
    out_channels: int
    num_params: int
    fp16_safe: bool
    description: str = field(default="", compare=False)

    def __post_init__(self):
        # a read-only view, so a spec cannot be changed through its kwargs either
        object.__setattr__(self, "kwargs", MappingProxyType(dict(self.kwargs)))

    def build(self, **overrides: Any) -> nn.Module:
        """A freshly initialised module; `overrides` replace preset keyword arguments."""
        return build_arch(self.arch, {**self.kwargs, **overrides})


def _nearest(name: str, valid) -> str:
    """' (did you mean X?)' for the closest valid name, or '' when nothing is close."""
    matches = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def build_arch(arch: str, kwargs: Mapping[str, Any]) -> nn.Module:
    """Build architecture `arch` with keyword arguments `kwargs` (e.g. from a model file's metadata)."""
    builder = ARCHS.get(arch)
    if builder is None:
        raise SrganError(f"unknown architecture {arch!r}{_nearest(arch, ARCHS)}; known: {', '.join(sorted(ARCHS))}")
    accepted = inspect.signature(builder).parameters
    for key in kwargs:
        if key not in accepted:
            raise SrganError(
                f"{arch}: unknown option {key!r}{_nearest(key, accepted)}; valid options: {', '.join(accepted)}"
            )
    return builder(**kwargs)


def _spec(name: str, arch: str, num_params: int, description: str, *, fp16_safe: bool = True, **kwargs) -> ModelSpec:
    return ModelSpec(
        name=name,
        arch=arch,
        kwargs=kwargs,
        scale=kwargs["scale"],
        in_channels=kwargs.get("in_channels", 3),
        out_channels=kwargs.get("out_channels", 3),
        num_params=num_params,
        fp16_safe=fp16_safe,
        description=description,
    )


def _srresnet_presets() -> list[ModelSpec]:
    counts = {2: 1_401_749, 3: 1_586_389, 4: 1_549_462, 8: 1_697_175}
    return [
        _spec(f"srresnet_x{s}", "srresnet", n, f"SRResNet x{s} (SRGAN generator), 16 blocks x 64, BN + PReLU", scale=s)
        for s, n in counts.items()
    ]


def _edsr_presets() -> list[ModelSpec]:
    baseline = {2: 1_369_859, 3: 1_554_499, 4: 1_517_571}
    large = {2: 40_729_603, 3: 43_680_003, 4: 43_089_923}
    return [
        _spec(f"edsr_baseline_x{s}", "edsr", n, f"EDSR-baseline x{s}, 16 blocks x 64, no BN", scale=s)
        for s, n in baseline.items()
    ] + [
        _spec(
            f"edsr_x{s}",
            "edsr",
            n,
            f"EDSR x{s}, 32 blocks x 256, residual scaling 0.1",
            scale=s,
            num_features=256,
            num_blocks=32,
            res_scale=0.1,
        )
        for s, n in large.items()
    ]


def _rrdbnet_presets() -> list[ModelSpec]:
    return [
        _spec("rrdbnet_x4", "rrdbnet", 16_697_987, "ESRGAN RRDBNet x4, 23 RRDB, nf 64, gc 32", scale=4),
        _spec(
            "rrdbnet_x2",
            "rrdbnet",
            16_703_171,
            "ESRGAN RRDBNet x2 (pixel-unshuffled input, as Real-ESRGAN x2plus)",
            scale=2,
        ),
        _spec(
            "rrdbnet_6b_x4",
            "rrdbnet",
            4_467_779,
            "RRDBNet x4 with 6 blocks (Real-ESRGAN anime model size)",
            scale=4,
            num_blocks=6,
        ),
    ]


def _srvgg_presets() -> list[ModelSpec]:
    return [
        _spec(
            "srvgg_compact_x4",
            "srvgg_compact",
            621_424,
            "SRVGGNetCompact x4, 64 features, 16 convs, PReLU (realesr-animevideov3 layout)",
            scale=4,
        ),
    ]


def _wdrn_presets() -> list[ModelSpec]:
    return [
        _spec(
            "wdrn_x4",
            "wdrn",
            1_500_867,
            "WDRN x4 (this project's weighted dense residual network), 8 blocks x 4 layers, nf 64",
            fp16_safe=False,  # not yet validated in half precision
            scale=4,
        ),
    ]


_FAMILIES = (_srresnet_presets, _edsr_presets, _rrdbnet_presets, _srvgg_presets, _wdrn_presets)
PRESETS: dict[str, ModelSpec] = {spec.name: spec for family in _FAMILIES for spec in family()}


def list_models() -> list[str]:
    """All preset names, sorted."""
    return sorted(PRESETS)


def get_spec(name: str) -> ModelSpec:
    """The preset called `name`; a SrganError suggests the nearest name when there is none."""
    spec = PRESETS.get(name)
    if spec is None:
        raise SrganError(f"unknown model {name!r}{_nearest(name, PRESETS)}; run `srgan models` to list them")
    return spec


def create_model(name: str, **overrides: Any) -> nn.Module:
    """An untrained module for preset `name`, with keyword arguments `overrides` applied."""
    return get_spec(name).build(**overrides)
