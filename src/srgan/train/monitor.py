"""What a run shows and leaves behind: progress bar, log file, metrics.jsonl, TensorBoard, plots, sample grids.

`metrics.jsonl` is the record everything else is drawn from: one JSON object per log step
(`"kind": "train"`, losses named `l_*`, learning rate, discriminator/generator scores, speed) and
per validation (`"kind": "val"`, PSNR/SSIM). `srgan plot RUN_DIR` redraws the PNG plots from it.
Only the main process (see `runtime.is_main_process`) creates a Monitor that writes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from srgan.errors import SrganError
from srgan.fileutil import atomic_write
from srgan.quality.registry import METRICS

METRICS_FILE = "metrics.jsonl"
LOG_FILE = "train.log"
PLOTS_DIR = "plots"
SAMPLES_DIR = "samples"

logger = logging.getLogger("srgan.train")


class _TqdmHandler(logging.Handler):
    """Console log lines that do not tear through the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


def setup_logging(run_dir: Path | None) -> None:
    """Send `srgan.train` messages to stderr and, when given, to RUN_DIR/train.log (replacing older handlers)."""
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    console = _TqdmHandler()
    console.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(console)
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(run_dir / LOG_FILE, encoding="utf-8")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(file_handler)


@contextlib.contextmanager
def warnings_logged() -> Iterator[None]:
    """Python warnings raised inside the block (an unreadable image skipped, ...) become one-line WARNING
    records of the run's log, so they reach train.log too, without the source line Python prints."""

    def log_warning(message, category, filename, lineno, file=None, line=None) -> None:
        logger.warning("%s", message)

    with warnings.catch_warnings():
        warnings.showwarning = log_warning
        yield


def record_error(message: str) -> None:
    """Put the error that ends a run into train.log (the CLI prints it on the console itself)."""
    _log_to_file(logging.ERROR, message)


def _log_to_file(level: int, message: str) -> None:
    record = logger.makeRecord(logger.name, level, __file__, 0, message, None, None)
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def close_log_file() -> None:
    """Stop writing RUN_DIR/train.log (the console keeps the messages)."""
    for handler in list(logger.handlers):
        if isinstance(handler, logging.FileHandler):
            logger.removeHandler(handler)
            handler.close()


class LossAverager:
    """Running means of scalars between two log steps; its state goes into checkpoints for exact resumes."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.sums[key] += value
            self.counts[key] += 1

    def pop_means(self) -> dict[str, float]:
        means = {key: self.sums[key] / self.counts[key] for key in self.sums}
        self.sums.clear()
        self.counts.clear()
        return means

    def state_dict(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "counts": dict(self.counts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums = defaultdict(float, state["sums"])
        self.counts = defaultdict(int, state["counts"])


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """All records of RUN_DIR/metrics.jsonl; a line cut short by a killed run is ignored."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise SrganError(f"{path}: not found; give the folder of a run started with `srgan train`")
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


# log-line labels of the discriminator scores (σ of the logits; raw scores for WGAN-GP, LSGAN, hinge)
_SCORE_LABELS = {"discriminator_score": "D(real)", "generator_score": "D(fake)",
                 "critic_real": "D(real) raw", "critic_fake": "D(fake) raw"}


def train_log_line(iteration: int, total: int, values: dict[str, float], speed: float, eta_seconds: float) -> str:
    """`iteration 120/300: l_g_pix 0.0123, l_g_total 0.0123, lr 5.00e-04, D(real) 0.61, D(fake) 0.32, 2.31 it/s, ETA 0:01:18`."""
    from srgan.progress import clock_text

    parts = [f"{key} {value:.4g}" for key, value in values.items() if key.startswith("l_")]
    if "lr_g" in values:
        parts.append(f"lr {values['lr_g']:.3g}")
    parts += [f"{label} {values[key]:.3g}" for key, label in _SCORE_LABELS.items() if key in values]
    parts += [f"{speed:.3g} it/s", f"ETA {clock_text(eta_seconds)}"]
    return f"iteration {iteration}/{total}: " + ", ".join(parts)


