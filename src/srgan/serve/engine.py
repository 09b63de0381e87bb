"""What the server's worker does: the models a request may name, loaded on first use, and one upscale.

Requests pick models by name from a fixed catalogue (the server's model, `bicubic`, and the named
weight sets installed here); a request can never make the server open a file path of its choosing.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

from srgan.errors import SrganError
from srgan.serve.jobs import Job

# Loaded models kept in memory besides the server's own (a big RRDBNet holds ~70 MB of weights).
_EXTRA_MODELS_KEPT = 1
# Results may have at most this many pixels per allowed input pixel (a x4 upscale of the largest input).
_OUTPUT_PIXELS_PER_INPUT_PIXEL = 16


class UpscaleEngine:
    """The model catalogue and the upscaling step, driven by the job queue's single worker thread."""

    def __init__(self, model: str | None, *, device: str | None = None, max_pixels: int):
        from srgan.inference import Upscaler
        from srgan.catalogue import entries
        from srgan.models import DEFAULT_MODEL, load_model

        requested = model or DEFAULT_MODEL
        self._device = device
        self._max_output_pixels = max_pixels * _OUTPUT_PIXELS_PER_INPUT_PIXEL
        # Loaded now so a missing or broken model is reported on the command line, not on the first request.
        default = load_model(requested, device="cpu")
        self.default_model = default.name
        self._sources: dict[str, str] = {default.name: requested}
        self._descriptions: dict[str, str] = {}
        self._scales: dict[str, int | None] = {default.name: default.scale}
        # every named model of the catalogue that loads here: bicubic, embedded, installed pretrained
        for name, entry in entries(tag="available").items():
            self._sources.setdefault(name, name)
            self._descriptions.setdefault(name, entry.description)
            self._scales.setdefault(name, entry.scale)
        self._descriptions.setdefault(default.name, default.metadata.get("description", f"{default.arch} model"))
        self._upscalers = collections.OrderedDict({default.name: Upscaler(default, device=device)})

    def model_names(self) -> list[str]:
        return list(self._sources)

    def describe_models(self) -> list[dict]:
        """Name, description and native scale (None if a model file does not record it) of each model."""
        return [
            {"name": name, "description": self._descriptions.get(name, ""), "scale": self._scales.get(name)}
            for name in self._sources
        ]

    def run(self, job: Job, report_progress: Callable[[float], None]) -> tuple[int, int]:
        """Upscale the job's decoded image into its result file; returns the output (width, height)."""
        from srgan.imageio import write_image
        from srgan.inference import upscale_pixels

        upscaler = self._upscaler(job.model)
        image = job.payload
        job.outscale = job.outscale or float(upscaler.scale)
        width, height = round(image.width * job.outscale), round(image.height * job.outscale)
        if width * height > self._max_output_pixels:
            raise SrganError(
                f"the result would have {width * height:,} pixels ({width}x{height}), over this server's "
                f"{self._max_output_pixels:,}; choose a smaller outscale or a smaller image"
            )
        pixels = upscale_pixels(
            upscaler,
            image.to_tensor(),
            image.alpha_tensor(),
            bit_depth=image.bit_depth,
            outscale=job.outscale,
            progress=lambda done, total: report_progress(done / total),
        )
        write_image(job.result_path, pixels, like=image, format="PNG")
        return width, height

    def _upscaler(self, name: str):
        """The ready Upscaler for `name`, loading it (and forgetting the least recently used) if needed."""
        from srgan.inference import Upscaler
        from srgan.models import load_model

        if name in self._upscalers:
            self._upscalers.move_to_end(name)
            return self._upscalers[name]
        loaded = load_model(self._sources[name], device="cpu")
        self._scales[name] = loaded.scale
        upscaler = Upscaler(loaded, device=self._device)
        self._upscalers[name] = upscaler
        while len(self._upscalers) > 1 + _EXTRA_MODELS_KEPT:
            oldest = next(name for name in self._upscalers if name != self.default_model)
            del self._upscalers[oldest]
        return upscaler
