"""Benchmark runner: every model on every dataset under the standard SR protocol -> tables, files, figures.

The protocol (the one behind the published tables, see docs/EVALUATION.md):

- the HR image is cropped to a multiple of the scale; the LR input is MATLAB bicubic of it computed on
  8-bit pixels (bit-exact with the LR files MATLAB writes), or read from an LR folder;
- each model's output is rounded to 8 bits, as if saved to PNG and read back;
- PSNR / SSIM on the BT.601 Y channel (or RGB) with `scale` pixels cropped at each border;
- a gray image file (1 channel, such as Set14's bridge.png) goes into the models as three equal
  channels; the output's channel mean is scored against the gray values, never through the Y formula
  (which would compress the range to 16..235 and inflate PSNR). An RGB file is scored as RGB even when
  its channels are equal (Set14's man.png), as the published tables do;
- bicubic upscaling is always evaluated too, as the reference row;
- PSNR and SSIM are always computed; `metrics` chooses what the tables show and adds perceptual
  metrics from `srgan.quality` (NIQE, VIF) under the same crop and channel rules.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from srgan.errors import SrganError
from srgan.fileutil import atomic_write, atomic_write_bytes
from srgan.models import BICUBIC
from srgan.quality.registry import DEFAULT_METRICS, METRICS, Scorer, parse_metrics

# Side of the HR region shown in comparison figures (smaller images are shown whole).
FIGURE_CROP = 128


@dataclass(frozen=True)
class Protocol:
    """How images were scored; `describe()` is printed next to every table."""

    scale: int
    y_channel: bool
    crop_border: int
    metrics: tuple[str, ...] = DEFAULT_METRICS

    @property
    def channel(self) -> str:
        return "Y" if self.y_channel else "RGB"

    @property
    def lower_is_better(self) -> list[str]:
        return [name for name in self.metrics if METRICS[name].lower_is_better]

    def describe(self) -> str:
        channel = "the Y channel (BT.601, as MATLAB's rgb2ycbcr)" if self.y_channel else "RGB"
        extras = {
            "niqe": "NIQE (no reference) on Y, 96x96 blocks, official pristine model",
            "vif": f"VIFp (sewar) on {self.channel}",
            "lpips": "LPIPS v0.1 on RGB",
        }
        extra_text = "".join(f"; {text}" for name, text in extras.items() if name in self.metrics)
        return (
            f"x{self.scale}; PSNR (dB) / SSIM (11x11 Gaussian, sigma 1.5) on {channel}{extra_text}; "
            f"{self.crop_border} px cropped at each border; HR cropped to a multiple of {self.scale}; "
            "outputs rounded to 8 bits; 1-channel images scored on their gray values"
        )


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset as scored: `images` read and scored, `missing` the messages of files left out."""

    name: str
    hr_dir: str
    lr_dir: str | None
    images: int
    scale: int
    missing: tuple[str, ...] = ()

    @property
    def partial(self) -> bool:
        return bool(self.missing)

    @property
    def label(self) -> str:
        """Column label: "Set5 (5 images)", or "Set5 (4 of 5 images, PARTIAL)" when files were left out."""
        if self.partial:
            return f"{self.name} ({self.images} of {self.images + len(self.missing)} images, PARTIAL)"
        return f"{self.name} ({self.images} images)"

    @property
    def lr_source(self) -> str:
        if self.lr_dir is not None:
            return f"read from {self.lr_dir}"
        return f"MATLAB bicubic (antialiased, x1/{self.scale}) of the HR, on 8-bit pixels"


@dataclass(frozen=True)
class ImageScore:
    dataset: str
    image: str
    model: str
    psnr: float
    ssim: float
    extra: dict[str, float] = field(default_factory=dict)  # the other metrics asked for, by name

    def value(self, metric: str) -> float:
        return getattr(self, metric) if metric in ("psnr", "ssim") else self.extra[metric]


