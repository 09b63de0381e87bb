"""Model files: srgan's safetensors (weights + metadata), BasicSR/Real-ESRGAN `.pth`, ncnn `.param`/`.bin`.

An srgan model file is a safetensors file whose header says how to rebuild the network:
`format=srgan`, `arch` (a key of `srgan.archs.registry.ARCHS`), `scale`, `kwargs` (the builder's
keyword arguments as JSON), plus free-form provenance (`trained_on`, `iterations`, `source`,
`license`, ...). Foreign files carry no such header, so their architecture is read off the key
names and tensor shapes instead. `.pth` files are only ever opened with `weights_only=True`: a
pickle that would run code is refused, never executed.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from srgan.errors import SrganError
from srgan.fileutil import atomic_write

FORMAT_TAG = "srgan"
PTH_SUFFIXES = (".pth", ".pt", ".ckpt")
MODEL_FILE_SUFFIXES = (".safetensors", *PTH_SUFFIXES, ".param")

RRDBNET = "rrdbnet"
SRVGG_COMPACT = "srvgg_compact"


def save_model(
    path: str | os.PathLike,
    model: nn.Module | dict[str, Tensor],
    *,
    arch: str,
    kwargs: dict,
    scale: int,
    metadata: dict[str, object] | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Write `model`'s weights and how to rebuild it to a safetensors file, atomically.

    `metadata` adds provenance keys (values are stored as strings). `dtype=torch.float16` halves the
    file; floating tensors are cast, integer buffers are kept as they are.
    """
    from safetensors.torch import save_file

    state_dict = model.state_dict() if isinstance(model, nn.Module) else model
    tensors = {}
    for key, tensor in state_dict.items():
        tensor = tensor.detach().to("cpu")
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensors[key] = tensor.contiguous()
    header = {str(key): str(value) for key, value in (metadata or {}).items()}
    header.update(format=FORMAT_TAG, arch=arch, scale=str(int(scale)), kwargs=json.dumps(kwargs, sort_keys=True))
    with atomic_write(path) as temp_path:
        save_file(tensors, str(temp_path), metadata=header)


