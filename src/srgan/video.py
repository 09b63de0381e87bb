"""Video in, video out: decode with PyAV, upscale frames with the engine, encode, remux the rest.

Contract (the batch layer and the CLI dispatch here by extension with `is_video_path`):

- `upscale_video(upscaler, src, dst, *, options=VideoOptions(), progress=None) -> VideoResult`.
  `src` is a video file (`VIDEO_EXTENSIONS`) or a folder of frame images; `dst` is a video file
  (container chosen by its extension) or, when it has no video extension, a folder that receives
  one PNG per frame (`frame_000001.png`, ...). Audio and subtitle streams are copied packet by
  packet, unchanged (data and attachment streams are dropped, named in `VideoResult.dropped`).
  Every frame keeps its presentation timestamp, so variable frame rate survives and the frame
  count is the input's. Memory stays constant: frames flow through bounded queues (decode thread
  -> upscale in the caller's thread -> encode/mux thread). The output appears whole or not at all
  (`srgan.fileutil.atomic_write`; a frames folder is filled under a temporary name and renamed).
  A damaged, empty or unsupported input raises one `SrganError` naming the file.
- `progress(VideoProgress)` is called after every batch of frames: `done`, `total` (None when the
  container does not say), `fps` (frames per second so far) and `eta_seconds` (None without total).
- Encoding: `VideoOptions.codec` None picks by container: H.264 for .mp4/.mkv/.mov (libx264, else
  libopenh264, else MPEG-4 part 2, with a warning), VP9 for .webm, GIF for .gif. `crf` applies to
  encoders with a constant-quality mode; `pixel_format` defaults to yuv420p (gif: rgb8). Chroma
  subsampled pixel formats need even sides: the upscaled frame loses its last row/column when odd.
- Frames folder in: the images are taken in name order at `VideoOptions.fps` frames per second.

PyAV (`pip install "srgan[video]"`) is imported only when a video is processed.
"""

from __future__ import annotations

import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from srgan.errors import SrganError

# Container format (FFmpeg's name) per output extension.
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mkv": "matroska", ".mov": "mov", ".webm": "webm", ".gif": "gif"}
VIDEO_EXTENSIONS = frozenset(CONTAINERS)
# Encoders tried in order when no codec is given; the first in the PyAV build wins.
DEFAULT_ENCODERS = {
    "mp4": ("libx264", "libopenh264", "mpeg4"),
    "matroska": ("libx264", "libopenh264", "mpeg4"),
    "mov": ("libx264", "libopenh264", "mpeg4"),
    "webm": ("libvpx-vp9", "libvpx"),
    "gif": ("gif",),
}
# Encoders with a constant-quality (-crf) mode; VP8/VP9 need a zero bitrate for it to be pure CRF.
CRF_ENCODERS = {"libx264", "libx265", "libvpx", "libvpx-vp9", "libsvtav1", "libaom-av1"}
ZERO_BITRATE_FOR_CRF = {"libvpx", "libvpx-vp9", "libaom-av1"}
FRAME_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
INSTALL_HINT = 'pip install "srgan[video]"'


def is_video_path(path: str | Path) -> bool:
    """True when `path` names a video file srgan reads and writes, by extension; an existing `.gif`
    only when animated (a still GIF is an image, better served by `imageio` than a 256-colour encode)."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        return False
    if path.suffix.lower() != ".gif" or not path.is_file():
        return True
    from PIL import Image

    try:
        with Image.open(path) as image:
            return getattr(image, "n_frames", 1) > 1
    except (OSError, Image.DecompressionBombError):
        return False  # imageio reports the unreadable or oversized file


@dataclass(frozen=True)
class VideoOptions:
    """How a video is encoded. None means the container's default (see the module docstring)."""

    codec: str | None = None
    crf: int | None = 18
    pixel_format: str | None = None
    outscale: float | None = None  # final scale, by bicubic resizing after the model
    frame_batch: int = 4  # frames handed to the engine together
    queue_frames: int = 8  # frames waiting on each side of the engine, at most
    fps: float = 25.0  # frame rate given to a folder of frames

    def __post_init__(self):
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise SrganError(f"crf {self.crf}: must be between 0 (lossless) and 63")
        if self.frame_batch < 1 or self.queue_frames < 1:
            raise SrganError("video frame batch and queue: must be at least 1 frame")
        if self.fps <= 0:
            raise SrganError(f"fps {self.fps:g}: must be a positive number")
        if self.outscale is not None and self.outscale <= 0:
            raise SrganError(f"outscale {self.outscale:g}: must be a positive number")


