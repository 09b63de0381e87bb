"""RRDBNet, the ESRGAN generator (Wang et al., ECCVW 2018, arXiv:1809.00219).

SRResNet's topology with every BatchNorm removed and each residual block replaced by a
Residual-in-Residual Dense Block (three 5-conv dense blocks). Residual branches are scaled by 0.2
and the dense-block convs start from MSRA init x 0.1, the paper's two stabilisers; untrained, the
network is bilinear upsampling (`srgan.archs.passthrough`). Upsampling is
nearest x2 + conv, twice. With 23 blocks, 64 features and growth 32 it has 16,697,987 parameters
at x4.

Parameter names are BasicSR's (`conv_first`, `body.N.rdb1.conv1`, `conv_body`, `conv_up1`,
`conv_up2`, `conv_hr`, `conv_last`) so ESRGAN / Real-ESRGAN / BasicSR state dicts load with
`strict=True`. Scales 2 and 1 work as in Real-ESRGAN's x2 model: the input is pixel-unshuffled
first (channels x4 or x16), then the same x4 trunk runs; inputs whose sides are not a multiple of
2 (or 4) are edge-padded first and the output cropped, so any size works.
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F
from torch import nn

from srgan.archs.passthrough import BILINEAR_AFTER_NEAREST_X2, pass_channels_, read_channels_, zero_rows_
from srgan.archs.spec import NetworkSpec, numbered, spec_from_shapes
from srgan.errors import SrganError

RESIDUAL_SCALE = 0.2
# Inference runs the x4 upsampling tail (four 3x3 convs on 64 features at 2x and 4x the input's size:
# for a 320x320 tile, 420 MB per tensor at 4x and two alive at once) in strips of this many trunk rows,
# so its memory is that of a strip (about 50 MB here), not of the tile. A strip needs 2 trunk rows of
# context on each side: 3 rows at 4x for conv_up2, conv_hr and conv_last, and 1 at 2x for conv_up1.
INFERENCE_STRIP_ROWS = 32
_STRIP_HALO_ROWS = 2

# RRDBNet keeps fp16/bf16 outputs finite and close (Real-ESRGAN runs it in half precision by default)
FP16_SAFE = True
# The key names are BasicSR's, so srgan's `.pth` files load in this class as they are.
BASICSR_CLASS = "basicsr.archs.rrdbnet_arch.RRDBNet"
# spandrel (chaiNNer, ComfyUI) builds its RRDBNet with this many growth channels, whatever the weights say.
SPANDREL_GROWTH_CHANNELS = 32

# scale -> pixel-unshuffle factor that turns the x4 trunk into that scale
_UNSHUFFLE_FACTOR = {4: 1, 2: 2, 1: 4}


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; conv k sees the input and the outputs of convs 1..k-1."""

    def __init__(self, num_features: int = 64, growth_channels: int = 32):
        super().__init__()
        for index in range(1, 6):
            in_ch = num_features + (index - 1) * growth_channels
            out_ch = num_features if index == 5 else growth_channels
            setattr(self, f"conv{index}", nn.Conv2d(in_ch, out_ch, 3, padding=1))
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        for index in range(1, 6):
            conv = getattr(self, f"conv{index}")
            # MSRA (Kaiming normal, fan-in, ReLU gain) scaled by 0.1, drawn in one step
            fan_in = conv.weight[0].numel()
            nn.init.normal_(conv.weight, std=0.1 * math.sqrt(2.0 / fan_in))
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for index in range(1, 5):
            conv = getattr(self, f"conv{index}")
            features.append(self.lrelu(conv(torch.cat(features, dim=1))))
        return x + RESIDUAL_SCALE * self.conv5(torch.cat(features, dim=1))