@dataclass(frozen=True)
class MeanScore:
    dataset: str
    model: str
    images: int
    psnr: float
    ssim: float
    extra: dict[str, float] = field(default_factory=dict)

    def value(self, metric: str) -> float:
        return getattr(self, metric) if metric in ("psnr", "ssim") else self.extra[metric]


@dataclass
class EvaluationReport:
    """Scores of every model on every image, with the protocol and where the data came from."""

    protocol: Protocol
    models: list[str]
    datasets: list[DatasetInfo]
    scores: list[ImageScore]

    def means(self) -> list[MeanScore]:
        """Per (dataset, model) means, datasets and models in the order they were given."""
        means = []
        for dataset in self.datasets:
            for model in self.models:
                rows = [s for s in self.scores if s.dataset == dataset.name and s.model == model]
                if rows:
                    means.append(
                        MeanScore(
                            dataset.name,
                            model,
                            len(rows),
                            sum(row.psnr for row in rows) / len(rows),
                            sum(row.ssim for row in rows) / len(rows),
                            {name: sum(row.extra[name] for row in rows) / len(rows) for name in rows[0].extra},
                        )
                    )
        return means

    def mean_of(self, dataset: str, model: str) -> MeanScore:
        for mean in self.means():
            if (mean.dataset, mean.model) == (dataset, model):
                return mean
        raise KeyError(f"no scores for model {model!r} on dataset {dataset!r}")

    def to_dict(self) -> dict:
        return {
            "protocol": {
                **asdict(self.protocol),
                "channel": self.protocol.channel,
                "lower_is_better": self.protocol.lower_is_better,
                "description": self.protocol.describe(),
            },
            "datasets": [
                {**asdict(dataset), "partial": dataset.partial, "lr_source": dataset.lr_source}
                for dataset in self.datasets
            ],
            "models": list(self.models),
            "means": [asdict(mean) for mean in self.means()],
            "per_image": [asdict(score) for score in self.scores],
        }


