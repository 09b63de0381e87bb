"""Upscaling many image files: what `srgan upscale` does, as a library.

Three steps, each callable on its own:

1. `expand_inputs(inputs, recursive=...)`: files, folders (with `recursive`, their whole tree) and glob
   patterns become a list of `Source`s; what gave nothing, dangling links and unsearched subfolders
   are reported, never skipped silently.
2. `plan_outputs(sources, naming)`: each source gets its output path. The default name is
   `<stem>_<model>_x<scale>.<ext>` (e.g. `photo_compact-psnr-x4_x4.png`), next to the input or under
   `-o` keeping the tree below a folder input. Files of a folder or glob named like srgan's output of
   another input there are srgan's own outputs and are not upscaled again. No output may be one of the
   input files, whatever `existing` says; an output that exists already is an error unless `existing`
   is "skip" or "overwrite".
3. `run_batch(jobs, upscaler, ...)`: read -> upscale -> write, overlapped (one thread decodes the next
   image and one encodes the previous while the current one is upscaled); one bad file is reported and
   counted, never the end of the batch. Returns a `BatchResult`; `BatchResult.ok` is False whenever
   something asked for was not written.

`upscale_files(...)` does all three with a model name, in this process. `Processes` is how `srgan
upscale` under `torchrun` shares the files out over the processes.
"""

from __future__ import annotations

import glob
import os
import re
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from srgan.errors import SrganError

# --format choices -> file extension written
FORMAT_EXTENSIONS = {
    "png": ".png",
    "jpg": ".jpg",
    "jpeg": ".jpg",
    "webp": ".webp",
    "tif": ".tif",
    "tiff": ".tif",
    "bmp": ".bmp",
}
# What an existing output file gets: an error for its input, left alone, or replaced.
EXISTING_POLICIES = ("error", "skip", "overwrite")
# Formats whose encoder takes a quality (1-100).
QUALITY_FORMATS = {"JPEG", "WEBP"}
DEFAULT_QUALITY = 95


@dataclass(frozen=True)
class Source:
    """One input file; `tree` is its folder relative to the folder input it was found in (else None)."""

    path: Path
    tree: Path | None = None
    named: bool = True  # given by name (never dropped as an own output), not found in a folder or glob


@dataclass
class Expansion:
    sources: list[Source] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # inputs that gave nothing: the run is not ok
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Naming:
    """How outputs are named: `suffix` after the stem, `output` a folder or (one input) a file."""

    suffix: str
    output: Path | None = None
    format: str | None = None  # a FORMAT_EXTENSIONS key
    existing: str = "error"
    # suffixes srgan's default naming gives (any model): files ending so are not picked up again
    own_suffix_pattern: str | None = None


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)  # outputs that exist, kept as asked
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class BatchResult:
    written: list[Path] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)  # videos written (srgan.video), counted apart
    skipped: list[Path] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # one message per input not done

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self, what: str) -> str:
        counts = f"{len(self.skipped)} skipped, {len(self.failed)} failed"
        videos = f" and {len(self.videos)} video(s)" if self.videos else ""
        return f"upscaled {len(self.written)} image(s){videos} with {what}; {counts}"


def default_suffix(model_name: str, scale_label: str) -> str:
    return f"_{model_name}_x{scale_label}"


def own_output_pattern(model_names: Iterable[str]) -> str:
    """A regex matching stems that srgan's default naming gives, for any of `model_names`."""
    names = "|".join(re.escape(name) for name in sorted(set(model_names), key=len, reverse=True))
    return rf"^(?P<stem>.+)_(?:{names})_x\d+(?:\.\d+)?$"


def readable_extensions() -> set[str]:
    from PIL import Image

    return {extension for extension, name in Image.registered_extensions().items() if name in Image.OPEN}


def expand_inputs(inputs: Iterable[str | os.PathLike], *, recursive: bool = False) -> Expansion:
    """Image files named by `inputs`: files as given, the images in folders, glob matches."""
    extensions = readable_extensions()
    found = Expansion()
    for given in inputs:
        text = os.fspath(given)
        path = Path(text).expanduser()
        if path.is_dir():
            _expand_folder(path, extensions, recursive, found)
        elif path.exists() or path.is_symlink() or not glob.has_magic(text):
            found.sources.append(Source(path))  # read_image names a missing or unreadable file
        else:
            matches = sorted(Path(match) for match in glob.glob(str(path), recursive=recursive))
            files = [match for match in matches if match.is_file()]
            if not files:
                found.errors.append(f"{text}: no files match this pattern")
            found.sources.extend(Source(match, named=False) for match in files)
    unique = {}
    for source in found.sources:
        unique.setdefault(source.path.resolve() if source.path.exists() else source.path, source)
    found.sources = list(unique.values())
    return found


