"""Typed training configuration: dataclasses loaded from YAML, checked before any work starts.

A recipe is a YAML file whose keys mirror `TrainConfig`. It may carry named `presets` (partial configs
merged over the base) selected with the `preset` key, usually from the command line
(`--set preset=quick`). `--set a.b=c` overrides any key, with `c` parsed as a YAML scalar.

`load_config` checks structure, types and values (an unknown key names the nearest valid one);
`check_resources` checks what the config points at on disk (data folders, image sizes, weights files)
so a run fails in its first second rather than after an hour.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import re
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from srgan.errors import SrganError

PrecisionName = Literal["auto", "fp32", "bf16", "fp16"]


@dataclass
class NetworkConfig:
    arch: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    # Weights to start from: an exported model file (.safetensors/.pth) or a training checkpoint (.ckpt).
    init: str | None = None


@dataclass
class DataConfig:
    train_dirs: list[str]
    # Paired training: one LR folder per entry of train_dirs; without it LR patches are made by bicubic.
    train_lr_dirs: list[str] | None = None
    val_dir: str | None = None
    val_lr_dir: str | None = None
    # more validation sets (BasicSR's val_2, val_3, ...), each scored, logged and plotted under its
    # folder name; best.ckpt follows val_dir
    extra_val_dirs: list[str] = field(default_factory=list)
    hr_patch: int = 96
    batch_size: int = 16
    patches_per_image: int = 1
    augment: bool = True
    # "workers": PatchDataset + DataLoader processes; "device": images held on the training device,
    # batches cut there (srgan.data.sample_batch), faster on a GPU; HR-only data.
    loader: Literal["workers", "device"] = "workers"
    num_workers: int = 2
    # Large photos are cut once into sub-images (cached under prepared_dir), JPEGs downscaled first so
    # the model does not learn their compression artefacts. HR-only data.
    prepare: bool = True
    prepared_dir: str = "runs/prepared"
    subimage_size: int = 480
    subimage_step: int = 240
    jpeg_predownscale: float = 2.0
    val_max_images: int | None = None
    # Perceptual metrics validation also logs and plots, beside PSNR/SSIM: any of "niqe", "vif",
    # "lpips" (srgan.quality; NIQE and LPIPS read the files `srgan models fetch-niqe/-lpips` wrote).
    val_metrics: list[str] = field(default_factory=list)


@dataclass
class PixelLossConfig:
    kind: Literal["l1", "mse"] = "l1"
    weight: float = 1.0


@dataclass
class PerceptualLossConfig:
    # one layer name, or {layer: weight} (BasicSR's layer_weights), e.g. {conv2_2: 0.5, conv3_4: 1.0}
    layer: str | dict[str, float] = "vgg54"
    weights: str = ""
    convention: Literal["caffe", "torchvision"] = "torchvision"
    criterion: Literal["l1", "mse"] = "mse"
    rescale: float = 1.0
    weight: float = 1.0
    # Gram-matrix (style) loss on the same layers (BasicSR's style_weight; 0 = off)
    style_weight: float = 0.0


@dataclass
class AdversarialLossConfig:
    kind: Literal["vanilla", "ragan", "lsgan", "hinge", "wgan_gp"] = "vanilla"
    weight: float = 1e-3
    gradient_penalty_weight: float = 10.0


@dataclass
class LossesConfig:
    pixel: PixelLossConfig | None = None
    perceptual: PerceptualLossConfig | None = None
    adversarial: AdversarialLossConfig | None = None
    tv_weight: float = 0.0


@dataclass
class OptimizerConfig:
    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0


@dataclass
class ScheduleConfig:
    # cosine: one half-cosine over the run; cosine_restarts: one per entry of `periods` (BasicSR's
    # CosineAnnealingRestartLR), each restarting at lr x its `restart_weights` entry
    kind: Literal["constant", "multistep", "cosine", "cosine_restarts"] = "constant"
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.5
    min_lr: float = 1e-7
    periods: list[int] = field(default_factory=list)
    restart_weights: list[float] = field(default_factory=list)
    # linear ramp from lr/warmup_iterations to lr over the first iterations (BasicSR's warmup_iter; 0 = off)
    warmup_iterations: int = 0


@dataclass
class LoopConfig:
    iterations: int = 1000
    seed: int = 0
    device: str = "auto"
    precision: PrecisionName = "auto"
    ema_decay: float = 0.0
    grad_clip: float = 0.0
    # Generator-only pixel-loss iterations before the adversarial phase (stands in for a pretrained init).
    pixel_warmup_iterations: int = 0
    # adversarial phase: D steps every iteration, G every d_steps_per_g_step-th (BasicSR's net_d_iters),
    # and not at all in the first d_init_iterations (BasicSR's net_d_init_iters)
    d_steps_per_g_step: int = 1
    d_init_iterations: int = 0
    deterministic: bool = False
    # torch.compile the generator and discriminator: faster steps on a GPU after a minute of compiling
    compile: bool = False


@dataclass
class CheckpointConfig:
    every: int = 5000
    keep_last: int = 3


@dataclass
class LogConfig:
    every: int = 100
    val_every: int = 5000
    sample_images: int = 4
    sample_crop: int = 128
    # redraw the PNG plots at each validation (`srgan plot RUN_DIR` draws them any time)
    plots: bool = True
    tensorboard: Literal["auto", "on", "off"] = "auto"
    progress: Literal["auto", "on", "off"] = "auto"


@dataclass
class TrainConfig:
    name: str
    generator: NetworkConfig
    data: DataConfig
    scale: int = 4
    # Printed in the run's log (e.g. that a quick preset's numbers will not match the paper).
    note: str = ""
    preset: str | None = None
    discriminator: NetworkConfig | None = None
    losses: LossesConfig = field(default_factory=LossesConfig)
    optim_g: OptimizerConfig = field(default_factory=OptimizerConfig)
    optim_d: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: LoopConfig = field(default_factory=LoopConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- YAML -----------------------------------------------------------------------------------------


class _YamlLoader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-4` as a float (YAML 1.1 wants `1.0e-4`, which nobody writes)."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml_scalar(text: str) -> Any:
    return yaml.load(text, Loader=_YamlLoader) if text.strip() else ""


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SrganError(f"{path}: config file not found; pass the path of a YAML recipe such as configs/srgan_x4.yaml")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_YamlLoader)
    except yaml.YAMLError as error:
        raise SrganError(f"{path}: not valid YAML ({str(error).splitlines()[0]}); fix the file") from None
    if not isinstance(raw, dict):
        raise SrganError(f"{path}: a config must be a YAML mapping of keys to values")
    return raw


# --- building typed configs -----------------------------------------------------------------------


def _suggest(key: str, valid: typing.Iterable[str], prefix: str = "") -> str:
    valid = sorted(valid)
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if close:
        return f"did you mean '{_join(prefix, close[0])}'?"
    return "valid keys: " + ", ".join(valid)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is Literal:
        return " | ".join(repr(choice) for choice in typing.get_args(annotation))
    return getattr(annotation, "__name__", str(annotation)).replace("typing.", "")


def _convert(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        candidates = [arg for arg in args if arg is not type(None)]
        if len(candidates) > 1:
            # str | dict[...]: the candidate of the value's own kind
            matching = [arg for arg in candidates if isinstance(value, typing.get_origin(arg) or arg)]
            if not matching:
                raise SrganError(f"config key '{where}': expected {' or '.join(_type_name(arg) for arg in candidates)}, "
                                 f"got {value!r} ({type(value).__name__}); fix the value")
            candidates = matching[:1]
        return _convert(value, candidates[0], where)
    if origin is Literal:
        if isinstance(value, bool) and {"on", "off"} <= set(args):
            # YAML 1.1 reads a bare on/off as a boolean; take it back as the word the user wrote
            value = "on" if value else "off"
        if value not in args:
            hint = _suggest(str(value), [str(choice) for choice in args]).replace("valid keys", "choices")
            raise SrganError(f"config key '{where}': {value!r} is not allowed; {hint}")
        return value
    if dataclasses.is_dataclass(annotation):
        return _build(annotation, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise _type_error(where, value, annotation)
        return [_convert(item, args[0], f"{where}[{index}]") for index, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(where, value, annotation)
        key_type, value_type = args or (Any, Any)
        return {_convert(key, key_type, where): _convert(item, value_type, f"{where}.{key}") for key, item in value.items()}
    if annotation is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if annotation is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if annotation in (str, bool) and isinstance(value, annotation):
        return value
    raise _type_error(where, value, annotation)


def _type_error(where: str, value: Any, annotation: Any) -> SrganError:
    return SrganError(
        f"config key '{where}': expected {_type_name(annotation)}, got {value!r} ({type(value).__name__}); fix the value"
    )


def _build(cls: type, values: Any, prefix: str) -> Any:
    if not isinstance(values, dict):
        raise SrganError(f"config key '{prefix}': expected a mapping of keys to values, got {values!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in fields:
            raise SrganError(f"config key '{_join(prefix, str(key))}' is unknown; {_suggest(str(key), fields, prefix)}")
    kwargs = {}
    for name, spec in fields.items():
        if name in values:
            kwargs[name] = _convert(values[name], hints[name], _join(prefix, name))
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise SrganError(f"config key '{_join(prefix, name)}' is required; add it to the recipe or pass --set")
    return cls(**kwargs)


# --- presets and overrides ------------------------------------------------------------------------


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=c` -> (["a", "b"], c parsed as a YAML scalar)."""
    key, sep, value = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise SrganError(f"--set {text!r}: expected KEY=VALUE with a dotted key, e.g. --set train.iterations=1000")
    try:
        return parts, parse_yaml_scalar(value)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise SrganError(
            f"--set {text!r}: the value is not valid YAML ({problem}); quote it or close its brackets, "
            "e.g. --set \"data.train_dirs=[a,b]\""
        ) from None