def evaluate_models(
    models: Sequence,
    datasets: Sequence[str | os.PathLike],
    scale: int,
    *,
    lr_dirs: Sequence[str | os.PathLike] | None = None,
    y_channel: bool = True,
    crop_border: int | None = None,
    device: str | None = None,
    tile: int | None = None,
    figures_dir: str | os.PathLike | None = None,
    progress: bool | None = None,
    allow_missing: bool = False,
    metrics: Sequence[str] | str = DEFAULT_METRICS,
    niqe_params: str | os.PathLike | None = None,
    lpips_weights: str | os.PathLike | None = None,
) -> EvaluationReport:
    """Evaluate `models` (names, model file paths or `LoadedModel`s) on HR folders `datasets`.

    Bicubic is added as the first model when not given. `lr_dirs`, one per dataset, supplies LR images
    instead of making them. `crop_border` defaults to `scale`. `device` and `tile` go to the tiled
    `Upscaler`. With `figures_dir`, one comparison figure per image is written to
    `figures_dir/<dataset>/<image>.png`, and with NIQE or LPIPS among `metrics` the
    perception-distortion plane `figures_dir/perception_distortion.png` (NIQE, else LPIPS, across).
    `progress=None` shows progress bars only on a terminal. `metrics` (names of
    `srgan.quality.registry.METRICS`) are shown in the tables; PSNR and SSIM are always computed.
    `niqe_params` and `lpips_weights` default to the fetched files.

    An unreadable (truncated, corrupt) HR or LR file is an error naming it: a mean over part of a
    benchmark is not comparable with published tables. With `allow_missing` such files are left out and
    the dataset is marked partial (`DatasetInfo.missing`), which every table and file then shows.
    """
    from srgan.data.files import as_path_list, unique_folder_labels
    from srgan.data.store import progress_bar
    from srgan.data.validation import ImageFolderPairs
    from srgan.inference import Upscaler

    if scale < 1 or scale != int(scale):
        raise SrganError(f"scale {scale}: must be a positive integer")
    crop_border = scale if crop_border is None else crop_border
    if crop_border < 0:
        raise SrganError(f"crop border {crop_border}: must be 0 or more pixels")
    hr_folders = as_path_list(datasets)
    if not hr_folders:
        raise SrganError("no dataset given; pass at least one folder of HR images (--data DIR)")
    lr_folders = as_path_list(lr_dirs) if lr_dirs else [None] * len(hr_folders)
    if len(lr_folders) != len(hr_folders):
        raise SrganError(
            f"got {len(hr_folders)} datasets but {len(lr_folders)} LR folders; give one --lr-dir per --data, in order"
        )
    for folder in (*hr_folders, *(f for f in lr_folders if f is not None)):
        # ImageFolderPairs would say the same, but only after decoding the earlier datasets.
        if not Path(folder).is_dir():
            raise SrganError(f"{folder}: folder not found; check the path")

    protocol = Protocol(int(scale), y_channel, crop_border, parse_metrics(metrics))
    extras = [name for name in protocol.metrics if name not in ("psnr", "ssim")]
    scorer = Scorer(extras, niqe_params=niqe_params, lpips_weights=lpips_weights, device=device) if extras else None
    labels, loaded_models = _load_models(models, protocol.scale)
    upscalers = [Upscaler(model, device=device, tile=tile) for model in loaded_models]
    report = EvaluationReport(protocol, labels, [], [])
    for name, hr_folder, lr_folder in zip(unique_folder_labels(hr_folders), hr_folders, lr_folders):
        with warnings.catch_warnings():
            # Unreadable files are an error or recorded in the report (DatasetInfo.missing) instead.
            warnings.filterwarnings("ignore", message="skipping unreadable image")
            pairs = ImageFolderPairs(hr_folder, scale=protocol.scale, lr_dir=lr_folder, progress=progress)
        missing = tuple(pairs.store.skipped)
        if missing and not allow_missing:
            others = f" (and {len(missing) - 1} more unreadable files)" if len(missing) > 1 else ""
            raise SrganError(
                f"{missing[0]}{others}; replace the damaged files, or pass --allow-missing to score the rest "
                "(the dataset is then marked PARTIAL)"
            )
        lr_dir = None if lr_folder is None else str(lr_folder)
        report.datasets.append(DatasetInfo(name, str(hr_folder), lr_dir, len(pairs), protocol.scale, missing))
        for index in progress_bar(range(len(pairs)), description=name, enabled=progress):
            image_name, lr, hr = pairs[index]
            stored = pairs.store.images[index]
            outputs = [_upscale_8bit(upscaler, lr) for upscaler in upscalers]
            # The file's colour model decides, not its pixels: published tables score man.png (RGB
            # with equal channels) on Y but bridge.png (1 channel) on its gray values.
            image_scores = [
                score_image(output, hr, stored.is_gray, protocol, str(stored.pair.hr_path), scorer)
                for output in outputs
            ]
            report.scores += [ImageScore(name, image_name, label, *values) for label, values in zip(labels, image_scores)]
            if figures_dir is not None:
                figure_path = Path(figures_dir) / name / f"{image_name}.png"
                title = f"{name}/{image_name}, x{protocol.scale}, {protocol.channel}"
                shown = [(psnr_value, ssim_value) for psnr_value, ssim_value, _ in image_scores]
                save_comparison_figure(figure_path, title, lr, hr, list(zip(labels, outputs, shown)), protocol.scale)
    perceptual = [name for name in ("niqe", "lpips") if name in protocol.metrics]
    if figures_dir is not None and perceptual:
        save_perception_distortion_figure(Path(figures_dir) / "perception_distortion.png", report, perceptual[0])
    return report


