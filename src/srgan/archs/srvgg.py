"""SRVGGNetCompact, Real-ESRGAN's small plain-conv model (used by realesr-animevideov3 and
realesr-general-x4v3).

A VGG-style stack of 3x3 convs at LR resolution, all the work done before one PixelShuffle, and the
nearest-upsampled input added to the result so the network only learns the residual. The layer list
`body` is laid out exactly as Real-ESRGAN's (conv, act, conv, act, ..., conv), so `body.0.weight`,
`body.1.weight` (PReLU), ... match its state dicts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srgan.archs.spec import NetworkSpec, numbered, spec_from_shapes
from srgan.errors import SrganError

# Real-ESRGAN runs this network in half precision by default
FP16_SAFE = True
# `body.N` is Real-ESRGAN's / BasicSR's own naming, so srgan's `.pth` files load in this class as they are.
BASICSR_CLASS = "basicsr.archs.srvgg_arch.SRVGGNetCompact"

# Real-ESRGAN's choices: PReLU per channel, LeakyReLU with slope 0.1
_ACTIVATIONS = {
    "prelu": lambda num_features: nn.PReLU(num_parameters=num_features),
    "relu": lambda num_features: nn.ReLU(inplace=True),
    "lrelu": lambda num_features: nn.LeakyReLU(0.1, inplace=True),
}


class SRVGGNetCompact(nn.Module):
    """(N, in_channels, H, W) -> (N, out_channels, H*scale, W*scale); out_channels == in_channels."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_features: int = 64,
        num_convs: int = 16,
        scale: int = 4,
        activation: str = "prelu",
    ):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise SrganError(f"srvgg_compact: unknown activation {activation!r}; use one of {', '.join(_ACTIVATIONS)}")
        if in_channels != out_channels:
            raise SrganError("srvgg_compact: in_channels and out_channels must match (the upsampled input is added)")
        self.scale = scale
        make_activation = _ACTIVATIONS[activation]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, num_features, 3, padding=1), make_activation(num_features)]
        for _ in range(num_convs):
            layers += [nn.Conv2d(num_features, num_features, 3, padding=1), make_activation(num_features)]
        layers.append(nn.Conv2d(num_features, out_channels * scale * scale, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.upsampler = nn.PixelShuffle(scale)
        self._init_for_training(activation)

    def _init_for_training(self, activation: str) -> None:
        # With PyTorch's default conv init the part of each layer's output that depends on the input
        # shrinks about 0.4x per conv + PReLU(0.25): after 16 convs the output no longer depends on the
        # input and training stalled at nearest-neighbour output. He init for the activation keeps that
        # signal through the stack; the last conv starts small so the untrained model is near nearest.
        slope = {"prelu": 0.25, "relu": 0.0, "lrelu": 0.1}[activation]
        convs = [layer for layer in self.body if isinstance(layer, nn.Conv2d)]
        for conv in convs:
            nn.init.kaiming_normal_(conv.weight, a=slope, nonlinearity="leaky_relu")
            nn.init.zeros_(conv.bias)
        with torch.no_grad():
            convs[-1].weight.mul_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsampler(self.body(x)) + F.interpolate(x, scale_factor=float(self.scale), mode="nearest")


# srgan's activation names -> BasicSR's act_type for the same layer
_BASICSR_ACT_TYPE = {"prelu": "prelu", "relu": "relu", "lrelu": "leakyrelu"}


def spandrel_refusal(spec: NetworkSpec) -> str | None:
    """Why spandrel will not load this network's weights (it reads every SRVGGNetCompact as PReLU), or None."""
    activation = spec.kwargs["activation"]
    if activation == "prelu":
        return None
    return (
        f"spandrel reads SRVGGNetCompact as PReLU only, this one uses {activation} "
        f"(act_type={_BASICSR_ACT_TYPE[activation]!r} in BasicSR)"
    )


def describe(state_dict: dict[str, torch.Tensor]) -> NetworkSpec | None:
    """The PReLU SRVGGNetCompact a Real-ESRGAN-named state dict belongs to, or None.

    PReLU slopes (`body.1.weight`, one value per channel) are what tell this network apart; the ReLU
    variants carry no trace of their activation in the weights, so they are not guessed at.
    """
    body_1 = state_dict.get("body.1.weight")
    if "body.0.weight" not in state_dict or body_1 is None or body_1.ndim != 1:
        return None
    convs = [state_dict[f"body.{index}.weight"] for index in numbered(state_dict, "body")]
    convs = [tensor for tensor in convs if tensor.ndim == 4]
    in_channels = convs[0].shape[1]
    return spec_from_shapes(
        "srvgg_compact",
        in_channels=in_channels,
        out_channels=in_channels,
        num_features=convs[0].shape[0],
        num_convs=len(convs) - 2,
        scale=round((convs[-1].shape[0] / in_channels) ** 0.5),
        activation="prelu",
    )