@dataclass(frozen=True)
class VideoProgress:
    done: int
    total: int | None
    fps: float
    eta_seconds: float | None


@dataclass(frozen=True)
class VideoResult:
    source: Path
    output: Path
    frames: int
    width: int
    height: int
    codec: str | None  # None for a frames folder
    copied_streams: int  # audio and subtitle streams remuxed unchanged
    dropped: tuple[str, ...] = field(default=())  # streams not carried over, described


def _import_av():
    try:
        import av
    except ImportError:
        raise SrganError(f"video: PyAV is not installed; {INSTALL_HINT}") from None
    return av


def upscale_video(
    upscaler,
    src: str | Path,
    dst: str | Path,
    *,
    options: VideoOptions | None = None,
    progress: Callable[[VideoProgress], None] | None = None,
) -> VideoResult:
    """Upscale every frame of `src` into `dst` (see the module docstring for the full contract)."""
    av = _import_av()
    options = options or VideoOptions()
    src, dst = Path(src), Path(dst)
    if upscaler.model.in_channels not in (3, 4):
        channels = upscaler.model.in_channels
        raise SrganError(f"{upscaler.model.name}: video needs a colour model, not a {channels}-channel one")
    if src.resolve() == dst.resolve():
        raise SrganError(f"{src}: the output would replace the input; name another output")
    try:
        source = _FolderSource(src, options.fps) if src.is_dir() else _VideoSource(av, src)
    except av.FFmpegError as error:
        raise SrganError(f"{src}: not a readable video ({_reason(error)}); check the file") from None
    size = _output_size(source.height, source.width, upscaler.scale, options.outscale)
    try:
        with source:
            if not is_video_path(dst):
                with _FolderSink(dst, source, size) as sink:
                    return _run(upscaler, source, sink, src, dst, options, progress, codec=None)
            from srgan.fileutil import atomic_write

            with atomic_write(dst) as temp_path, _VideoSink(av, temp_path, dst, source, options, size) as sink:
                return _run(upscaler, source, sink, src, dst, options, progress, codec=sink.codec_name)
    except av.FFmpegError as error:
        raise SrganError(f"{src}: cannot be converted ({_reason(error)}); the file may be damaged") from None


def _output_size(height: int, width: int, scale: int, outscale: float | None) -> tuple[int, int]:
    if outscale is None:
        return height * scale, width * scale
    size = (round(height * outscale), round(width * outscale))
    if min(size) < 1:
        raise SrganError(f"outscale {outscale:g}: the frames would be {size[1]}x{size[0]} pixels")
    return size


def _reason(error) -> str:
    return getattr(error, "strerror", None) or str(error)