def _load_models(models: Sequence, scale: int) -> tuple[list[str], list]:
    """Load every model (bicubic first if missing), with a unique label each."""
    from srgan.models import LoadedModel, load_model

    requested = list(models)
    if not any(_is_bicubic(model) for model in requested):
        requested.insert(0, BICUBIC)
    labels, loaded_models = [], []
    for model in requested:
        loaded = model if isinstance(model, LoadedModel) else load_model(model, scale=scale)
        if loaded.scale != scale:
            raise SrganError(f"{loaded.name}: this model upscales x{loaded.scale}, not x{scale}; pick a x{scale} model")
        if loaded.in_channels != 3 or loaded.out_channels != 3:
            raise SrganError(
                f"{loaded.name}: takes {loaded.in_channels}-channel input and gives {loaded.out_channels}; "
                "srgan eval scores RGB models"
            )
        label = loaded.name
        if label in labels and isinstance(model, (str, os.PathLike)):
            # Two files with the same name (runs/a/model.safetensors, runs/b/...): tell them apart by path.
            label = os.fspath(model)
        if label in labels:
            raise SrganError(f"{label}: model given twice; pass each model once")
        labels.append(label)
        loaded_models.append(loaded)
    return labels, loaded_models


def _is_bicubic(model) -> bool:
    name = model if isinstance(model, str) else getattr(model, "name", None)
    return isinstance(name, str) and name.lower() == BICUBIC


def _upscale_8bit(upscaler, lr: Tensor) -> Tensor:
    """(3,h,w) float -> (3,H,W) model output rounded to 8-bit levels (what a saved PNG would hold)."""
    return _round_to_8_bits(upscaler.upscale_tensor(lr[None])[0])


def _round_to_8_bits(image: Tensor) -> Tensor:
    from srgan.data.store import to_float, to_uint8

    return to_float(to_uint8(image))


def score_image(
    output: Tensor, hr: Tensor, gray: bool, protocol: Protocol, image: str, scorer: Scorer | None = None
) -> tuple[float, float, dict[str, float]]:
    """(PSNR, SSIM, {other metric: value}) of one (3,H,W) model output against its HR image under
    `protocol`: the output rounded to 8 bits (a no-op for an already rounded one), a gray HR file scored
    on gray values, the metrics beyond PSNR/SSIM by `scorer`. `srgan eval` and training's validation both
    score through here, so `best.ckpt` is chosen on the eval table's number."""
    from srgan.metrics import psnr, ssim

    output = _round_to_8_bits(output.float().cpu())
    if gray:
        output, hr = output.mean(dim=0, keepdim=True), hr[:1]
    options = {"crop_border": protocol.crop_border, "y_channel": protocol.y_channel}
    try:
        extra = scorer.score(output[None], hr[None], **options) if scorer is not None else {}
        return (
            psnr(output[None], hr[None], **options).item(),
            ssim(output[None], hr[None], **options).item(),
            {name: value.item() for name, value in extra.items()},
        )
    except ValueError as error:  # the image is too small for the crop, the SSIM window or NIQE's blocks
        raise SrganError(f"{image}: cannot be scored ({error}); remove it or lower --crop-border") from None


def _detail_crop(hr: Tensor, side: int, scale: int) -> tuple[int, int]:
    """Top-left corner (multiples of `scale`) of the `side` x `side` HR region with the most detail."""
    luma = hr.mean(dim=0)
    detail = torch.zeros_like(luma)
    detail[:, 1:] += (luma[:, 1:] - luma[:, :-1]).abs()
    detail[1:, :] += (luma[1:, :] - luma[:-1, :]).abs()
    energy = torch.nn.functional.avg_pool2d(detail[None, None], side, stride=scale)[0, 0]
    row, col = divmod(int(energy.argmax()), energy.shape[1])
    return row * scale, col * scale


