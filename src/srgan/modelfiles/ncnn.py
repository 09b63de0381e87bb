"""ncnn exports (`.param` text graph + `.bin` weights) of RRDBNet and SRVGGNetCompact, as
Real-ESRGAN / RealSR ship them, converted to state dicts in BasicSR / Real-ESRGAN key names.

The whole graph is checked against what the architecture computes, so an export with an extra or
different operation is refused rather than converted into a network that behaves differently.
"""

from __future__ import annotations

import os
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from srgan.archs.spec import NetworkSpec, spec_from_shapes
from srgan.errors import SrganError
from srgan.modelfiles import ModelFile

NCNN_PARAM_MAGIC = "7767517"
# Tags that open a weight blob in an ncnn .bin (ncnn's ModelBinFromDataReader::load).
NCNN_TAG_FP16 = 0x01306B47
NCNN_TAG_FP32 = 0x00000000
# ncnn ids of fused activations (Convolution param 9) and interpolation modes (Interp param 0).
NCNN_ACTIVATION_NONE = 0
NCNN_ACTIVATION_LEAKY_RELU = 2
NCNN_INTERP_NEAREST = 1
# The only layer types each export may contain; Input names the image, Split fans a blob out.
NCNN_RRDBNET_LAYERS = frozenset({"Input", "Split", "Concat", "Convolution", "Eltwise", "BinaryOp", "Interp"})
NCNN_SRVGG_COMPACT_LAYERS = frozenset({"Input", "Split", "Convolution", "PReLU", "PixelShuffle", "Interp", "BinaryOp"})


@dataclass
class NcnnLayer:
    """One line of an ncnn .param file."""

    kind: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, str | list[str]] = field(default_factory=dict)

    def int_param(self, key: int, default: int = 0) -> int:
        return int(self.params.get(key, default))

    def float_param(self, key: int, default: float = 0.0) -> float:
        return float(self.params.get(key, default))

    def array_param(self, key: int) -> list[float]:
        return [float(value) for value in self.params.get(key, [])]


def parse_ncnn_param(param_path: str | os.PathLike) -> list[NcnnLayer]:
    """The layers of an ncnn text .param file, in file order."""
    path = Path(param_path)
    try:
        lines = path.read_text(encoding="ascii").split("\n")
    except FileNotFoundError:
        raise SrganError(f"{path}: ncnn .param file not found; check the path") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SrganError(f"{path}: not a readable ncnn text .param file ({error})") from None
    if lines[0].strip() != NCNN_PARAM_MAGIC:
        raise SrganError(f"{path}: not an ncnn text .param file (first line is not {NCNN_PARAM_MAGIC})")
    layers = []
    try:
        layer_count = int(lines[1].split()[0])
        for line in lines[2:]:
            fields = line.split()
            if not fields:
                continue
            input_count, output_count = int(fields[2]), int(fields[3])
            names_end = 4 + input_count + output_count
            layer = NcnnLayer(fields[0], fields[1], fields[4 : 4 + input_count], fields[4 + input_count : names_end])
            for assignment in fields[names_end:]:
                key_text, value = assignment.split("=", 1)
                key = int(key_text)
                # Keys at or below -23300 hold arrays: "count,v1,v2,..." for param id -23300 - key.
                if key <= -23300:
                    layer.params[-23300 - key] = value.split(",")[1:]
                else:
                    layer.params[key] = value
            layers.append(layer)
    except (IndexError, ValueError) as error:
        raise SrganError(f"{path}: malformed ncnn .param file ({error})") from None
    if len(layers) != layer_count:
        raise SrganError(f"{path}: truncated ncnn .param file ({len(layers)} of {layer_count} layers)")
    return layers