class Monitor:
    """Progress bar, metrics.jsonl and TensorBoard for one run (main process only)."""

    def __init__(self, run_dir: Path, *, start_iteration: int, total_iterations: int, tensorboard: str, progress: str):
        from tqdm import tqdm

        self.run_dir = run_dir
        self.metrics_path = run_dir / METRICS_FILE
        self._drop_records_after(start_iteration)
        self._metrics_file = open(self.metrics_path, "a", encoding="utf-8")
        self._tensorboard = self._open_tensorboard(tensorboard)
        self._bar = tqdm(
            total=total_iterations,
            initial=start_iteration,
            desc="train",
            unit="it",
            dynamic_ncols=True,
            disable={"on": False, "off": True, "auto": None}[progress],
        )
        self._last_time = self._started = time.perf_counter()
        self._last_iteration = self._start_iteration = start_iteration
        self._total = total_iterations

    def _drop_records_after(self, iteration: int) -> None:
        """A resumed run repeats the iterations after its checkpoint: forget what the killed run logged there."""
        if not self.metrics_path.is_file():
            return
        kept = [record for record in read_metrics(self.run_dir) if record.get("iteration", 0) <= iteration]
        with atomic_write(self.metrics_path) as temp_path:
            temp_path.write_text("".join(json.dumps(record) + "\n" for record in kept), encoding="utf-8")

    def _open_tensorboard(self, mode: str):
        if mode == "off":
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            if mode == "on":
                raise SrganError("log.tensorboard is 'on' but tensorboard is not installed; pip install 'srgan[tensorboard]'") from None
            return None
        return SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))

    def step(self, iteration: int) -> None:
        self._bar.update(iteration - self._bar.n)

    def log_train(self, iteration: int, values: dict[str, float]) -> None:
        now = time.perf_counter()
        speed = (iteration - self._last_iteration) / max(now - self._last_time, 1e-9)
        self._last_time, self._last_iteration = now, iteration
        record = {"kind": "train", "iteration": iteration, **values, "it_per_s": speed}
        self._write(record)
        self._bar.set_postfix({key: f"{value:.4g}" for key, value in values.items() if key.startswith("l_")}, refresh=False)
        overall = (iteration - self._start_iteration) / max(now - self._started, 1e-9)
        line = train_log_line(iteration, self._total, values, speed, (self._total - iteration) / max(overall, 1e-9))
        if self._bar.disable:
            # no progress bar (stderr is not a terminal, or log.progress is off): a plain line instead
            logger.info(line)
        else:
            _log_to_file(logging.INFO, line)

    def log_validation(self, iteration: int, values: dict[str, float]) -> None:
        self._write({"kind": "val", "iteration": iteration, **values})
        logger.info("iteration %d: validation %s", iteration, ", ".join(f"{k} {v:.4f}" for k, v in values.items()))

    def _write(self, record: dict[str, Any]) -> None:
        self._metrics_file.write(json.dumps(record) + "\n")
        self._metrics_file.flush()
        if self._tensorboard is not None:
            group = "val" if record["kind"] == "val" else "train"
            for key, value in record.items():
                if key not in ("kind", "iteration") and isinstance(value, (int, float)):
                    self._tensorboard.add_scalar(f"{group}/{key}", value, record["iteration"])

    def close(self) -> None:
        self._bar.close()
        self._metrics_file.close()
        if self._tensorboard is not None:
            self._tensorboard.close()


# --- plots ----------------------------------------------------------------------------------------

_SCORE_KEYS = {"discriminator_score": "discriminator score: mean σ(D(real))", "generator_score": "generator score: mean σ(D(G(z)))",
               "critic_real": "raw scores (WGAN-GP critic, LSGAN, hinge): mean D(real)",
               "critic_fake": "raw scores (WGAN-GP critic, LSGAN, hinge): mean D(G(z))"}


def _validation_keys(val: list[dict[str, Any]]) -> list[str]:
    """Every metric scored on data.val_dir (psnr, ssim, then data.val_metrics), then METRIC_LABEL of
    each extra validation set, in the metric table's order."""
    order = list(METRICS)
    keys = {key for record in val for key in record if key.partition("_")[0] in METRICS}
    return sorted(keys, key=lambda key: (key.partition("_")[2], order.index(key.partition("_")[0])))


def _validation_title(key: str) -> str:
    metric, _, label = key.partition("_")
    where = f" on {label}" if label else ""
    return f"validation {metric.upper()}{where} (as srgan eval: crop = scale, 8-bit; {METRICS[metric].direction})"