def save_comparison_figure(
    path: str | os.PathLike,
    title: str,
    lr: Tensor,
    hr: Tensor,
    results: list[tuple[str, Tensor, tuple[float, float]]],
    scale: int,
) -> None:
    """One PNG with the same region of the LR input, each model's output (with PSNR/SSIM) and the HR.

    `results` holds (label, output (3,H,W), (psnr, ssim)) per model; the region is the most detailed
    `FIGURE_CROP`-pixel square of the HR image.
    """
    from matplotlib.figure import Figure

    height, width = hr.shape[1:]
    side = min(FIGURE_CROP, height, width) // scale * scale
    top, left = _detail_crop(hr, side, scale)
    panels = [("LR input", lr[:, top // scale : (top + side) // scale, left // scale : (left + side) // scale])]
    panels += [
        (f"{label}\n{psnr_value:.2f} dB / {ssim_value:.4f}", output[:, top : top + side, left : left + side])
        for label, output, (psnr_value, ssim_value) in results
    ]
    panels.append(("HR (ground truth)", hr[:, top : top + side, left : left + side]))

    figure = Figure(figsize=(2.2 * len(panels), 2.9), layout="constrained")
    figure.suptitle(title, fontsize=9)
    for axes, (caption, pixels) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
        axes.imshow(pixels.clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
        axes.set_title(caption, fontsize=8)
        axes.set_axis_off()
    with atomic_write(path) as temp_path:
        figure.savefig(temp_path, format="png", dpi=100)


def save_perception_distortion_figure(path: str | os.PathLike, report: EvaluationReport, perceptual: str) -> None:
    """The perception-distortion plane (Blau and Michaeli, CVPR 2018): one point per model and dataset,
    the perceptual metric (`niqe` or another lower-is-better one) across, PSNR up; the best corner is
    top left."""
    from matplotlib.figure import Figure

    metric = METRICS[perceptual]
    figure = Figure(figsize=(6.4, 4.8), layout="constrained")
    axes = figure.subplots()
    markers = "osD^v<>ph*"
    for index, dataset in enumerate(report.datasets):
        means = [report.mean_of(dataset.name, model) for model in report.models]
        axes.scatter([m.value(perceptual) for m in means], [m.psnr for m in means], marker=markers[index % len(markers)],
                     label=dataset.name)
        for mean in means:
            axes.annotate(mean.model, (mean.value(perceptual), mean.psnr), fontsize=7, xytext=(4, 3),
                          textcoords="offset points")
    axes.set_xlabel(f"{metric.title} ({metric.direction})")
    axes.set_ylabel("PSNR (dB), higher is better")
    axes.set_title(f"Perception-distortion plane, x{report.protocol.scale} ({report.protocol.channel})", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    with atomic_write(path) as temp_path:
        figure.savefig(temp_path, format="png", dpi=120)


# ---- tables and files ------------------------------------------------------------------------------


def _cell(report: EvaluationReport, score: ImageScore | MeanScore) -> str:
    """The shown metrics of one score, "27.12 / 0.7800 / 5.4321"."""
    return " / ".join(METRICS[name].format(score.value(name)) for name in report.protocol.metrics)


def _metrics_caption(report: EvaluationReport) -> str:
    """"PSNR (dB) / SSIM / NIQE (lower is better)": every shown metric, directions said where lower wins."""
    titles = [METRICS[name].title for name in report.protocol.metrics]
    lower = [METRICS[name].title for name in report.protocol.lower_is_better]
    return " / ".join(titles) + (f"; lower is better for {', '.join(lower)}, higher for the rest" if lower else "")


def _summary_rows(report: EvaluationReport) -> tuple[list[str], list[list[str]]]:
    """Paper-style table: one row per model, one "PSNR / SSIM" column per dataset."""
    header = ["Model"] + [dataset.label for dataset in report.datasets]
    rows = []
    for model in report.models:
        cells = [model]
        for dataset in report.datasets:
            cells.append(_cell(report, report.mean_of(dataset.name, model)))
        rows.append(cells)
    return header, rows


def _per_image_rows(report: EvaluationReport, dataset: str) -> tuple[list[str], list[list[str]]]:
    """One row per image of `dataset`, one "PSNR / SSIM" column per model."""
    header = ["Image"] + list(report.models)
    by_image: dict[str, dict[str, ImageScore]] = {}
    for score in report.scores:
        if score.dataset == dataset:
            by_image.setdefault(score.image, {})[score.model] = score
    rows = [[image] + [_cell(report, scores[model]) for model in report.models] for image, scores in by_image.items()]
    return header, rows


def _tables(report: EvaluationReport, per_image: bool) -> list[tuple[str, list[str], list[list[str]]]]:
    """(caption, header, rows) of every table to show."""
    tables = [(f"Mean {_metrics_caption(report)}", *_summary_rows(report))]
    if per_image:
        tables += [(f"{dataset.name}, per image", *_per_image_rows(report, dataset.name)) for dataset in report.datasets]
    return tables


def _lr_lines(report: EvaluationReport) -> list[str]:
    """Where each dataset's LR came from, then one line per file a partial dataset left out."""
    lines = [f"LR of {dataset.name}: {dataset.lr_source}" for dataset in report.datasets]
    lines += [
        f"PARTIAL {dataset.name}, left out: {message}" for dataset in report.datasets for message in dataset.missing
    ]
    return lines


def format_table(report: EvaluationReport, *, per_image: bool = False) -> str:
    """Plain-text tables for the terminal, each preceded by the protocol."""
    blocks = []
    for caption, header, rows in _tables(report, per_image):
        widths = [max(len(line[column]) for line in [header, *rows]) for column in range(len(header))]
        lines = [f"{caption}. Protocol: {report.protocol.describe()}", *_lr_lines(report)]
        for line in [header, *rows]:
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
        lines.insert(len(lines) - len(rows), "  ".join("-" * width for width in widths))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def format_markdown(report: EvaluationReport, *, per_image: bool = False) -> str:
    """Markdown tables, each preceded by the protocol."""
    blocks = []
    for caption, header, rows in _tables(report, per_image):
        lines = [f"**{caption}.** Protocol: {report.protocol.describe()}.", ""]
        lines += [f"- {line}" for line in _lr_lines(report)] + [""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


CSV_COLUMNS = ("dataset", "model", "image", "images", "psnr", "ssim", "scale", "channel", "crop_border", "lr")


def format_csv(report: EvaluationReport, *, per_image: bool = False) -> str:
    """One row per (dataset, model) mean (`image` empty), then per image when asked; protocol in every row.

    Metrics beyond PSNR and SSIM get a column each, after `lr`; then `missing`, the number of the
    dataset's files left out as unreadable (`--allow-missing`: a mean with missing > 0 is over part of
    the benchmark); the last column, `lower_is_better`, names the metrics (separated by ";") for which a
    lower value is better.
    """
    protocol = report.protocol
    extras = [name for name in protocol.metrics if name not in ("psnr", "ssim")]
    lower = ";".join(protocol.lower_is_better)
    lr_source = {dataset.name: dataset.lr_source for dataset in report.datasets}
    missing = {dataset.name: len(dataset.missing) for dataset in report.datasets}
    rows = [(mean, "") for mean in report.means()]
    if per_image:
        rows += [(score, score.image) for score in report.scores]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *extras, "missing", "lower_is_better"])
    for score, image in rows:
        count = score.images if isinstance(score, MeanScore) else 1
        writer.writerow(
            [score.dataset, score.model, image, count, f"{score.psnr:.4f}", f"{score.ssim:.6f}", protocol.scale,
             protocol.channel, protocol.crop_border, lr_source[score.dataset],
             *(f"{score.extra[name]:.6f}" for name in extras), missing[score.dataset], lower]
        )
    return buffer.getvalue()


def format_json(report: EvaluationReport) -> str:
    """Everything: protocol, datasets, means and per-image scores (full precision), as strict JSON.

    The PSNR of an output identical to its HR image is infinite; strict JSON has no Infinity, so it
    is written as null (PSNR is never NaN, so null means exactly that).
    """
    return json.dumps(_non_finite_as_null(report.to_dict()), indent=2, allow_nan=False) + "\n"


def _non_finite_as_null(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _non_finite_as_null(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_non_finite_as_null(item) for item in value]
    return value


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a report file atomically (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))