def _run(upscaler, source, sink, src: Path, dst: Path, options: VideoOptions, progress, *, codec) -> VideoResult:
    """Decode -> upscale -> encode, with a thread on each side of the engine and bounded queues between."""
    decoded: queue.Queue = queue.Queue(maxsize=options.queue_frames)
    to_write: queue.Queue = queue.Queue(maxsize=max(1, options.queue_frames // options.frame_batch))
    stop = threading.Event()
    failures: list[BaseException] = []
    end = object()

    def put(q: queue.Queue, item) -> None:
        while not stop.is_set():
            try:
                return q.put(item, timeout=0.1)
            except queue.Full:
                continue

    def get(q: queue.Queue):
        while not stop.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        return end

    def decode() -> None:
        try:
            for item in source.items():
                put(decoded, item)
                if stop.is_set():
                    return
            put(decoded, end)
        except BaseException as error:  # re-raised in the caller's thread
            failures.append(error)
            stop.set()

    def write() -> None:
        try:
            while (item := get(to_write)) is not end:
                sink.write(item)
            if not stop.is_set():
                sink.finish()
        except BaseException as error:
            failures.append(error)
            stop.set()

    threads = [
        threading.Thread(target=decode, name="srgan-video-read"),
        threading.Thread(target=write, name="srgan-video-write"),
    ]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    done = 0
    frames: list[_Frame] = []
    packets: list = []  # copied packets read along with `frames`; they follow them out
    try:
        while True:
            item = get(decoded)
            if stop.is_set():  # the reader or the writer failed: its error is raised below
                break
            if isinstance(item, _Frame):
                frames.append(item)
            elif item is not end:
                packets.append(item)
            if frames and (len(frames) >= options.frame_batch or item is end):
                put(to_write, _upscale_frames(upscaler, frames, options, sink.size))
                done += len(frames)
                frames = []
                if progress is not None:
                    # the container's frame count may be an estimate: at the end the total is what came
                    total = done if item is end else source.total
                    progress(_progress(done, total, time.monotonic() - started))
            if packets and (not frames or item is end):
                for packet in packets:
                    put(to_write, packet)
                packets = []
            if item is end:
                break
        put(to_write, end)
    except BaseException:
        stop.set()
        raise
    finally:
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    if done == 0:
        raise SrganError(f"{src}: no video frames could be decoded; the file may be damaged")
    return VideoResult(
        source=src,
        output=dst,
        frames=done,
        width=sink.size[1],
        height=sink.size[0],
        codec=codec,
        copied_streams=len(sink.copies),
        dropped=source.dropped + tuple(sink.dropped),
    )


def _progress(done: int, total: int | None, elapsed: float) -> VideoProgress:
    fps = done / elapsed if elapsed > 0 else 0.0
    eta = None
    if total is not None and fps > 0:
        eta = max(0, total - done) / fps
    return VideoProgress(done=done, total=total, fps=fps, eta_seconds=eta)


@dataclass
class _Frame:
    """One frame: RGB uint8 pixels (H, W, 3) and its presentation time in `time_base` units."""

    pixels: object  # numpy array
    pts: int
    time_base: Fraction


def _upscale_frames(upscaler, batch: list[_Frame], options: VideoOptions, size: tuple[int, int]) -> list[_Frame]:
    """The frames upscaled, resized for `options.outscale` and cut to `size` (height, width)."""
    import numpy as np
    import torch

    from srgan.resize import matlab_bicubic_resize

    stack = torch.from_numpy(np.stack([frame.pixels for frame in batch])).permute(0, 3, 1, 2).float().div_(255)
    if upscaler.model.in_channels == 4:
        stack = torch.cat([stack, torch.ones_like(stack[:, :1])], dim=1)
    result = upscaler.upscale_tensor(stack)[:, :3]
    if options.outscale is not None:
        wanted = _output_size(*stack.shape[-2:], upscaler.scale, options.outscale)
        if wanted != tuple(result.shape[-2:]):
            result = matlab_bicubic_resize(result, size=wanted).clamp_(0, 1)
    height, width = size
    pixels = result[:, :, :height, :width].mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [_Frame(np.ascontiguousarray(p), frame.pts, frame.time_base) for p, frame in zip(pixels, batch, strict=True)]


class _VideoSource:
    """Demuxes a video file: yields decoded frames of its first video stream (as `_Frame`) and the
    packets of its audio and subtitle streams, in file order."""

    def __init__(self, av, path: Path):
        if not path.is_file():
            raise SrganError(f"{path}: no such file")
        self.av = av
        self.path = path
        self.container = av.open(str(path), "r")
        try:
            if not self.container.streams.video:
                raise SrganError(f"{path}: has no video stream")
            self.video = self.container.streams.video[0]
            self.video.thread_type = "AUTO"
            self.copied = [s for s in self.container.streams if s.type in ("audio", "subtitle")]
            self.dropped = tuple(
                f"stream {s.index} ({s.type})"
                for s in self.container.streams
                if s is not self.video and s not in self.copied
            )
        except BaseException:
            self.container.close()
            raise
        self.total = self.video.frames or self._estimated_frames()
        self.height, self.width = self.video.codec_context.height, self.video.codec_context.width
        if not self.width or not self.height:
            self.container.close()
            raise SrganError(f"{path}: the video stream has no frame size; the file may be damaged")
        self.time_base = self.video.time_base
        self.rate = self.video.average_rate or self.video.guessed_rate

    def _estimated_frames(self) -> int | None:
        rate = self.video.average_rate
        duration = self.video.duration
        if rate and duration and self.video.time_base:
            return round(float(duration * self.video.time_base * rate))
        if rate and self.container.duration:
            return round(self.container.duration / 1_000_000 * float(rate))
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.container.close()

    def items(self) -> Iterator[object]:
        last_pts = None
        streams = [self.video, *self.copied]
        # demux ends with an empty packet per stream: for the video it flushes the decoder
        for packet in self.container.demux(streams):
            if packet.stream is self.video:
                for frame in packet.decode():
                    last_pts = yield from self._frame(frame, last_pts)
            elif packet.dts is not None:
                yield packet

    def _frame(self, frame, last_pts):
        time_base = self.time_base
        pts = frame.pts
        # frames without a timestamp, or out of order in a damaged file, follow the previous one
        if pts is None or (last_pts is not None and pts <= last_pts):
            step = round(1 / (time_base * self.rate)) if self.rate else 1
            pts = 0 if last_pts is None else last_pts + max(1, step)
        # a frame of another size (a mid-stream resolution change) is scaled to the stream's
        yield _Frame(frame.to_ndarray(format="rgb24", width=self.width, height=self.height), pts, time_base)
        return pts


class _FolderSource:
    """Frame images of a folder in name order, at a constant `fps`."""

    copied: tuple = ()
    dropped: tuple[str, ...] = ()

    def __init__(self, folder: Path, fps: float):
        from PIL import Image

        self.files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_EXTENSIONS)
        if not self.files:
            raise SrganError(f"{folder}: no frame images in this folder")
        self.total = len(self.files)
        self.rate = Fraction(fps).limit_denominator(1001)
        self.time_base = 1 / self.rate
        try:
            with Image.open(self.files[0]) as first:
                self.width, self.height = first.size
        except (OSError, Image.DecompressionBombError) as error:
            raise SrganError(f"{self.files[0]}: not a readable image ({error})") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def items(self) -> Iterator[object]:
        import numpy as np
        from PIL import Image

        for index, path in enumerate(self.files):
            try:
                with Image.open(path) as image:
                    pixels = np.asarray(image.convert("RGB"))
            except (OSError, Image.DecompressionBombError) as error:
                raise SrganError(f"{path}: not a readable image ({error})") from None
            if pixels.shape[:2] != (self.height, self.width):
                height, width = pixels.shape[:2]
                raise SrganError(f"{path}: is {width}x{height}, the first frame {self.width}x{self.height}; resize it")
            yield _Frame(pixels, index, self.time_base)


class _VideoSink:
    """Encodes upscaled frames into a new container and remuxes the copied packets into it."""

    def __init__(self, av, temp_path: Path, dst: Path, source, options: VideoOptions, size: tuple[int, int]):
        self.av = av
        container_format = CONTAINERS[dst.suffix.lower()]
        self.codec_name = _choose_encoder(av, options.codec, container_format)
        pixel_format = self._pixel_format(options.pixel_format)
        # chroma subsampled formats need sides that are multiples of the subsampling (2 for yuv420p)
        step_h = round(64 / pixel_format.chroma_height(64))
        step_w = round(64 / pixel_format.chroma_width(64))
        self.size = (size[0] - size[0] % step_h, size[1] - size[1] % step_w)
        if min(self.size) < 1:
            raise SrganError(f"{dst}: {size[1]}x{size[0]} frames are too small for {pixel_format.name}")
        self.container = av.open(str(temp_path), "w", format=container_format)
        try:
            self.stream = self._add_video_stream(source, options, pixel_format.name)
            self.copies = {}
            self.dropped = []
            for template in source.copied:
                try:
                    self.copies[template.index] = self.container.add_stream_from_template(template)
                except (ValueError, av.FFmpegError):
                    self.dropped.append(f"stream {template.index} ({template.type}, {template.codec_context.name})")
            if self.dropped:
                warnings.warn(
                    f"{dst}: a {dst.suffix} file cannot hold {', '.join(self.dropped)} of the input; left out "
                    f"(write to {source.path.suffix} to keep it)",
                    UserWarning,
                    stacklevel=4,
                )
        except BaseException:
            self.container.close()
            raise

    def _pixel_format(self, requested: str | None):
        name = requested or ("rgb8" if self.codec_name == "gif" else "yuv420p")
        try:
            pixel_format = self.av.VideoFormat(name)
        except (ValueError, self.av.FFmpegError):
            raise SrganError(f"pixel format {name!r}: unknown; try yuv420p, yuv444p or rgb24") from None
        supported = [f.name for f in self.av.codec.Codec(self.codec_name, "w").video_formats or ()]
        if supported and name not in supported:
            choices = ", ".join(supported)
            raise SrganError(f"pixel format {name}: {self.codec_name} does not take it; use one of {choices}")
        return pixel_format

    def _add_video_stream(self, source, options: VideoOptions, pixel_format: str):
        stream = self.container.add_stream(self.codec_name, rate=source.rate or Fraction(25))
        stream.height, stream.width = self.size
        stream.pix_fmt = pixel_format
        # the input's clock: every frame keeps its own timestamp (variable frame rate survives)
        stream.time_base = source.time_base
        stream.codec_context.time_base = source.time_base
        if options.crf is not None and self.codec_name in CRF_ENCODERS:
            settings = {"crf": str(options.crf)}
            if self.codec_name in ZERO_BITRATE_FOR_CRF:
                settings["b"] = "0"
            stream.codec_context.options = settings
        return stream

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.container.close()

    def write(self, item) -> None:
        if isinstance(item, list):
            for frame in item:
                picture = self.av.VideoFrame.from_ndarray(frame.pixels, format="rgb24")
                picture.pts = frame.pts
                picture.time_base = frame.time_base
                for packet in self.stream.encode(picture):
                    self.container.mux(packet)
        elif item.stream_index in self.copies:
            item.stream = self.copies[item.stream_index]
            self.container.mux(item)

    def finish(self) -> None:
        for packet in self.stream.encode(None):
            self.container.mux(packet)


class _FolderSink:
    """Writes upscaled frames as PNG files into a new folder, filled under a temporary name."""

    copies: dict = {}  # nothing but frames goes into a folder

    def __init__(self, folder: Path, source, size: tuple[int, int]):
        import tempfile

        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise SrganError(f"{folder}: exists and is not an empty folder; name a new folder for the frames")
        folder.parent.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.size = size
        self.dropped = [f"stream {s.index} ({s.type}, {s.codec_context.name})" for s in source.copied]
        self.temp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
        self.count = 0

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        import shutil

        if exc_type is None:
            if self.folder.exists():
                self.folder.rmdir()  # empty (checked above)
            self.temp.rename(self.folder)
        else:
            shutil.rmtree(self.temp, ignore_errors=True)

    def write(self, item) -> None:
        from PIL import Image

        if not isinstance(item, list):
            return  # a frames folder has no place for audio or subtitles
        for frame in item:
            self.count += 1
            Image.fromarray(frame.pixels).save(self.temp / f"frame_{self.count:06d}.png", compress_level=1)

    def finish(self) -> None:
        return None


def _choose_encoder(av, requested: str | None, container_format: str) -> str:
    available = av.codecs_available
    if requested is not None:
        try:
            codec = av.codec.Codec(requested, "w")
        except (ValueError, av.FFmpegError):
            codec = None
        if codec is None or codec.type != "video":
            known = ", ".join(sorted({name for names in DEFAULT_ENCODERS.values() for name in names} & available))
            raise SrganError(f"codec {requested!r}: no such video encoder in this PyAV build; available here: {known}")
        return codec.name
    candidates = DEFAULT_ENCODERS[container_format]
    for name in candidates:
        try:
            av.codec.Codec(name, "w")
        except (ValueError, av.FFmpegError):
            continue
        if name != candidates[0]:
            warnings.warn(f"{candidates[0]} is not in this PyAV build; encoding with {name}", UserWarning, stacklevel=4)
        return name
    tried = ", ".join(candidates)
    raise SrganError(f"{container_format}: this PyAV build has none of the encoders {tried}; pass a codec")