class RRDB(nn.Module):
    """Residual-in-Residual Dense Block: three dense blocks in a chain, with a scaled outer skip."""

    def __init__(self, num_features: int = 64, growth_channels: int = 32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_features, growth_channels)
        self.rdb2 = ResidualDenseBlock(num_features, growth_channels)
        self.rdb3 = ResidualDenseBlock(num_features, growth_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + RESIDUAL_SCALE * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBNet(nn.Module):
    """ESRGAN generator: (N, in_channels, H, W) -> (N, out_channels, H*scale, W*scale)."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_features: int = 64,
        num_blocks: int = 23,
        growth_channels: int = 32,
        scale: int = 4,
    ):
        super().__init__()
        if scale not in _UNSHUFFLE_FACTOR:
            raise SrganError(f"rrdbnet: scale {scale} is not supported; use 4, 2 or 1")
        self.scale = scale
        self.unshuffle_factor = _UNSHUFFLE_FACTOR[scale]
        trunk_in = in_channels * self.unshuffle_factor**2
        self.conv_first = nn.Conv2d(trunk_in, num_features, 3, padding=1)
        self.body = nn.Sequential(*(RRDB(num_features, growth_channels) for _ in range(num_blocks)))
        self.conv_body = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.conv_up1 = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.conv_up2 = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.conv_hr = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.conv_last = nn.Conv2d(num_features, out_channels, 3, padding=1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)
        self._start_as_upsampler(min(in_channels, out_channels, num_features))

    def _start_as_upsampler(self, channels: int) -> None:
        # see srgan.archs.passthrough; after a pixel-unshuffle by f the first sample of each f x f block is
        # copied. Each nearest x2 + conv_up stage starts as bilinear x2, so the untrained network is bilinear
        # upsampling: a plain copy there (nearest) left the 300-iteration quick preset below bicubic.
        pass_channels_(self.conv_first, channels, source_stride=self.unshuffle_factor**2)
        zero_rows_(self.conv_body, channels)
        for conv in (self.conv_up1, self.conv_up2):
            pass_channels_(conv, channels, kernel=BILINEAR_AFTER_NEAREST_X2)
        pass_channels_(self.conv_hr, channels)
        read_channels_(self.conv_last, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.trunk(x), x.shape[-2:])

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The features the upsampling tail starts from: (N, num_features, H / f, W / f), f the unshuffle factor
        (1 at x4), after `conv_first`, the RRDB chain and `conv_body` with its skip."""
        height, width = x.shape[-2:]
        factor = self.unshuffle_factor
        if factor > 1:
            # edge-replicate to a multiple of the unshuffle factor; `upsample` crops the extra rows/columns
            x = F.pad(x, (0, -width % factor, 0, -height % factor), mode="replicate")
            x = F.pixel_unshuffle(x, factor)
        features = self.conv_first(x)
        return features + self.conv_body(self.body(features))

    def upsample(self, features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The x4 tail: the output for the `trunk` features of an input of `size` (height, width) pixels.
        At inference it runs in strips of trunk rows, so its memory is a strip's, not the input's."""
        height, width = size
        rows = features.shape[-2]
        if _tracing() or torch.is_grad_enabled() or rows <= INFERENCE_STRIP_ROWS:
            out = self._upsample(features)
        else:
            out = torch.cat([self._upsample_rows(features, top) for top in range(0, rows, INFERENCE_STRIP_ROWS)], -2)
        return out[..., : height * self.scale, : width * self.scale]

    def exportable_trunk(self) -> nn.Module:
        """The trunk as a module of its own (same weights), for runtimes that run an export of it while
        PyTorch runs `upsample`: exported whole, the tail's full-resolution tensors are the runtime's
        (OpenVINO at --tile 256: 1.9 GiB and rising on a 3000x2000 photo)."""
        return _Trunk(self)

    def _upsample(self, features: torch.Tensor) -> torch.Tensor:
        for conv_up in (self.conv_up1, self.conv_up2):
            features = self.lrelu(conv_up(F.interpolate(features, scale_factor=2.0, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(features)))

    def _upsample_rows(self, features: torch.Tensor, top: int) -> torch.Tensor:
        """The x4 output of trunk rows [top, top + INFERENCE_STRIP_ROWS), computed from those rows and a
        halo of _STRIP_HALO_ROWS on each side (clipped at the image's edges, where the zero padding is the
        whole computation's too), so it equals the same rows of `_upsample(features)`."""
        bottom = min(top + INFERENCE_STRIP_ROWS, features.shape[-2])
        first = max(top - _STRIP_HALO_ROWS, 0)
        out = self._upsample(features[..., first : bottom + _STRIP_HALO_ROWS, :])
        return out[..., 4 * (top - first) : 4 * (bottom - first), :]


class _Trunk(nn.Module):
    """`RRDBNet.trunk` as a forward, for exporting (see `RRDBNet.exportable_trunk`)."""

    def __init__(self, network: RRDBNet):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network.trunk(x)


def _tracing() -> bool:
    """Whether the forward is being traced or exported (ONNX, torch.export, torch.compile): the strips'
    Python loop would then be baked in at the traced size, so the whole tail is written out instead."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()


def describe(state_dict: dict[str, torch.Tensor]) -> NetworkSpec | None:
    """The RRDBNet a BasicSR-named state dict belongs to, or None when it is not one."""
    if not {"conv_first.weight", "body.0.rdb1.conv1.weight", "conv_last.weight"} <= state_dict.keys():
        return None
    first = state_dict["conv_first.weight"]
    out_channels = state_dict["conv_last.weight"].shape[0]
    # BasicSR's x2 / x1 models pixel-unshuffle the input first, multiplying its channels by 4 / 16.
    scale = {1: 4, 4: 2, 16: 1}.get(first.shape[1] // out_channels, 4)
    return spec_from_shapes(
        "rrdbnet",
        in_channels=first.shape[1] * scale * scale // 16,
        out_channels=out_channels,
        num_features=first.shape[0],
        num_blocks=len(numbered(state_dict, "body")),
        growth_channels=state_dict["body.0.rdb1.conv1.weight"].shape[0],
        scale=scale,
    )


# The original ESRGAN repository (xinntao/ESRGAN, RRDB_ESRGAN_x4.pth and the many community models
# in its layout) names the same network by position in one nn.Sequential:
# model.0 conv_first; model.1.sub.N.RDBk.convj.0 the RRDBs, model.1.sub.<num_blocks> conv_body;
# model.3 / model.6 the two upsampling convs; model.8 conv_hr; model.10 conv_last.
_ESRGAN_TAIL = {"model.0": "conv_first", "model.3": "conv_up1", "model.6": "conv_up2", "model.8": "conv_hr", "model.10": "conv_last"}
_ESRGAN_RDB = re.compile(r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$")
_ESRGAN_TRUNK = re.compile(r"^model\.1\.sub\.(\d+)\.(weight|bias)$")


def from_esrgan_layout(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """The state dict in BasicSR names if it is in the original ESRGAN layout, else None."""
    if "model.0.weight" not in state_dict or "model.1.sub.0.RDB1.conv1.0.weight" not in state_dict:
        return None
    renamed = {}
    for key, tensor in state_dict.items():
        module, _, leaf = key.rpartition(".")
        if module in _ESRGAN_TAIL:
            renamed[f"{_ESRGAN_TAIL[module]}.{leaf}"] = tensor
        elif match := _ESRGAN_RDB.match(key):
            block, dense, conv, leaf = match.groups()
            renamed[f"body.{block}.rdb{dense}.conv{conv}.{leaf}"] = tensor
        elif match := _ESRGAN_TRUNK.match(key):
            renamed[f"conv_body.{match.group(2)}"] = tensor
        else:
            return None  # something this layout does not have: not an ESRGAN RRDBNet
    return renamed


FOREIGN_LAYOUTS = {"original ESRGAN layout (model.N)": from_esrgan_layout}


def spandrel_refusal(spec: NetworkSpec) -> str | None:
    """Why spandrel will not load this RRDBNet's weights, or None when it does."""
    growth = spec.kwargs["growth_channels"]
    if growth != SPANDREL_GROWTH_CHANNELS:
        return f"spandrel builds RRDBNet with {SPANDREL_GROWTH_CHANNELS} growth channels, these weights have {growth}"
    return None
