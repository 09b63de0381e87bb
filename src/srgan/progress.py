"""Progress of a batch of images (and of a video's frames): a bar on a terminal, a log line every few
seconds elsewhere.

A job left running under `nohup`, a scheduler or CI must still say how far it is; a bar there would
be unreadable carriage returns, so when the stream is not a terminal it gets plain lines instead:
`srgan: 3/10 images (4.2 of 9 MP), 0.31 MP/s, ETA 0:00:15`. Rate and ETA count input pixels, so one huge
image among small ones does not make the estimate jump.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

# Seconds between log lines when the stream is not a terminal.
LOG_INTERVAL_SECONDS = 5.0
PROGRESS_MODES = ("auto", "bar", "log", "off")
DEFAULT_LABEL = "srgan"


def clock_text(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _resolve_mode(mode: str, stream) -> str:
    if mode not in PROGRESS_MODES:
        raise ValueError(f"progress mode {mode!r}: use one of {', '.join(PROGRESS_MODES)}")
    if mode == "auto":
        return "bar" if getattr(stream, "isatty", lambda: False)() else "log"
    return mode


def progress_lines(iterable, *, total: int | None, description: str, stream=None, clock: Callable[[], float] = time.monotonic):
    """Yield from `iterable`, printing `DESCRIPTION: 37/147, 1.9/s, ETA 0:00:53` every LOG_INTERVAL_SECONDS.

    For a loop whose stream is not a terminal, where a bar cannot be drawn (`srgan train` under nohup
    decoding or preparing its photos).
    """
    stream = sys.stderr if stream is None else stream
    started = last = clock()
    for done, item in enumerate(iterable, start=1):
        yield item
        now = clock()
        if now - last >= LOG_INTERVAL_SECONDS:
            last = now
            rate = done / max(now - started, 1e-9)
            counted = f"{done}/{total}" if total else str(done)
            eta = f", ETA {clock_text((total - done) / rate)}" if total else ""
            print(f"{description}: {counted}, {rate:.3g}/s{eta}", file=stream, flush=True)


class _ProgressOutput:
    """What both progress kinds share: the stream, the resolved mode, the label and the log-line clock."""

    def __init__(self, *, mode: str, stream, interval: float | None, label: str, clock: Callable[[], float]):
        self.stream = sys.stderr if stream is None else stream
        self.mode = _resolve_mode(mode, self.stream)
        self.label = label
        self.interval = LOG_INTERVAL_SECONDS if interval is None else interval
        self.clock = clock
        self._last_line = clock()
        self._bar = None

    def status_line(self) -> str:
        raise NotImplementedError

    def _log_if_due(self) -> None:
        """In log mode, print the status line when `interval` seconds have passed since the last one."""
        if self.mode != "log":
            return
        now = self.clock()
        if now - self._last_line >= self.interval:
            self._last_line = now
            print(self.status_line(), file=self.stream, flush=True)


class BatchProgress(_ProgressOutput):
    """Tracks images done, and the tiles of the one in progress, over a known number of images.

    `mode`: "auto" (a bar when `stream` is a terminal, log lines otherwise), "bar", "log" or "off".
    Call `start_image(name, pixels)`, then `tiles(done, total)` as tiles finish, then `end_image()`.
    `label` starts each line (`srgan rank 1/2` when several processes share a stream's reader).
    `clock` is injectable so tests need not wait.
    """

    def __init__(
        self,
        total_images: int,
        *,
        mode: str = "auto",
        stream=None,
        interval: float | None = None,
        label: str = DEFAULT_LABEL,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(mode=mode, stream=stream, interval=interval, label=label, clock=clock)
        self.total_images = total_images
        self.images_done = 0
        self.pixels_done = 0  # input pixels of finished images
        self.pixels_seen = 0  # input pixels of images started so far (finished or not)
        self._current = ("", 0, 0.0)  # name, input pixels, fraction done
        self._started = self._last_line
        if self.mode == "bar":
            from tqdm import tqdm

            description = None if label == DEFAULT_LABEL else label
            self._bar = tqdm(total=total_images, desc=description, unit="image", file=self.stream, dynamic_ncols=True)

    def start_image(self, name: str, pixels: int) -> None:
        self._current = (name, pixels, 0.0)
        self.pixels_seen += pixels
        if self._bar is not None:
            self._bar.set_postfix_str(name, refresh=True)

    def tiles(self, done: int, total: int) -> None:
        name, pixels, _ = self._current
        self._current = (name, pixels, done / total if total else 1.0)
        if self._bar is not None:
            self._bar.n = self.images_done + self._current[2]
            self._bar.refresh()
        self._log_if_due()

    def end_image(self) -> None:
        name, pixels, _ = self._current
        self.images_done += 1
        self.pixels_done += pixels
        self._current = ("", 0, 0.0)
        if self._bar is not None:
            self._bar.n = self.images_done
            self._bar.refresh()
        self._log_if_due()

    def write(self, line: str) -> None:
        """Print a message line without breaking the bar."""
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        """End the bar; in log mode, one last line with the final count and rate."""
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "log" and self.total_images:
            print(self.status_line(), file=self.stream, flush=True)

    def status_line(self) -> str:
        """`srgan: 3/10 images, 0.5 MP/s, ETA 0:00:12` (rate and ETA once some work is done)."""
        _, pixels, fraction = self._current
        done_pixels = self.pixels_done + pixels * fraction
        elapsed = self.clock() - self._started
        line = f"{self.label}: {self.images_done}/{self.total_images} images"
        if self._current[0]:
            line += f", {self._current[0]} {fraction:.0%}"
        if done_pixels > 0 and elapsed > 0:
            rate = done_pixels / elapsed
            line += f", {rate / 1e6:.3g} MP/s"
            started = self.images_done + (1 if self._current[0] else 0)
            # pixels of the images not yet read: assume they are like the average of those seen
            average = self.pixels_seen / started if started else 0
            remaining = self.pixels_seen - done_pixels + average * (self.total_images - started)
            if self.images_done < self.total_images:
                line += f", ETA {clock_text(remaining / rate)}"
        return line

class FrameProgress(_ProgressOutput):
    """The frames of one video: `update(step)` with each `srgan.video.VideoProgress`; a bar with the
    frame rate on a terminal, else `srgan: clip.mp4 40/250 frames, 3.1 fps, ETA 0:01:08` every
    `interval` seconds and once at the end (`close`); `label` as `BatchProgress`'s."""

    def __init__(
        self,
        name: str,
        *,
        mode: str = "auto",
        stream=None,
        interval: float | None = None,
        label: str = DEFAULT_LABEL,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(mode=mode, stream=stream, interval=interval, label=label, clock=clock)
        self.name = name
        self._step = None
        if self.mode == "bar":
            from tqdm import tqdm

            description = name if label == DEFAULT_LABEL else f"{label} {name}"
            self._bar = tqdm(desc=description, unit="frame", file=self.stream, dynamic_ncols=True)

    def update(self, step) -> None:
        self._step = step
        if self._bar is not None:
            self._bar.total = step.total
            self._bar.n = step.done
            self._bar.set_postfix_str(f"{step.fps:.1f} fps", refresh=True)
        else:
            self._log_if_due()

    def status_line(self) -> str:
        step = self._step
        if step is None:
            return f"{self.label}: {self.name} starting"
        line = f"{self.label}: {self.name} {step.done}/{step.total if step.total is not None else '?'} frames"
        line += f", {step.fps:.3g} fps"
        if step.eta_seconds is not None and step.done != step.total:
            line += f", ETA {clock_text(step.eta_seconds)}"
        return line

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "log" and self._step is not None:
            print(self.status_line(), file=self.stream, flush=True)