def read_model_file(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Read weights and metadata from `.safetensors`, a BasicSR/Real-ESRGAN `.pth`, or an ncnn `.param`.

    For foreign files whose architecture can be recognised, the returned metadata is filled in
    with `arch`, `scale` and `kwargs` as srgan's own files carry them (see `describe_state_dict`).
    Raises SrganError naming the file when it is missing, truncated or not a model file.
    """
    path = Path(path)
    if not path.is_file():
        raise SrganError(f"{path}: model file not found; check the path")
    suffix = path.suffix.lower()
    if suffix == ".param":
        bin_path = path.with_suffix(".bin")
        arch, kwargs, state_dict = convert_ncnn(path, bin_path)
        return state_dict, {"source": f"ncnn export {path.name} + {bin_path.name}", **_structure_metadata(arch, kwargs)}
    if suffix == ".safetensors":
        state_dict, metadata = _read_safetensors(path)
    elif suffix in PTH_SUFFIXES:
        state_dict, metadata = read_pth_state_dict(path), {"source": path.name}
    else:
        raise SrganError(f"{path}: unsupported model file type {suffix!r}; use .safetensors, .pth or ncnn .param")
    # Weights published as safetensors by other projects carry no srgan header either.
    if "arch" not in metadata and (described := describe_state_dict(state_dict)) is not None:
        metadata.update(_structure_metadata(*described))
    return state_dict, metadata


def model_structure(metadata: dict[str, str], *, path: str | os.PathLike) -> tuple[str, dict, int]:
    """(arch, builder kwargs, scale) from a model file's metadata; SrganError naming `path` if unknown."""
    if "arch" not in metadata or "kwargs" not in metadata:
        raise SrganError(
            f"{path}: the network's architecture is not recorded in the file and could not be recognised "
            "from its weights; only RRDBNet and SRVGGNetCompact are recognised without srgan metadata"
        )
    try:
        kwargs = json.loads(metadata["kwargs"])
        scale = int(metadata.get("scale", kwargs.get("scale", 0)))
    except (ValueError, TypeError) as error:
        raise SrganError(f"{path}: damaged metadata ({error}); re-export the model") from None
    return metadata["arch"], kwargs, scale


def _structure_metadata(arch: str, kwargs: dict) -> dict[str, str]:
    return {"arch": arch, "scale": str(kwargs["scale"]), "kwargs": json.dumps(kwargs, sort_keys=True)}


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata header of a safetensors file, without loading its tensors."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError) as error:
        raise SrganError(f"{path}: not a readable safetensors file ({error}); re-download or re-export it") from None


def _read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    metadata = read_metadata(path)
    try:
        state_dict = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise SrganError(f"{path}: not a readable safetensors file ({error}); re-download or re-export it") from None
    return state_dict, metadata


def read_pth_state_dict(path: Path, *, shown_as: str | None = None) -> dict[str, Tensor]:
    """The generator state dict of a `.pth`; errors name `shown_as` (default: the path)."""
    from srgan.safeload import load_weights_only

    label = shown_as or path
    checkpoint = load_weights_only(path, shown_as=label)
    return _unwrap_checkpoint(checkpoint, label)


def _unwrap_checkpoint(checkpoint: object, label: str | Path) -> dict[str, Tensor]:
    """The generator's state dict from a BasicSR-style checkpoint: EMA weights first, no `module.` prefix."""
    if isinstance(checkpoint, dict):
        for key in ("params_ema", "params", "state_dict"):
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
    if (
        not isinstance(checkpoint, dict)
        or not checkpoint
        or not all(isinstance(value, Tensor) for value in checkpoint.values())
    ):
        raise SrganError(f"{label}: no state dict of tensors found in the checkpoint; expected a generator's weights")
    return {key.removeprefix("module."): value for key, value in checkpoint.items()}


# --- recognising foreign networks from their weights -------------------------------------------


def describe_state_dict(state_dict: dict[str, Tensor]) -> tuple[str, dict] | None:
    """(arch, builder kwargs incl. scale) for RRDBNet (BasicSR names) or SRVGGNetCompact
    (Real-ESRGAN names) weights, or None when the layout is neither."""
    if {"conv_first.weight", "body.0.rdb1.conv1.weight", "conv_last.weight"} <= state_dict.keys():
        return RRDBNET, _describe_rrdbnet(state_dict)
    # PReLU slopes (body.1.weight) are what tell SRVGGNetCompact apart; ReLU variants carry no trace of
    # their activation, so they are not guessed at.
    body_1 = state_dict.get("body.1.weight")
    if "body.0.weight" in state_dict and body_1 is not None and body_1.ndim == 1:
        return SRVGG_COMPACT, _describe_srvgg_compact(state_dict)
    return None


def _builder_kwargs(**kwargs) -> dict:
    """Builder keyword arguments as plain ints/strs (shapes arrive as torch.Size entries)."""
    return {key: value if isinstance(value, str) else int(value) for key, value in kwargs.items()}


def _describe_rrdbnet(state_dict: dict[str, Tensor]) -> dict:
    first = state_dict["conv_first.weight"]
    out_channels = state_dict["conv_last.weight"].shape[0]
    # BasicSR's x2 / x1 models pixel-unshuffle the input first, multiplying its channels by 4 / 16.
    unshuffled = first.shape[1] // out_channels
    scale = {1: 4, 4: 2, 16: 1}.get(unshuffled, 4)
    blocks = {int(key.split(".")[1]) for key in state_dict if key.startswith("body.") and ".rdb" in key}
    return _builder_kwargs(
        in_channels=first.shape[1] * scale * scale // 16,
        out_channels=out_channels,
        num_features=first.shape[0],
        num_blocks=len(blocks),
        growth_channels=state_dict["body.0.rdb1.conv1.weight"].shape[0],
        scale=scale,
    )


def _describe_srvgg_compact(state_dict: dict[str, Tensor]) -> dict:
    layers = sorted(
        (int(key.split(".")[1]), tensor)
        for key, tensor in state_dict.items()
        if key.startswith("body.") and key.endswith(".weight")
    )
    convs = [tensor for _, tensor in layers if tensor.ndim == 4]
    in_channels = convs[0].shape[1]
    scale = round((convs[-1].shape[0] / in_channels) ** 0.5)
    return _builder_kwargs(
        in_channels=in_channels,
        out_channels=in_channels,
        num_features=convs[0].shape[0],
        num_convs=len(convs) - 2,
        scale=scale,
        activation="prelu",
    )


# --- ncnn .param / .bin ------------------------------------------------------------------------

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


def convert_ncnn(param_path: str | os.PathLike, bin_path: str | os.PathLike) -> tuple[str, dict, dict[str, Tensor]]:
    """(arch, builder kwargs, state dict) for an RRDBNet or SRVGGNetCompact ncnn export.

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
) -> tuple[str, dict, dict[str, Tensor]]:
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
    kwargs = _builder_kwargs(
        in_channels=convs[0].in_channels,
        out_channels=convs[-1].out_channels,
        num_features=num_features,
        num_blocks=num_blocks,
        growth_channels=growth_channels,
        scale=4,
    )
    return RRDBNET, kwargs, state_dict


def _ncnn_srvgg_compact(
    layers: list[NcnnLayer], kinds: Counter, convs: list[_Conv], slopes: list[Tensor], param_path: Path
) -> tuple[str, dict, dict[str, Tensor]]:
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
    kwargs = _builder_kwargs(
        in_channels=in_channels,
        out_channels=in_channels,
        num_features=convs[0].out_channels,
        num_convs=len(convs) - 2,
        scale=scale,
        activation="prelu",
    )
    return SRVGG_COMPACT, kwargs, state_dict