class _NcnnBlobReader:
    """Reads weight blobs from an ncnn .bin in order, the way ncnn's own loader does."""

    def __init__(self, bin_path: Path):
        self.path = bin_path
        try:
            self.data = bytearray(bin_path.read_bytes())
        except FileNotFoundError:
            raise SrganError(f"{bin_path}: ncnn .bin file not found; it must sit next to its .param") from None
        self.offset = 0

    def _take(self, size: int) -> int:
        """Advance past `size` bytes and return where they start."""
        start = self.offset
        if start + size > len(self.data):
            raise SrganError(f"{self.path}: truncated ncnn .bin file (needs more than its {len(self.data)} bytes)")
        self.offset += size
        return start

    def _floats(self, dtype: torch.dtype, count: int, start: int) -> Tensor:
        # .float() on fp16 and .clone() on fp32 both copy, so no tensor keeps the file buffer alive.
        values = torch.frombuffer(self.data, dtype=dtype, count=count, offset=start)
        return values.float() if dtype != torch.float32 else values.clone()

    def tagged(self, count: int) -> Tensor:
        """A blob that opens with a storage tag (convolution weights)."""
        (tag,) = struct.unpack_from("<I", self.data, self._take(4))
        if tag == NCNN_TAG_FP16:
            return self._floats(torch.float16, count, self._take((count * 2 + 3) // 4 * 4))
        if tag == NCNN_TAG_FP32:
            return self.raw(count)
        raise SrganError(f"{self.path}: unsupported ncnn weight storage tag 0x{tag:08x} (only fp16 and fp32)")

    def raw(self, count: int) -> Tensor:
        """A blob of plain fp32 values with no tag (biases, PReLU slopes)."""
        return self._floats(torch.float32, count, self._take(count * 4))

    def check_consumed(self) -> None:
        if self.offset != len(self.data):
            raise SrganError(
                f"{self.path}: {len(self.data) - self.offset} bytes left after the last layer; "
                "the .bin does not belong to this .param"
            )


@dataclass
class _Conv:
    layer: NcnnLayer
    weight: Tensor
    bias: Tensor | None
    activation: int

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1]


def convert_ncnn(param_path: str | os.PathLike, bin_path: str | os.PathLike) -> tuple[NetworkSpec, dict[str, Tensor]]:
    """(spec, state dict) for an RRDBNet or SRVGGNetCompact ncnn export.

    The whole graph is checked against what the architecture computes, so an export with an extra
    or different operation is refused rather than converted into a network that behaves differently.
    """
    param_path, bin_path = Path(param_path), Path(bin_path)
    layers = parse_ncnn_param(param_path)
    kinds = Counter(layer.kind for layer in layers)
    if kinds["PReLU"] and kinds["PixelShuffle"]:
        allowed = NCNN_SRVGG_COMPACT_LAYERS
    elif kinds["Concat"] and kinds["Eltwise"]:
        allowed = NCNN_RRDBNET_LAYERS
    else:
        raise SrganError(f"{param_path}: ncnn graph is neither RRDBNet nor SRVGGNetCompact; cannot convert it")
    # Checked before reading the .bin: any other layer could hold weights or change the computation.
    _require(set(kinds) <= allowed, param_path, f"layer types {', '.join(sorted(set(kinds) - allowed))}")

    reader = _NcnnBlobReader(bin_path)
    convs, slopes = [], []
    for layer in layers:
        if layer.kind == "Convolution":
            convs.append(_read_ncnn_conv(layer, reader, param_path))
        elif layer.kind == "PReLU":
            slopes.append(reader.raw(layer.int_param(0, 1)))
    reader.check_consumed()
    if allowed is NCNN_SRVGG_COMPACT_LAYERS:
        return _ncnn_srvgg_compact(layers, kinds, convs, slopes, param_path)
    return _ncnn_rrdbnet(layers, kinds, convs, param_path)


def _read_ncnn_conv(layer: NcnnLayer, reader: _NcnnBlobReader, param_path: Path) -> _Conv:
    out_channels = layer.int_param(0)
    kernel_w = layer.int_param(1)
    kernel_h = layer.int_param(11, kernel_w)
    weight_count = layer.int_param(6)
    is_plain_3x3 = (
        kernel_w == kernel_h == 3
        and layer.int_param(2, 1) == layer.int_param(12, layer.int_param(2, 1)) == 1  # dilation
        and layer.int_param(3, 1) == layer.int_param(13, layer.int_param(3, 1)) == 1  # stride
        and layer.int_param(4) == layer.int_param(14, layer.int_param(4)) == 1  # padding
        and weight_count % (out_channels * 9) == 0
    )
    if not is_plain_3x3:
        raise SrganError(f"{param_path}: layer {layer.name} is not a 3x3 stride-1 padded convolution; cannot convert")
    weight = reader.tagged(weight_count).reshape(out_channels, weight_count // (out_channels * 9), 3, 3)
    bias = reader.raw(out_channels) if layer.int_param(5) else None
    return _Conv(layer, weight, bias, layer.int_param(9, NCNN_ACTIVATION_NONE))


def _require(condition: bool, param_path: Path, what: str) -> None:
    if not condition:
        raise SrganError(f"{param_path}: unexpected ncnn graph ({what}); cannot convert it faithfully")


def _blob_producers(layers: list[NcnnLayer]) -> dict[str, NcnnLayer]:
    """blob name -> the layer that computes it, looking through Split layers (they only fan out)."""
    producers: dict[str, NcnnLayer] = {}
    for layer in layers:
        for blob in layer.outputs:
            producers[blob] = producers[layer.inputs[0]] if layer.kind == "Split" else layer
    return producers


def _require_sum_of(binary: NcnnLayer, expected: list[NcnnLayer], layers: list[NcnnLayer], param_path: Path) -> None:
    """Check that BinaryOp `binary` adds exactly the outputs of the `expected` layers."""
    producers = _blob_producers(layers)
    _require(binary.int_param(0) == 0, param_path, f"{binary.name} is not an addition")
    added = sorted(id(producers[blob]) for blob in binary.inputs if blob in producers)
    _require(added == sorted(id(layer) for layer in expected), param_path, f"{binary.name} adds the wrong inputs")


def _conv_tensors(state_dict: dict[str, Tensor], prefix: str, conv: _Conv, param_path: Path) -> None:
    _require(conv.bias is not None, param_path, f"{conv.layer.name} has no bias")
    state_dict[f"{prefix}.weight"] = conv.weight
    state_dict[f"{prefix}.bias"] = conv.bias


def _require_activation(conv: _Conv, leaky: bool, param_path: Path) -> None:
    if leaky:
        _require(
            conv.activation == NCNN_ACTIVATION_LEAKY_RELU and conv.layer.array_param(10) == [0.2],
            param_path,
            f"{conv.layer.name} should end in LeakyReLU(0.2)",
        )
    else:
        _require(conv.activation == NCNN_ACTIVATION_NONE, param_path, f"{conv.layer.name} should have no activation")


def _ncnn_rrdbnet(
    layers: list[NcnnLayer], kinds: Counter, convs: list[_Conv], param_path: Path
) -> tuple[NetworkSpec, dict[str, Tensor]]:
    """Map an ESRGAN/Real-ESRGAN RRDBNet export onto BasicSR's key names.

    Conv order: conv_first, body.{b}.rdb{1..3}.conv{1..5}, conv_body, conv_up1, conv_up2, conv_hr,
    conv_last. The residual scalings (x0.2), dense concatenations and nearest x2 upsamplings are
    checked against the layer list; Split layers only fan a blob out and Input only names it.
    """
    # conv_first, 15 per RRDB, then the 5 convolutions of the trunk end and the upsampler
    _require((len(convs) - 6) % 15 == 0 and len(convs) > 6, param_path, f"{len(convs)} convolutions")
    num_blocks = (len(convs) - 6) // 15
    # Each RRDB holds 3 dense blocks of 4 concatenations, 3 scaled residual adds and 1 outer one.
    _require(kinds["Concat"] == 12 * num_blocks, param_path, f"{kinds['Concat']} Concat layers")
    _require(kinds["Eltwise"] == 4 * num_blocks, param_path, f"{kinds['Eltwise']} Eltwise layers")
    _require(kinds["BinaryOp"] == 1, param_path, "trunk skip connection")
    _require(kinds["Interp"] == 2, param_path, f"{kinds['Interp']} upsampling layers (x4 models only)")
    for layer in layers:
        if layer.kind == "Eltwise":
            # sum with coefficients: the dense/RRDB output scaled by 0.2 plus the identity
            _require(layer.int_param(0) == 1 and layer.array_param(1) == [0.2, 1.0], param_path, layer.name)
        elif layer.kind == "Interp":
            _require(
                layer.int_param(0) == NCNN_INTERP_NEAREST and layer.float_param(1) == layer.float_param(2) == 2.0,
                param_path,
                f"{layer.name} is not a nearest x2 upsampling",
            )

    num_features = convs[0].out_channels
    growth_channels = convs[1].out_channels
    state_dict: dict[str, Tensor] = {}
    _require_activation(convs[0], False, param_path)
    _conv_tensors(state_dict, "conv_first", convs[0], param_path)
    for block in range(num_blocks):
        for dense in range(3):
            for index in range(5):
                conv = convs[1 + 15 * block + 5 * dense + index]
                expected_in = num_features + index * growth_channels
                expected_out = growth_channels if index < 4 else num_features
                _require(
                    (conv.in_channels, conv.out_channels) == (expected_in, expected_out),
                    param_path,
                    f"{conv.layer.name} has {conv.in_channels}->{conv.out_channels} channels",
                )
                _require_activation(conv, index < 4, param_path)
                _conv_tensors(state_dict, f"body.{block}.rdb{dense + 1}.conv{index + 1}", conv, param_path)
    # the trunk's long skip: conv_first's output plus conv_body's
    binary = next(layer for layer in layers if layer.kind == "BinaryOp")
    _require_sum_of(binary, [convs[0].layer, convs[-5].layer], layers, param_path)
    tail_names = ("conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last")
    for name, conv in zip(tail_names, convs[-5:]):
        _require_activation(conv, name in ("conv_up1", "conv_up2", "conv_hr"), param_path)
        _conv_tensors(state_dict, name, conv, param_path)
    spec = spec_from_shapes(
        "rrdbnet",
        in_channels=convs[0].in_channels,
        out_channels=convs[-1].out_channels,
        num_features=num_features,
        num_blocks=num_blocks,
        growth_channels=growth_channels,
        scale=4,
    )
    return spec, state_dict


def _ncnn_srvgg_compact(
    layers: list[NcnnLayer], kinds: Counter, convs: list[_Conv], slopes: list[Tensor], param_path: Path
) -> tuple[NetworkSpec, dict[str, Tensor]]:
    """Map a Real-ESRGAN SRVGGNetCompact export onto its key names.

    `body` alternates conv / PReLU and ends with a conv to out*scale^2 channels; PixelShuffle then
    adds the nearest-upsampled input. An export that resizes the result afterwards (the x2/x3
    animevideov3 files are the x4 network followed by a bicubic downscale) is refused.
    """
    _require(kinds["PixelShuffle"] == 1 and kinds["BinaryOp"] == 1, param_path, "output structure")
    _require(len(slopes) == len(convs) - 1, param_path, "a PReLU after every convolution but the last")
    shuffle = next(layer for layer in layers if layer.kind == "PixelShuffle")
    scale = shuffle.int_param(0, 1)
    interps = [layer for layer in layers if layer.kind == "Interp"]
    _require(
        len(interps) == 1
        and interps[0].int_param(0) == NCNN_INTERP_NEAREST
        and interps[0].float_param(1) == interps[0].float_param(2) == float(scale),
        param_path,
        f"the input should be nearest-upsampled x{scale} once and nothing else resized",
    )
    # the output is the pixel-shuffled body plus the upsampled input
    binary = next(layer for layer in layers if layer.kind == "BinaryOp")
    _require_sum_of(binary, [shuffle, interps[0]], layers, param_path)
    network_input = next(layer for layer in layers if layer.kind == "Input")
    _require(_blob_producers(layers)[interps[0].inputs[0]] is network_input, param_path, "upsampled input")

    state_dict: dict[str, Tensor] = {}
    for index, conv in enumerate(convs):
        _require_activation(conv, False, param_path)
        _conv_tensors(state_dict, f"body.{2 * index}", conv, param_path)
        if index < len(slopes):
            _require(slopes[index].numel() == conv.out_channels, param_path, "PReLU slopes per channel")
            state_dict[f"body.{2 * index + 1}.weight"] = slopes[index]
    in_channels = convs[0].in_channels
    _require(convs[-1].out_channels == in_channels * scale * scale, param_path, "last convolution's channels")
    spec = spec_from_shapes(
        "srvgg_compact",
        in_channels=in_channels,
        out_channels=in_channels,
        num_features=convs[0].out_channels,
        num_convs=len(convs) - 2,
        scale=scale,
        activation="prelu",
    )
    return spec, state_dict


def read(param_path: Path) -> ModelFile:
    """The model in an ncnn export; its `.bin` must sit next to the `.param`."""
    bin_path = param_path.with_suffix(".bin")
    spec, state_dict = convert_ncnn(param_path, bin_path)
    return ModelFile(spec, state_dict, {"source": f"ncnn export {param_path.name} + {bin_path.name}"}, "ncnn")