def plot_metrics(run_dir: str | Path) -> list[Path]:
    """Draw losses, validation PSNR/SSIM and discriminator scores from metrics.jsonl into RUN_DIR/plots/."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    train = [record for record in records if record.get("kind") == "train"]
    val = [record for record in records if record.get("kind") == "val"]
    loss_keys = sorted({key for record in train for key in record if key.startswith("l_")})
    panels = {
        "losses.png": [(key, key, train) for key in loss_keys],
        "validation.png": [(key, _validation_title(key), val) for key in _validation_keys(val)],
        "discriminator.png": [(key, title, train) for key, title in _SCORE_KEYS.items()],
    }
    written = []
    for file_name, series in panels.items():
        series = [(key, title, rows) for key, title, rows in series if any(key in row for row in rows)]
        if not series:
            continue
        figure, axes = plt.subplots(len(series), 1, figsize=(7, 2.4 * len(series)), squeeze=False, sharex=True)
        for axis, (key, title, rows) in zip(axes[:, 0], series):
            points = [(row["iteration"], row[key]) for row in rows if key in row and math.isfinite(row[key])]
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="." if len(points) < 50 else None)
            axis.set_title(title, fontsize=9)
            axis.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("iteration")
        figure.subplots_adjust(left=0.12, right=0.97, top=0.93, bottom=0.1, hspace=0.45)
        path = run_dir / PLOTS_DIR / file_name
        with atomic_write(path) as temp_path:
            figure.savefig(temp_path, format="png", dpi=100)
        plt.close(figure)
        written.append(path)
    return written


# --- sample grids ---------------------------------------------------------------------------------


def _center_crop(image: torch.Tensor, size: int, multiple: int) -> torch.Tensor:
    height, width = image.shape[-2:]
    crop_h = min(size, height) // multiple * multiple
    crop_w = min(size, width) // multiple * multiple
    top = (height - crop_h) // 2 // multiple * multiple
    left = (width - crop_w) // 2 // multiple * multiple
    return image[..., top : top + crop_h, left : left + crop_w]


SAMPLE_COLUMNS = ("LR nearest", "LR bicubic", "SR", "HR")


def _caption_strip(labels: list[str], widths: list[int], gap: int) -> torch.Tensor:
    """A white (3, 16, W) strip with each label centred over its column."""
    import numpy as np
    from PIL import Image, ImageDraw

    height = 16
    strip = Image.new("RGB", (sum(widths) + gap * (len(widths) - 1), height), "white")
    draw = ImageDraw.Draw(strip)
    left = 0
    for label, width in zip(labels, widths):
        text_width = draw.textlength(label)
        draw.text((left + (width - text_width) / 2, 2), label, fill="black")
        left += width + gap
    return torch.from_numpy(np.asarray(strip).copy()).permute(2, 0, 1).float() / 255


def sample_grid(samples: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], *, scale: int, crop: int) -> torch.Tensor:
    """A captioned grid, one row per (lr, sr, hr) CHW triple: LR nearest | LR bicubic | SR | HR.

    Each tile is the centre crop of `crop` HR pixels (the matching LR region, upsampled).
    """
    from srgan.resize import matlab_bicubic_resize

    gap = 4
    rows = []
    for lr, sr, hr in samples:
        hr = _center_crop(hr, crop, scale)
        sr = _center_crop(sr, crop, scale)
        lr_crop = _center_crop(lr, crop // scale, 1)[..., : hr.shape[-2] // scale, : hr.shape[-1] // scale]
        nearest = lr_crop.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)
        bicubic = matlab_bicubic_resize(lr_crop, scale=scale).clamp(0, 1)
        tiles = [tile.float().cpu() for tile in (nearest, bicubic, sr.clamp(0, 1), hr)]
        separator = torch.ones(3, hr.shape[-2], gap)
        rows.append(torch.cat([part for tile in tiles for part in (tile, separator)][:-1], dim=-1))
    # captions sized to the first row's tiles (smaller validation images can make later rows narrower)
    tile_width = (rows[0].shape[-1] - gap * (len(SAMPLE_COLUMNS) - 1)) // len(SAMPLE_COLUMNS)
    parts = [_caption_strip(list(SAMPLE_COLUMNS), [tile_width] * len(SAMPLE_COLUMNS), gap)]
    for row in rows:
        parts += [torch.ones(3, gap, row.shape[-1]), row]
    width = max(part.shape[-1] for part in parts)
    return torch.cat([torch.nn.functional.pad(part, (0, width - part.shape[-1]), value=1.0) for part in parts], dim=-2)


def save_sample_grid(path: Path, samples: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], *, scale: int, crop: int) -> None:
    from srgan.imageio import write_image

    write_image(path, sample_grid(samples, scale=scale, crop=crop))