def _expand_folder(folder: Path, extensions: set[str], recursive: bool, found: Expansion) -> None:
    images: list[Source] = []
    subfolders = 0
    for current, folders, files in os.walk(folder):
        here = Path(current)
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        if not recursive:
            subfolders += len(folders)
            folders.clear()
        for name in sorted(files):
            entry = here / name
            if name.startswith(".") or entry.suffix.lower() not in extensions:
                continue
            if not entry.exists():
                found.errors.append(f"{entry}: broken symbolic link (its target is missing); fix or remove it")
                continue
            images.append(Source(entry, entry.parent.relative_to(folder), named=False))
    if subfolders:
        found.notes.append(f"{folder}: {subfolders} subfolder(s) not searched; pass --recursive to include them")
    if not images:
        found.errors.append(f"{folder}: no images in this folder" + (" or below" if recursive else ""))
    found.sources.extend(images)


def output_extension(source: Path, format_choice: str | None) -> str:
    from PIL import Image

    if format_choice:
        return FORMAT_EXTENSIONS[format_choice]
    writable = Image.registered_extensions().get(source.suffix.lower()) in Image.SAVE
    return source.suffix if writable else ".png"  # e.g. a PSD input: written as PNG


def _output_file(output: Path | None, count: int, format_choice: str | None, notes: list[str]) -> bool:
    """Whether `output` names one output file (not a folder); refuses names that are neither."""
    from PIL import Image

    # no images to plan (e.g. only videos or frames folders): -o is theirs to name
    if output is None or count == 0 or output.is_dir() or not output.suffix:
        return False
    registered = Image.registered_extensions().get(output.suffix.lower())
    if registered not in Image.SAVE:
        raise SrganError(
            f"-o {output}: {output.suffix!r} is not an image extension srgan can write; name a .png, .jpg, "
            ".webp or .tif file, or a folder (create it first if its name has a dot)"
        )
    if count > 1:
        raise SrganError(f"-o {output}: names one file but there are {count} inputs; give a folder")
    if format_choice and FORMAT_EXTENSIONS[format_choice] != FORMAT_EXTENSIONS.get(output.suffix.lower().lstrip(".")):
        notes.append(f"--format {format_choice} ignored: -o {output.name} is written as {registered} (its extension)")
    return True


def plan_outputs(sources: list[Source], naming: Naming) -> Plan:
    """Output paths for `sources` (see the module docstring); refuses a plan writing a file twice."""
    if naming.existing not in EXISTING_POLICIES:
        raise ValueError(f"existing={naming.existing!r}: use one of {', '.join(EXISTING_POLICIES)}")
    plan = Plan()
    sources = _drop_own_outputs(sources, naming.own_suffix_pattern, plan.notes)
    single = _output_file(naming.output, len(sources), naming.format, plan.notes)
    inputs = {source.path.resolve() for source in sources}
    targets: dict[Path, list[Path]] = {}
    for source in sources:
        if single:
            target = naming.output
        else:
            folder = source.path.parent
            if naming.output is not None:
                folder = naming.output / source.tree if source.tree is not None else naming.output
            target = folder / f"{source.path.stem}{naming.suffix}{output_extension(source.path, naming.format)}"
        resolved = target.resolve()
        targets.setdefault(resolved, []).append(source.path)
        if resolved in inputs:
            plan.errors.append(
                f"{source.path}: its output {target} is one of the input files and is never overwritten; "
                "give another -o or --suffix"
            )
        elif target.is_dir():
            plan.errors.append(f"{source.path}: its output {target} is a folder; give another -o or --suffix")
        elif target.exists() and naming.existing != "overwrite":
            if naming.existing == "skip":
                plan.skipped.append(Job(source.path, target))
            else:
                plan.errors.append(
                    f"{source.path}: {target} exists; pass --overwrite to replace it or --skip-existing to keep it"
                )
        else:
            plan.jobs.append(Job(source.path, target))
    for target, clashing in targets.items():
        if len(clashing) > 1:
            names = ", ".join(str(path) for path in clashing)
            raise SrganError(f"{target}: would be written from several inputs ({names}); rename one")
    return plan


