"""LPIPS, the Learned Perceptual Image Patch Similarity (Zhang et al., CVPR 2018), version 0.1.

A distance between two images: both go through an ImageNet classifier's convolutional layers
(AlexNet or VGG16, torchvision's layouts), the activations after five ReLUs are scaled to unit
length along the channels, squared differences are weighted per channel by a learned 1x1 "linear"
head, averaged over the image and summed over the five layers. 0 for identical images; lower is
better. Inputs are RGB in [0, 1]; they are mapped to [-1, 1] and shifted/scaled per channel as the
reference `lpips` package does.

Weights are never bundled nor fetched implicitly: `srgan models fetch-lpips --net alex|vgg`
downloads torchvision's backbone and the v0.1 heads of the reference package, checksummed, into one
safetensors file (see `srgan.downloads.fetch_lpips`). `tests/test_quality_lpips.py` checks the
arithmetic against distances the reference package computed on the same weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from srgan.errors import SrganError

# torchvision `features` layouts: ("C", out_channels, kernel, stride, padding) | ("M",) max pool;
# every convolution is followed by a ReLU. Only the layers up to the fifth tapped ReLU are built.
_LAYOUTS = {
    "alex": [("C", 64, 11, 4, 2), ("M",), ("C", 192, 5, 1, 2), ("M",), ("C", 384, 3, 1, 1), ("C", 256, 3, 1, 1),
             ("C", 256, 3, 1, 1)],
    "vgg": [("C", 64, 3, 1, 1), ("C", 64, 3, 1, 1), ("M",), ("C", 128, 3, 1, 1), ("C", 128, 3, 1, 1), ("M",),
            ("C", 256, 3, 1, 1), ("C", 256, 3, 1, 1), ("C", 256, 3, 1, 1), ("M",), ("C", 512, 3, 1, 1),
            ("C", 512, 3, 1, 1), ("C", 512, 3, 1, 1), ("M",), ("C", 512, 3, 1, 1), ("C", 512, 3, 1, 1),
            ("C", 512, 3, 1, 1)],
}
# Indices (in torchvision's `features`) of the ReLUs whose outputs are compared.
TAPS = {"alex": (1, 4, 7, 9, 11), "vgg": (3, 8, 15, 22, 29)}
NETS = tuple(_LAYOUTS)
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10


class LPIPS(nn.Module):
    """`LPIPS(net)(x, y) -> (N,)` distances of (N,3,H,W) images in [0, 1].

    State dict keys: `features.<torchvision index>.weight|bias` and `heads.<k>.weight` (1, C, 1, 1).
    """

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if net not in _LAYOUTS:
            raise SrganError(f"LPIPS network {net!r}: unknown; choose from {', '.join(NETS)}")
        self.net = net
        layers: list[nn.Module] = []
        channels, widths = 3, []
        for layer in _LAYOUTS[net]:
            if layer[0] == "M":
                layers.append(nn.MaxPool2d(kernel_size=3 if net == "alex" else 2, stride=2))
                continue
            _, out_channels, kernel, stride, padding = layer
            layers += [nn.Conv2d(channels, out_channels, kernel, stride, padding), nn.ReLU()]
            channels = out_channels
            if len(layers) - 1 in TAPS[net]:
                widths.append(out_channels)
        self.features = nn.Sequential(*layers)
        self.heads = nn.ModuleList(nn.Conv2d(width, 1, 1, bias=False) for width in widths)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def _taps(self, x: Tensor) -> list[Tensor]:
        x = (x * 2 - 1 - self.shift) / self.scale
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in TAPS[self.net]:
                taps.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS))
        return taps

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.shape != y.shape or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"lpips: expected two (N,3,H,W) images of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        total = 0
        for head, a, b in zip(self.heads, self._taps(x), self._taps(y)):
            total = total + head((a - b).pow(2)).mean(dim=(2, 3))
        return total.view(-1)


def load_lpips(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> LPIPS:
    """An LPIPS module from the safetensors file `srgan models fetch-lpips` writes (its `net` is in the header)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    source = Path(path)
    if not source.is_file():
        raise SrganError(f"{source}: LPIPS weights not found; run `srgan models fetch-lpips` or pass the file's path")
    try:
        with safe_open(str(source), framework="pt") as handle:
            net = (handle.metadata() or {}).get("net", "")
        state_dict = load_file(str(source))
    except Exception as error:  # safetensors raises its own error types for damaged files
        raise SrganError(f"{source}: not an LPIPS weights file ({error}); write it with `srgan models fetch-lpips`") from None
    if net not in _LAYOUTS:
        raise SrganError(f"{source}: header names no LPIPS network ('net': alex or vgg); write it with `srgan models fetch-lpips`")
    module = LPIPS(net)
    try:
        module.load_state_dict(state_dict)
    except RuntimeError as error:
        raise SrganError(f"{source}: weights do not fit LPIPS-{net} ({str(error).splitlines()[0]})") from None
    return module.to(device)


def lpips(sr: Tensor, hr: Tensor, module: LPIPS, *, crop_border: int = 0) -> Tensor:
    """LPIPS distance of each image of (N,C,H,W) `sr` to `hr`, in [0, 1] -> (N,) float64.

    1-channel images are repeated to RGB; `crop_border` pixels go from each side first.
    """
    if crop_border < 0:
        raise ValueError(f"lpips: crop_border must be >= 0, got {crop_border}")
    pair = []
    for image in (sr, hr):
        if image.dim() == 4 and image.shape[1] == 1:
            image = image.expand(-1, 3, -1, -1)
        if crop_border:
            image = image[..., crop_border:-crop_border, crop_border:-crop_border]
        pair.append(image.to(module.shift.device, torch.float32))
    with torch.no_grad():
        return module(*pair).double().cpu()
