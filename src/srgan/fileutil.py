"""Atomic file writes: an output either appears whole or not at all.

Every file srgan writes for a user (upscaled images, model files, checkpoints, reports) goes through
`atomic_write`: the bytes land in a temporary file in the same folder, are flushed to disk, and are
renamed over the target only when complete. A crash, a full disk or Ctrl-C leaves the old file (or
nothing) in place, never a truncated one.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it to `path`, on error delete it.

    The caller writes the temporary path by any means (PIL, safetensors, torch.save, open()).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
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
