"""The one weights-only `torch.load`: a pickle that references code is refused by name and never run,
and torch's advice to retry with weights_only=False never reaches the user."""

from __future__ import annotations

import os

import pytest
import torch

from srgan.cli import main
from srgan.errors import SrganError
from srgan.safeload import load_weights_only
from srgan.train.checkpoint import load_checkpoint


class CallsSystem:
    """Unpickling this would run `os.system(command)` (posix.system on Linux)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.fixture
def malicious(tmp_path):
    marker = tmp_path / "code-ran"
    payload = {"params_ema": {"w": torch.zeros(1)}, "x": CallsSystem(f"touch {marker}")}
    paths = []
    for name in ("evil.pth", "evil.ckpt"):
        torch.save(payload, tmp_path / name)
        paths.append(tmp_path / name)
    yield paths
    assert not marker.exists()


def test_blocked_global_is_a_refusal_naming_the_code(malicious):
    for path in malicious:
        with pytest.raises(SrganError) as caught:
            load_weights_only(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: refused: the file's pickle references code ({os.system.__module__}.system)")
        assert "damaged" not in message and "weights_only" not in message


def test_checkpoint_reader_refuses_without_torch_advice(malicious):
    with pytest.raises(SrganError, match=r"evil\.ckpt: refused: the file's pickle references code") as caught:
        load_checkpoint(malicious[1])
    assert "weights_only" not in str(caught.value)


def test_cli_prints_one_refusal_line(malicious, tmp_path, capsys):
    from PIL import Image

    pth, ckpt = malicious
    image = tmp_path / "in.png"
    Image.new("RGB", (8, 8)).save(image)
    for argv in (
        ["export", str(ckpt), "-o", str(tmp_path / "out.safetensors")],
        ["upscale", str(image), "--model", str(pth), "-o", str(tmp_path / "out.png")],
    ):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "refused: the file's pickle references code" in err and "weights_only" not in err
        assert len(err.strip().splitlines()) == 1


def test_damaged_pickle_names_what_was_expected(tmp_path):
    path = tmp_path / "junk.ckpt"
    path.write_bytes(b"\x80\x02garbage" * 8)
    with pytest.raises(SrganError, match=r"junk\.ckpt: not a readable training checkpoint") as caught:
        load_checkpoint(path)
    assert "weights_only" not in str(caught.value)
