"""Shared test fixtures.

`../shared` (benchmark sets, training photos, VGG weights) is present in CI and on developer machines,
absent on a user's: tests that need it take the `shared_dir` fixture and skip with the reason.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

SHARED_DIR = Path(os.environ.get("SRGAN_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))

# Tests run on 2 CPU cores next to other work; a fixed small thread count keeps timings stable.
torch.set_num_threads(2)
# The catalogue lists the user's own model files; tests see none unless they make some (a folder
# that does not exist), so a developer's models never change what a test lists.
os.environ["SRGAN_MODELS_DIR"] = str(Path(tempfile.gettempdir()) / f"srgan-tests-no-user-models-{os.getpid()}")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED_DIR / "data" / "bench").is_dir():
        pytest.skip(f"shared data not found at {SHARED_DIR} (set SRGAN_SHARED_DIR to its location)")
    return SHARED_DIR


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
