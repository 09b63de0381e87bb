"""The metrics srgan reports, their direction, and one scorer that computes any selection of them.

`srgan eval --metric`, training validation and the model cards read this table, so a metric's name,
title and direction (lower or higher is better) are defined once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from torch import Tensor

from srgan.errors import SrganError


@dataclass(frozen=True)
class Metric:
    name: str
    title: str
    lower_is_better: bool
    needs_reference: bool  # full-reference (compares with the HR image) or no-reference
    decimals: int

    @property
    def direction(self) -> str:
        return "lower is better" if self.lower_is_better else "higher is better"

    def format(self, value: float) -> str:
        return f"{value:.{self.decimals}f}"


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric("psnr", "PSNR (dB)", False, True, 2),
        Metric("ssim", "SSIM", False, True, 4),
        Metric("niqe", "NIQE", True, False, 4),
        Metric("vif", "VIF", False, True, 4),
        Metric("lpips", "LPIPS", True, True, 4),
    )
}
DEFAULT_METRICS = ("psnr", "ssim")


def parse_metrics(names: str | Iterable[str]) -> tuple[str, ...]:
    """"psnr,ssim,niqe" (or a list) -> known metric names in the given order, without repeats."""
    items = names.split(",") if isinstance(names, str) else list(names)
    chosen: list[str] = []
    for item in (name.strip().lower() for name in items):
        if item not in METRICS:
            raise SrganError(f"metric {item!r}: unknown; choose from {', '.join(METRICS)}")
        if item not in chosen:
            chosen.append(item)
    if not chosen:
        raise SrganError(f"no metric given; choose from {', '.join(METRICS)}")
    return tuple(chosen)


class Scorer:
    """Computes the chosen metrics of output batches against their HR batches.

    Resources load once, when the scorer is made: NIQE's parameter file (`niqe_params`, default: where
    `srgan models fetch-niqe` puts it) and the LPIPS weights (`lpips_weights`, default: the AlexNet
    file of `srgan models fetch-lpips`; LPIPS runs on `device`). `score(sr, hr, crop_border=...,
    y_channel=...)` takes (N,C,H,W) batches in [0, 1] and returns {name: (N,) float64}; LPIPS always
    compares RGB (its networks take colour), the others follow `y_channel`.
    """

    def __init__(
        self,
        names: Iterable[str],
        *,
        niqe_params: str | os.PathLike | None = None,
        lpips_weights: str | os.PathLike | None = None,
        device: str | None = None,
    ) -> None:
        from srgan.downloads import lpips_path, niqe_params_path

        self.names = parse_metrics(list(names))
        self._niqe_model = self._lpips_module = None
        if "niqe" in self.names:
            from srgan.quality.niqe import load_niqe_model

            self._niqe_model = load_niqe_model(niqe_params or niqe_params_path())
        if "lpips" in self.names:
            from srgan.quality.lpips import load_lpips

            self._lpips_module = load_lpips(lpips_weights or lpips_path("alex"), device=device or "cpu")

    def score(self, sr: Tensor, hr: Tensor, *, crop_border: int = 0, y_channel: bool = True) -> dict[str, Tensor]:
        from srgan.metrics import psnr, ssim

        scores = {}
        for name in self.names:
            if name == "psnr":
                scores[name] = psnr(sr, hr, crop_border=crop_border, y_channel=y_channel)
            elif name == "ssim":
                scores[name] = ssim(sr, hr, crop_border=crop_border, y_channel=y_channel)
            elif name == "niqe":
                from srgan.quality.niqe import niqe

                scores[name] = niqe(sr, self._niqe_model, crop_border=crop_border)
            elif name == "vif":
                from srgan.quality.vif import vif

                scores[name] = vif(sr, hr, crop_border=crop_border, y_channel=y_channel)
            elif name == "lpips":
                from srgan.quality.lpips import lpips

                scores[name] = lpips(sr, hr, self._lpips_module, crop_border=crop_border)
        return scores
