"""The explicit model registry: architecture names -> builders, preset names -> `ModelSpec`.

`create_model(name)` and `list_models()` are the only ways in for the CLI, training and tests.
Presets are written out below, one small function per family; nothing is discovered by scanning.
Each preset records its parameter count (checked against the built module by the tests) so
`srgan models` can list sizes without building 43M-parameter networks. Presets are generators;
discriminators are architectures only, built from a training config with `build_arch`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from srgan.archs import edsr, msrresnet, rrdbnet, srresnet, srvgg, wdrn
from srgan.archs.discriminator import SRGANDiscriminator, VGGFeatureDiscriminator
from srgan.archs.spec import NetworkSpec
from srgan.errors import SrganError

StateDict = dict[str, Tensor]


@dataclass(frozen=True)
class Architecture:
    """One network family: its builder and what its module knows about its own weights."""

    name: str
    builder: Callable[..., nn.Module]
    fp16_safe: bool = True
    # state dict (srgan key names) -> the spec it belongs to, or None when it is not this network
    describe: Callable[[StateDict], NetworkSpec | None] | None = None
    # layout name -> converter of a foreign state dict to srgan's key names (None when not that layout)
    foreign_layouts: Mapping[str, Callable[[StateDict], StateDict | None]] = field(default_factory=dict)
    # The BasicSR / Real-ESRGAN class whose key names srgan's are (so srgan's `.pth` loads in it), if any
    basicsr_class: str | None = None
    # spec -> why spandrel (chaiNNer, ComfyUI) will not load those weights, None when it does; absent
    # when spandrel has no such architecture at all
    spandrel_refusal: Callable[[NetworkSpec], str | None] | None = None

    @property
    def basicsr_keys(self) -> bool:
        return self.basicsr_class is not None


def _generator(name: str, module, builder) -> Architecture:
    return Architecture(
        name=name,
        builder=builder,
        fp16_safe=module.FP16_SAFE,
        describe=module.describe,
        foreign_layouts=getattr(module, "FOREIGN_LAYOUTS", {}),
        basicsr_class=module.BASICSR_CLASS,
        spandrel_refusal=getattr(module, "spandrel_refusal", None),
    )


ARCHITECTURES: dict[str, Architecture] = {
    architecture.name: architecture
    for architecture in (
        _generator("srresnet", srresnet, srresnet.SRResNet),
        _generator("msrresnet", msrresnet, msrresnet.MSRResNet),
        _generator("edsr", edsr, edsr.EDSR),
        _generator("rrdbnet", rrdbnet, rrdbnet.RRDBNet),
        _generator("srvgg_compact", srvgg, srvgg.SRVGGNetCompact),
        _generator("wdrn", wdrn, wdrn.WDRN),
        Architecture("srgan_discriminator", SRGANDiscriminator),
        Architecture("vgg_feature_discriminator", VGGFeatureDiscriminator),
    )
}
ARCHS: dict[str, Callable[..., nn.Module]] = {name: entry.builder for name, entry in ARCHITECTURES.items()}


def architecture(name: str) -> Architecture:
    entry = ARCHITECTURES.get(name)
    if entry is None:
        raise SrganError(f"unknown architecture {name!r}{nearest(name, ARCHS)}; known: {', '.join(sorted(ARCHS))}")
    return entry


def recognise(state_dict: StateDict) -> tuple[NetworkSpec, StateDict, str] | None:
    """(spec, state dict in srgan key names, layout) for weights of a known generator, else None.

    Each architecture module decides for itself, first in srgan's (= BasicSR's) names, then in the
    foreign layouts it knows; the first that claims the weights wins.
    """
    for entry in ARCHITECTURES.values():
        if entry.describe is None:
            continue
        if (spec := entry.describe(state_dict)) is not None:
            return spec, state_dict, "srgan" if not entry.basicsr_keys else "BasicSR"
        for layout, convert in entry.foreign_layouts.items():
            if (renamed := convert(state_dict)) is not None and (spec := entry.describe(renamed)) is not None:
                return spec, renamed, layout
    return None


def pth_note(spec: NetworkSpec) -> str | None:
    """Why a `.pth` of `spec` will not open in chaiNNer / ComfyUI (spandrel), and what loads it
    instead; None when spandrel loads it."""
    entry = architecture(spec.arch)
    if entry.spandrel_refusal is None:
        reason = f"spandrel has no {spec.arch} architecture"
    elif (reason := entry.spandrel_refusal(spec)) is None:
        return None
    if entry.basicsr_class is not None:
        instead = f"{entry.basicsr_class} loads its params_ema with strict=True"
    else:
        builder = entry.builder
        instead = (
            f"{spec.arch} is srgan's own network (no BasicSR class either), so the file keeps srgan's key names: "
            f"load it with srgan, or torch.load(weights_only=True)['params_ema'] into "
            f"{builder.__module__}.{builder.__qualname__}"
        )
    return f"{reason}, so chaiNNer and ComfyUI will not open this .pth; {instead}"


@dataclass(frozen=True)
class ModelSpec:
    """A preset: a name plus the network it builds, and what `srgan models` says about it."""

    name: str
    network: NetworkSpec
    num_params: int
    description: str = field(default="", compare=False)

    @property
    def arch(self) -> str:
        return self.network.arch

    @property
    def kwargs(self) -> Mapping[str, Any]:
        return self.network.kwargs

    @property
    def scale(self) -> int:
        return self.network.scale

    @property
    def in_channels(self) -> int:
        return self.network.in_channels

    @property
    def out_channels(self) -> int:
        return self.network.out_channels

    @property
    def fp16_safe(self) -> bool:
        return self.network.fp16_safe

    def build(self, **overrides: Any) -> nn.Module:
        """A freshly initialised module; `overrides` replace preset keyword arguments."""
        return self.network.build(**overrides)


def nearest(name: str, valid) -> str:
    """' (did you mean X?)' for the closest valid name, or '' when nothing is close."""
    matches = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def build_arch(arch: str, kwargs: Mapping[str, Any]) -> nn.Module:
    """Build architecture `arch` with keyword arguments `kwargs` (e.g. from a model file's metadata)."""
    return architecture(arch).builder(**NetworkSpec(arch, kwargs).kwargs)


def _spec(name: str, arch: str, num_params: int, description: str, **kwargs) -> ModelSpec:
    return ModelSpec(name=name, network=NetworkSpec(arch, kwargs), num_params=num_params, description=description)


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
        raise SrganError(f"unknown model {name!r}{nearest(name, PRESETS)}; run `srgan models` to list them")
    return spec


def create_model(name: str, **overrides: Any) -> nn.Module:
    """An untrained module for preset `name`, with keyword arguments `overrides` applied."""
    return get_spec(name).build(**overrides)
