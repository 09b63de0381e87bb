"""Atomic file writes: an output either appears whole or not at all.

Every file srgan writes for a user (upscaled images, model files, checkpoints, reports) goes through
`atomic_write`: the bytes land in a temporary file in the same folder, are flushed to disk, and are
renamed over the target only when complete. A crash, a full disk or Ctrl-C leaves the old file (or
nothing) in place, never a truncated one. A process killed outright (SIGKILL, power loss) can still
leave its temporary file behind; `remove_stale_partials` is how the next run writing into that folder
clears them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# srgan's temporary files: ".<target name>.<pid>-<mkstemp's 8 random characters>.partial"; the pid
# tells whether the writer may still be running. Names without a pid (older srgan) go by age alone.
_PARTIAL_NAME = re.compile(r"^\.(?P<target>.+)\.(?:(?P<pid>\d+)-)?[a-z0-9_]{8}\.partial$")
# A temporary file untouched this long is stale whoever wrote it (a writer on another machine sharing
# the folder, whose pid means nothing here, would have touched its file far more recently).
STALE_PARTIAL_SECONDS = 3600.0


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it to `path`, on error delete it.

    The caller writes the temporary path by any means (PIL, safetensors, torch.save, open()).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}-", suffix=".partial", dir=target.parent)
    os.close(handle)
    temp_path = Path(temp_name)
    try:
        yield temp_path
        # mkstemp (and some writers that replace the file, such as safetensors) leave it owner-only
        # (0600); give the output the usual permissions instead.
        os.chmod(temp_path, 0o666 & ~_current_umask())
        with open(temp_path, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temp_path, target)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise


@functools.cache
def _current_umask() -> int:
    # os.umask can only be read by setting it; do that once, not on every (possibly threaded) write.
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path) as temp_path:
        temp_path.write_bytes(data)


def remove_stale_partials(folder: str | os.PathLike, *, older_than: float = STALE_PARTIAL_SECONDS) -> list[Path]:
    """Delete the temporary files `atomic_write` left in `folder` when its process was killed.

    Removes only files of srgan's own naming whose writing process is gone (same machine), or that
    nobody touched for `older_than` seconds; a live writer's file is left alone. Returns what was removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    now = time.time()
    for entry in folder.iterdir():
        match = _PARTIAL_NAME.match(entry.name)
        if match is None or not entry.is_file() or entry.is_symlink():
            continue
        pid = match["pid"]
        try:
            stale = (pid is not None and not _process_alive(int(pid))) or now - entry.stat().st_mtime > older_than
            if stale:
                entry.unlink()
                removed.append(entry)
        except FileNotFoundError:  # its writer finished (renamed it) or another cleaner got there first
            continue
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
