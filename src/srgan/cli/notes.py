"""Warnings of the layers below, said on the command line as `srgan: warning: ...` lines."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def warnings_said() -> Iterator[None]:
    """While a command runs, the `srgan` logger's warnings (no EMA weights, a .pth chaiNNer / ComfyUI
    cannot open, a model file left out of the catalogue) go to stderr as `srgan: warning: ...`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("srgan: warning: %(message)s"))
    logger = logging.getLogger("srgan")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
