"""A frozen VGG19 that returns intermediate feature maps, for perceptual losses and feature critics.

Layers are laid out like torchvision's `vgg19().features` (`features.0` ... `features.36`), so its
weight files load as they are. Layer names: `conv{b}_{i}` (before the ReLU), `relu{b}_{i}` (after),
`pool{b}`, plus SRGAN's aliases `vgg22` = relu2_2, `vgg34` = relu3_4, `vgg54` = relu5_4. ESRGAN's
loss uses `conv5_4` (before activation). Only the layers up to the deepest requested one are built.

`forward` takes RGB in [0, 1]; the weights decide how it must be preprocessed, so the convention is
chosen explicitly and kept in the `convention` attribute:

- `"torchvision"`: RGB in [0, 1], ImageNet mean/std normalisation (torchvision's `vgg19-dcbb9e9d.pth`);
- `"caffe"`: BGR in 0-255 minus the per-channel ImageNet mean, no std (the original Oxford weights).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from srgan.errors import SrganError

# (channels, convs) of VGG19's five blocks; each block ends in a 2x2 max-pool
_VGG19_BLOCKS = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))

ALIASES = {"vgg22": "relu2_2", "vgg34": "relu3_4", "vgg54": "relu5_4"}


@dataclass(frozen=True)
class _Layer:
    name: str
    kind: str  # "conv", "relu" or "pool"
    in_channels: int
    out_channels: int


def _vgg19_layers() -> list[_Layer]:
    """VGG19's feature layers in torchvision's order: index i is `features.i`."""
    layers = []
    channels = 3
    for block, (width, num_convs) in enumerate(_VGG19_BLOCKS, start=1):
        for conv in range(1, num_convs + 1):
            layers.append(_Layer(f"conv{block}_{conv}", "conv", channels, width))
            layers.append(_Layer(f"relu{block}_{conv}", "relu", width, width))
            channels = width
        layers.append(_Layer(f"pool{block}", "pool", width, width))
    return layers


VGG19_LAYERS = _vgg19_layers()
LAYER_INDEX = {layer.name: index for index, layer in enumerate(VGG19_LAYERS)}


@dataclass(frozen=True)
class _Preprocessing:
    bgr: bool
    input_scale: float
    mean: tuple[float, float, float]  # in the network's channel order
    std: tuple[float, float, float]


CONVENTIONS = {
    "torchvision": _Preprocessing(False, 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "caffe": _Preprocessing(True, 255.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0)),
}


def resolve_layer(name: str) -> str:
    """The canonical layer name for `name` (an alias or a layer name); SrganError for an unknown one."""
    canonical = ALIASES.get(name, name)
    if canonical not in LAYER_INDEX:
        matches = difflib.get_close_matches(name, [*LAYER_INDEX, *ALIASES], n=1)
        hint = f" (did you mean {matches[0]!r}?)" if matches else ""
        raise SrganError(f"VGG19 has no layer {name!r}{hint}; use e.g. relu2_2, relu5_4, conv5_4 or vgg54")
    return canonical


class VGGFeatureExtractor(nn.Module):
    """Frozen VGG19 features: `forward(rgb01)` -> {requested name: feature map}.

    Frozen by construction: the conv weights are buffers, so `parameters()` is empty.

    `layers` are layer names or aliases. `weights_path` is a `.safetensors` or torchvision `.pth`
    file with `features.N.weight/bias` keys (`~` is expanded); a partial file is fine when it
    covers the requested layers.
    """

    def __init__(self, layers: str | Sequence[str], weights_path: str | Path, convention: str = "torchvision"):
        super().__init__()
        if convention not in CONVENTIONS:
            raise SrganError(f"VGG convention {convention!r} is unknown; use 'torchvision' or 'caffe'")
        self.layers = [layers] if isinstance(layers, str) else list(layers)
        if not self.layers:
            raise SrganError("VGG feature extractor: no layers requested; name at least one, e.g. relu5_4")
        self.convention = convention
        # requested name -> index of the layer whose output it is
        taps = {name: LAYER_INDEX[resolve_layer(name)] for name in self.layers}
        self.out_channels = {name: VGG19_LAYERS[index].out_channels for name, index in taps.items()}
        self._names_at: dict[int, list[str]] = {}
        for name, index in taps.items():
            self._names_at.setdefault(index, []).append(name)
        depth = max(taps.values()) + 1
        self.features = nn.Sequential(*(_make_layer(layer) for layer in VGG19_LAYERS[:depth]))
        self._load_weights(Path(weights_path).expanduser())

        preprocessing = CONVENTIONS[convention]
        self._bgr = preprocessing.bgr
        self.input_scale = preprocessing.input_scale
        self.register_buffer("mean", torch.tensor(preprocessing.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(preprocessing.std).view(1, 3, 1, 1), persistent=False)

    def _load_weights(self, path: Path) -> None:
        state = _read_state_dict(path)
        wanted = {}
        for index, layer in enumerate(VGG19_LAYERS[: len(self.features)]):
            if layer.kind != "conv":
                continue
            for param in ("weight", "bias"):
                key = f"features.{index}.{param}"
                if key not in state:
                    raise SrganError(
                        f"{path}: no weights for VGG19 layer {layer.name} ({key}); the requested layers "
                        f"{', '.join(self.layers)} need a file that covers {layer.name}"
                    )
                wanted[key] = state[key]
        try:
            self.load_state_dict(wanted, strict=True)
        except RuntimeError as error:
            raise SrganError(f"{path}: not VGG19 weights ({str(error).splitlines()[-1].strip()})") from None

    def preprocess(self, rgb: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> the input the weights were trained on (see the module docstring)."""
        x = rgb.flip(1) if self._bgr else rgb
        return (x * self.input_scale - self.mean) / self.std

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.preprocess(rgb)
        outputs: dict[str, torch.Tensor] = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            for name in self._names_at.get(index, ()):
                outputs[name] = x
        return outputs


class _FrozenConv3x3(nn.Module):
    """A 3x3 conv whose weights are buffers, not parameters.

    They load from state dicts and move with `.to()` like parameters, but no optimiser sees them
    and no `requires_grad_(True)` on an enclosing model (a discriminator toggled during a GAN step)
    can unfreeze them. Gradients still flow through to the input.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.register_buffer("weight", torch.empty(out_channels, in_channels, 3, 3))
        self.register_buffer("bias", torch.empty(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, padding=1)


def _make_layer(layer: _Layer) -> nn.Module:
    if layer.kind == "conv":
        return _FrozenConv3x3(layer.in_channels, layer.out_channels)
    if layer.kind == "relu":
        # not in place: a conv output requested as a feature must survive the ReLU after it
        return nn.ReLU()
    return nn.MaxPool2d(2, 2)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise SrganError(f"{path}: VGG19 weights file not found; pass the path of a .safetensors or .pth file")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from srgan.safeload import load_weights_only

    if path.suffix != ".safetensors":
        state = load_weights_only(path, what="VGG19 weights file")
    else:
        try:
            return load_file(path)
        except (SafetensorError, OSError) as error:
            raise SrganError(f"{path}: cannot read VGG19 weights ({error})") from None
    if not isinstance(state, dict):
        raise SrganError(f"{path}: not a state dict of VGG19 weights")
    return state