def _drop_own_outputs(sources: list[Source], pattern: str | None, notes: list[str]) -> list[Source]:
    """`sources` without files found in folders/globs that are srgan's outputs of another source there."""
    if pattern is None:
        return sources
    matcher = re.compile(pattern)
    stems = {(source.path.parent, source.path.stem) for source in sources}
    kept, dropped = [], []
    for source in sources:
        match = matcher.match(source.path.stem)
        if not source.named and match and (source.path.parent, match["stem"]) in stems:
            dropped.append(source)
        else:
            kept.append(source)
    if dropped:
        example = dropped[0].path.name
        notes.append(
            f"{len(dropped)} file(s) named like srgan's outputs of other inputs (e.g. {example}) not upscaled "
            "again; name them explicitly to upscale them"
        )
    return kept


def shard(jobs: list, rank: int, world_size: int) -> list:
    """The share of `jobs` process `rank` of `world_size` takes: every world_size-th, from its rank."""
    return jobs[rank::world_size]


class Processes:
    """The processes `torchrun` started for one batch (a plain run is process 0 of 1), as a context.

    Each process plans the same outputs from the same files, then takes its `share` of the jobs (images
    and videos alike, whole files: a video goes to one process). With several processes, a gloo group
    (CPU collectives, whatever device upscales) lets them `wait_for_all` after planning, so that no
    process sees another's first output as an existing file, and `combine` their results at the end.
    """

    def __init__(self) -> None:
        self.rank = self._number("RANK", 0)
        self.world_size = self._number("WORLD_SIZE", 1)
        self.local_rank = self._number("LOCAL_RANK", 0)

    @staticmethod
    def _number(variable: str, default: int) -> int:
        text = os.environ.get(variable, str(default))
        try:
            return int(text)
        except ValueError:
            raise SrganError(f"environment variable {variable}={text!r} is not a number; launch with torchrun") from None

    def __enter__(self) -> Processes:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.init_process_group("gloo", rank=self.rank, world_size=self.world_size)
        return self

    def __exit__(self, *exc_info) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.destroy_process_group()

    def share(self, jobs: list) -> list:
        return shard(jobs, self.rank, self.world_size)

    def wait_for_all(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def combine(self, result: BatchResult) -> BatchResult:
        """The results of all processes together (on every process), in rank order."""
        if self.world_size == 1:
            return result
        import torch.distributed as dist

        results: list[BatchResult | None] = [None] * self.world_size
        dist.all_gather_object(results, result)
        combined = BatchResult()
        for part in results:
            for name in ("written", "videos", "skipped", "failed"):
                getattr(combined, name).extend(getattr(part, name))
        return combined


def run_batch(
    jobs: list[Job],
    upscaler,
    *,
    outscale: float | None = None,
    alpha: str = "bicubic",
    quality: int = DEFAULT_QUALITY,
    max_pixels: int | None = None,
    progress=None,
    report: Callable[[str], None] | None = None,
) -> BatchResult:
    """Upscale each job's source into its target; a bad input is reported and counted, not fatal.

    `progress`: a `srgan.progress.BatchProgress` (or None); `report(message)` gets each error and note
    line (default: stderr). At most one image waits on each side of the upscaling, so memory stays that
    of three images.
    """
    from srgan.imageio import DEFAULT_MAX_PIXELS, read_image

    say = report or (lambda message: print(message, file=sys.stderr))
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels or None
    result = BatchResult()
    pending: tuple[Job, Future] | None = None
    with (
        ThreadPoolExecutor(1, thread_name_prefix="srgan-read") as reader,
        ThreadPoolExecutor(1, thread_name_prefix="srgan-write") as writer,
    ):
        reads = [reader.submit(read_image, job.source, max_pixels=limit) for job in jobs[:1]]
        for index, job in enumerate(jobs):
            if index + 1 < len(jobs):
                reads.append(reader.submit(read_image, jobs[index + 1].source, max_pixels=limit))
            try:
                image = reads.pop(0).result()
                if progress is not None:
                    progress.start_image(job.source.name, image.width * image.height)
                if image.frames > 1:
                    say(f"srgan: note: {job.source}: has {image.frames} frames; only the first is upscaled")
                pixels = _upscale_one(image, upscaler, outscale, alpha, progress, job.source)
            except SrganError as error:
                result.failed.append(str(error))
                say(f"srgan: error: {error}")
                continue
            except (MemoryError, RuntimeError) as error:
                if not isinstance(error, MemoryError) and "memory" not in str(error):
                    raise
                cause = str(error).splitlines()[0]
                message = f"{job.source}: out of memory ({cause}); use a smaller --tile or --outscale"
                result.failed.append(message)
                say(f"srgan: error: {message}")
                continue
            finally:
                if progress is not None:
                    progress.end_image()
            if pending is not None:
                _collect(*pending, result, say)
            pending = (job, writer.submit(_write_one, job.target, pixels, image, quality))
        if pending is not None:
            _collect(*pending, result, say)
    return result


def _upscale_one(image, upscaler, outscale, alpha, progress, source: Path):
    from srgan.inference import upscale_pixels

    return upscale_pixels(
        upscaler,
        image.to_tensor(),
        image.alpha_tensor(),
        bit_depth=image.bit_depth,
        outscale=outscale,
        alpha_mode=alpha,
        progress=None if progress is None else progress.tiles,
        name=str(source),
    )


def _write_one(target: Path, pixels, image, quality: int) -> None:
    from srgan.fileutil import remove_stale_partials
    from srgan.imageio import write_image

    remove_stale_partials(target.parent)  # what a killed earlier run left where this one writes
    write_image(target, pixels, like=image, quality=quality)


def _collect(job: Job, write: Future, result: BatchResult, say) -> None:
    try:
        write.result()
    except SrganError as error:
        result.failed.append(str(error))
        say(f"srgan: error: {error}")
    except OSError as error:
        message = f"{job.target}: cannot write ({error.strerror or error})"
        result.failed.append(message)
        say(f"srgan: error: {message}")
    else:
        result.written.append(job.target)


def upscale_files(
    inputs: Iterable[str | os.PathLike],
    *,
    model=None,
    output: str | os.PathLike | None = None,
    recursive: bool = False,
    suffix: str | None = None,
    format: str | None = None,
    existing: str = "error",
    quality: int = DEFAULT_QUALITY,
    outscale: float | None = None,
    alpha: str = "bicubic",
    max_pixels: int | None = None,
    device: str | None = None,
    tile: int | None = None,
    progress: str = "off",
    report: Callable[[str], None] | None = None,
) -> BatchResult:
    """Upscale image files, folders and globs with `model` (a name, path or `LoadedModel`; default
    `srgan.models.DEFAULT_MODEL`): expand, plan, run. Problems found while planning are in
    `BatchResult.failed` (and reported) like those of the run; a plan that writes a file twice raises.
    """
    from srgan.inference import Upscaler
    from srgan.models import DEFAULT_MODEL, load_model
    from srgan.progress import BatchProgress

    say = report or (lambda message: print(message, file=sys.stderr))
    given_by_name = model is None or isinstance(model, (str, os.PathLike))
    loaded = load_model(model or DEFAULT_MODEL) if given_by_name else model
    naming = naming_for(loaded, output=output, suffix=suffix, format=format, existing=existing, outscale=outscale)
    expansion = expand_inputs(inputs, recursive=recursive)
    plan = plan_outputs(expansion.sources, naming)
    for line in expansion.notes + plan.notes:
        say(f"srgan: note: {line}")
    for line in expansion.errors + plan.errors:
        say(f"srgan: error: {line}")
    upscaler = Upscaler(loaded, device=device, tile=tile)
    bar = BatchProgress(len(plan.jobs), mode=progress)
    try:
        result = run_batch(
            plan.jobs, upscaler, outscale=outscale, alpha=alpha, quality=quality, max_pixels=max_pixels,
            progress=bar, report=say,
        )
    finally:
        bar.close()
    result.failed[:0] = expansion.errors + plan.errors
    result.skipped = [job.target for job in plan.skipped]
    return result


def scale_label(model_scale: int, outscale: float | None) -> str:
    return f"{outscale:g}" if outscale else str(model_scale)


def naming_for(loaded, *, output=None, suffix=None, format=None, existing="error", outscale=None) -> Naming:
    """The `Naming` of outputs of `loaded` (a `LoadedModel`): srgan's default suffix unless `suffix`."""
    from srgan.models import BICUBIC, list_pretrained

    label = scale_label(loaded.scale, outscale)
    if format is not None and format not in FORMAT_EXTENSIONS:
        raise SrganError(f"format {format!r}: unknown; use one of {', '.join(sorted(FORMAT_EXTENSIONS))}")
    return Naming(
        suffix=default_suffix(loaded.name, label) if suffix is None else suffix,
        output=None if output is None else Path(output).expanduser(),
        format=format,
        existing=existing,
        own_suffix_pattern=own_output_pattern([loaded.name, BICUBIC, *list_pretrained()]),
    )