def _set_nested(raw: dict[str, Any], parts: list[str], value: Any) -> None:
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise SrganError(f"--set {'.'.join(parts)}: '{'.'.join(parts[: depth + 1])}' is not a section")
        node = child
    node[parts[-1]] = value


def load_config(path: str | Path, overrides: typing.Sequence[str] = ()) -> TrainConfig:
    """Read a recipe, apply its preset (from `preset` or `--set preset=NAME`) and overrides, validate."""
    path = Path(path)
    raw = _read_yaml(path)
    parsed = [parse_override(text) for text in overrides]
    presets = raw.pop("presets", None) or {}
    if not isinstance(presets, dict):
        raise SrganError(f"{path}: 'presets' must map preset names to partial configs")
    preset = raw.get("preset")
    for parts, value in parsed:
        if parts == ["preset"]:
            preset = value
    if preset is not None:
        if preset not in presets:
            available = ", ".join(sorted(presets)) or "none"
            raise SrganError(f"preset {preset!r} is not defined in {path} (available: {available})")
        raw = _deep_merge(raw, presets[preset])
    for parts, value in parsed:
        _set_nested(raw, parts, value)
    raw["preset"] = preset
    raw.setdefault("name", path.stem)
    try:
        config = _build(TrainConfig, raw, "")
        _expand_home(config)
        validate_values(config)
    except SrganError as error:  # name the recipe: the key may come from it, its preset or an override
        raise SrganError(f"{path}: {error}") from None
    return config


def _expand_home(config: TrainConfig) -> None:
    """`~/...` in weight paths (where `srgan models fetch-vgg19` writes) means the user's home."""
    for network in (config.generator, config.discriminator):
        if network is not None and network.init:
            network.init = str(Path(network.init).expanduser())
    if config.losses.perceptual is not None:
        config.losses.perceptual.weights = str(Path(config.losses.perceptual.weights).expanduser())
    if config.discriminator is not None and isinstance(config.discriminator.kwargs.get("weights_path"), str):
        config.discriminator.kwargs["weights_path"] = str(Path(config.discriminator.kwargs["weights_path"]).expanduser())


# --- value checks ---------------------------------------------------------------------------------


def _require(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise SrganError(f"config key '{key}': {message}")


def validate_values(config: TrainConfig) -> None:
    """Ranges and cross-field consistency that the types alone cannot express."""
    import torch

    from srgan.archs.registry import ARCHS, build_arch

    for key, network in (("generator", config.generator), ("discriminator", config.discriminator)):
        if network is not None and network.arch not in ARCHS:
            raise SrganError(f"config key '{key}.arch': unknown arch {network.arch!r}; {_suggest(network.arch, ARCHS)}")
    _require("scale" not in config.generator.kwargs, "generator.kwargs.scale", "set the top-level 'scale' instead")
    try:
        # on the meta device: checks the builder's keyword arguments without allocating weights
        with torch.device("meta"):
            build_arch(config.generator.arch, {**config.generator.kwargs, "scale": config.scale})
    except SrganError as error:
        raise SrganError(f"config section 'generator': {error}") from None
    _require(config.scale in (2, 3, 4, 8), "scale", f"{config.scale} is not supported; use 2, 3, 4 or 8")
    data = config.data
    _require(len(data.train_dirs) > 0, "data.train_dirs", "list at least one folder of training images")
    if data.train_lr_dirs is not None:
        _require(
            len(data.train_lr_dirs) == len(data.train_dirs),
            "data.train_lr_dirs",
            "give one LR folder per entry of data.train_dirs (or null for bicubic LR made on the fly)",
        )
    _require(data.hr_patch > 0 and data.hr_patch % config.scale == 0, "data.hr_patch", "must be a positive multiple of scale")
    for key in ("batch_size", "patches_per_image"):
        _require(getattr(data, key) >= 1, f"data.{key}", "must be at least 1")
    _require(data.num_workers >= 0, "data.num_workers", "must be 0 or more")
    if data.train_lr_dirs is not None:
        _require(not data.prepare, "data.prepare", "set it to false for paired data (sub-images are cut from HR only)")
        _require(data.loader == "workers", "data.loader", "use 'workers' for paired data")
    if data.extra_val_dirs:
        _require(data.val_dir is not None, "data.extra_val_dirs", "needs data.val_dir (the set best.ckpt follows)")
    if data.prepare:
        _require(data.subimage_size >= data.hr_patch, "data.subimage_size", "must be at least data.hr_patch")
    if config.discriminator is not None and config.discriminator.arch == "srgan_discriminator":
        input_size = _discriminator_option(config, "input_size")
        _require(
            _discriminator_option(config, "any_size") or input_size == data.hr_patch,
            "discriminator.kwargs.input_size",
            f"{input_size} differs from data.hr_patch {data.hr_patch}; the dense layer fixes the input size",
        )
    loop = config.train
    _require(loop.iterations >= 1, "train.iterations", "must be at least 1")
    _require(0.0 <= loop.ema_decay < 1.0, "train.ema_decay", "must be in [0, 1) (0 turns EMA off)")
    _require(loop.grad_clip >= 0, "train.grad_clip", "must be 0 (off) or a positive max norm")
    _require(loop.pixel_warmup_iterations >= 0, "train.pixel_warmup_iterations", "must be 0 or more")
    for key in ("checkpoint.every", "log.every", "log.val_every"):
        section, name = key.split(".")
        _require(getattr(getattr(config, section), name) >= 1, key, "must be at least 1")
    _require(config.checkpoint.keep_last >= 1, "checkpoint.keep_last", "must be at least 1")
    for key in ("optim_g", "optim_d"):
        optimizer = getattr(config, key)
        _require(optimizer.lr > 0, f"{key}.lr", "must be positive")
        _require(len(optimizer.betas) == 2, f"{key}.betas", "give two values, e.g. [0.9, 0.999]")
    schedule = config.schedule
    _require(schedule.milestones == sorted(schedule.milestones), "schedule.milestones", "must be increasing")
    _require(schedule.warmup_iterations >= 0, "schedule.warmup_iterations", "must be 0 (off) or more")
    if schedule.kind == "cosine_restarts":
        _require(bool(schedule.periods) and all(period >= 1 for period in schedule.periods), "schedule.periods",
                 "list one length (>= 1 iteration) per cosine cycle, e.g. [250000, 250000, 250000, 250000]")
        _require(len(schedule.restart_weights) == len(schedule.periods), "schedule.restart_weights",
                 f"give one weight per period ({len(schedule.periods)}), e.g. [1, 1, 1, 1]")
    _require(loop.d_steps_per_g_step >= 1, "train.d_steps_per_g_step", "must be at least 1")
    _require(loop.d_init_iterations >= 0, "train.d_init_iterations", "must be 0 or more")
    if loop.d_steps_per_g_step > 1 or loop.d_init_iterations:
        _require(config.discriminator is not None, "train.d_steps_per_g_step" if loop.d_steps_per_g_step > 1
                 else "train.d_init_iterations", "is for GAN recipes (with a discriminator)")
    losses = config.losses
    if not any((losses.pixel, losses.perceptual, losses.adversarial)):
        raise SrganError("config section 'losses': enable at least one of pixel, perceptual, adversarial")
    if losses.adversarial is not None and config.discriminator is None:
        raise SrganError("config key 'losses.adversarial' needs a 'discriminator' section (arch and kwargs)")
    if config.discriminator is not None and losses.adversarial is None:
        raise SrganError("config section 'discriminator' is set but 'losses.adversarial' is not; add it or remove the discriminator")
    if loop.pixel_warmup_iterations:
        _require(config.discriminator is not None, "train.pixel_warmup_iterations", "is for GAN recipes; set it to 0")
        _require(losses.pixel is not None, "train.pixel_warmup_iterations", "needs 'losses.pixel' (the warm-up uses it)")
    if losses.adversarial is not None and losses.adversarial.kind == "wgan_gp":
        _require(
            _discriminator_option(config, "norm") == "none",
            "discriminator.kwargs.norm",
            "WGAN-GP's per-sample gradient penalty needs a critic without BatchNorm; set it to 'none'",
        )
    if losses.perceptual is not None:
        _require(bool(losses.perceptual.weights), "losses.perceptual.weights", "give the VGG19 weights file to use")
        _require(bool(losses.perceptual.layer), "losses.perceptual.layer", "name a layer or give {layer: weight, ...}")
        _require(losses.perceptual.style_weight >= 0, "losses.perceptual.style_weight", "must be 0 (off) or positive")


def _discriminator_option(config: TrainConfig, name: str) -> Any:
    """A discriminator keyword argument as the builder will see it: from the config or its default."""
    from srgan.archs.registry import ARCHS

    discriminator = config.discriminator
    if name in discriminator.kwargs:
        return discriminator.kwargs[name]
    parameter = inspect.signature(ARCHS[discriminator.arch]).parameters.get(name)
    return None if parameter is None else parameter.default


# --- what the config points at ---------------------------------------------------------------------


def check_resources(config: TrainConfig) -> None:
    """Fail fast on missing folders, empty folders, too-small images and weights files that do not fit."""
    from srgan.archs.registry import build_arch
    from srgan.archs.vgg import VGGFeatureExtractor

    data = config.data
    for key, folders in (("data.train_dirs", data.train_dirs), ("data.train_lr_dirs", data.train_lr_dirs or [])):
        for folder in folders:
            _check_folder(key, Path(folder))
    if not data.prepare:
        minimum = data.hr_patch
        for folder in data.train_dirs:
            _check_image_sizes(Path(folder), minimum)
    for key, folder in (("data.val_dir", data.val_dir), ("data.val_lr_dir", data.val_lr_dir),
                        *((f"data.extra_val_dirs[{index}]", folder) for index, folder in enumerate(data.extra_val_dirs))):
        if folder is not None:
            _check_folder(key, Path(folder))
    if data.val_metrics:
        from srgan.quality.registry import Scorer

        try:  # unknown names and missing NIQE/LPIPS files, before hours of training
            Scorer(data.val_metrics)
        except SrganError as error:
            raise SrganError(f"config key 'data.val_metrics': {error}") from None
    if config.generator.init and not Path(config.generator.init).is_file():
        raise SrganError(
            f"config key 'generator.init': {config.generator.init} not found{_relative_note(config.generator.init)}; train and export that model first "
            "(see docs/TRAINING.md) or set generator.init=null with train.pixel_warmup_iterations"
        )
    if config.discriminator is not None and config.discriminator.init:
        if not Path(config.discriminator.init).is_file():
            raise SrganError(
                f"config key 'discriminator.init': {config.discriminator.init} not found"
                f"{_relative_note(config.discriminator.init)}; give a training "
                "checkpoint (.ckpt) or a discriminator state dict (.pth/.safetensors), or set discriminator.init=null"
            )
    perceptual = config.losses.perceptual
    if perceptual is not None:
        try:
            VGGFeatureExtractor(perceptual.layer, perceptual.weights, perceptual.convention)
        except SrganError as error:
            raise SrganError(
                f"config section 'losses.perceptual' ({perceptual.layer}): {error}{_relative_note(perceptual.weights)} "
                "(`srgan models fetch-vgg19` downloads the full VGG19)"
            ) from None
    if config.discriminator is not None:
        try:
            build_arch(config.discriminator.arch, config.discriminator.kwargs)
        except SrganError as error:
            raise SrganError(
                f"config section 'discriminator': {error} (`srgan models fetch-vgg19` downloads the full VGG19)"
            ) from None


def _relative_note(path: str | Path) -> str:
    """For an error about a path: where a relative one was looked for (the working directory, not the recipe's folder)."""
    if Path(path).is_absolute():
        return ""
    return f" (a relative path: read from the working directory {Path.cwd()}, not from the recipe's folder)"


def _check_folder(key: str, folder: Path) -> None:
    from srgan.data.files import images_in_folder

    try:
        images_in_folder(folder)
    except SrganError as error:
        raise SrganError(f"config key '{key}': {error}{_relative_note(folder)}") from None


def _check_image_sizes(folder: Path, minimum: int) -> None:
    """Header-only size check, so a too-small image is reported before minutes of decoding."""
    from PIL import Image

    from srgan.data.files import images_in_folder

    for path in images_in_folder(folder):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as image:
                    width, height = image.size
        except (OSError, Image.DecompressionBombError):
            continue  # unreadable and oversized files are skipped with a warning when the data is loaded
        if min(width, height) < minimum:
            raise SrganError(
                f"{path}: {width}x{height} is smaller than the {minimum}x{minimum} HR patch (data.hr_patch); "
                "remove it or lower data.hr_patch"
            )
