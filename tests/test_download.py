"""`fetch_vgg19` against a local HTTP server: checksum verified, only `features.*` kept, nothing left
behind when the checksum or the connection fails."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading

import pytest
import torch

from srgan.cli import main
from srgan.errors import SrganError
from srgan.downloads import fetch_vgg19
from srgan.modelfiles.srgan_safetensors import read_header
from safetensors.torch import load_file


@pytest.fixture
def served(tmp_path):
    """A small fake torchvision VGG checkpoint served on 127.0.0.1: (url, sha256, its tensors)."""
    root = tmp_path / "served"
    root.mkdir()
    tensors = {
        "features.0.weight": torch.randn(4, 3, 3, 3),
        "features.0.bias": torch.randn(4),
        "features.2.weight": torch.randn(4, 4, 3, 3),
        "classifier.0.weight": torch.randn(2, 8),
    }
    # torchvision's 2017 files use the legacy (non-zip) serialization
    torch.save(tensors, root / "vgg19-fake.pth", _use_new_zipfile_serialization=False)
    digest = hashlib.sha256((root / "vgg19-fake.pth").read_bytes()).hexdigest()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/vgg19-fake.pth", digest, tensors
    finally:
        server.shutdown()
        server.server_close()


def test_download_keeps_verified_features_with_their_convention(served, tmp_path):
    url, digest, tensors = served
    out = tmp_path / "out" / "vgg19.safetensors"

    # torchvision publishes only an 8-digit prefix of the sha256; a prefix must be accepted
    written = fetch_vgg19(out, url=url, expected_sha256=digest[:8], progress=False)

    state_dict, metadata = load_file(written), read_header(written)
    assert written == out
    assert set(state_dict) == {"features.0.weight", "features.0.bias", "features.2.weight"}
    assert torch.equal(state_dict["features.2.weight"], tensors["features.2.weight"])
    assert metadata["convention"] == "torchvision"
    assert metadata["preprocessing"].startswith("torchvision: RGB, range 0-1")
    assert metadata["sha256"] == digest
    assert sorted(path.name for path in out.parent.iterdir()) == ["vgg19.safetensors"]


def test_checksum_mismatch_leaves_no_file(served, tmp_path):
    url, digest, _ = served
    out_dir = tmp_path / "out"
    wrong = "0" * 64 if not digest.startswith("0") else "f" * 64

    with pytest.raises(SrganError, match=r"vgg19-fake\.pth: checksum mismatch"):
        fetch_vgg19(out_dir / "vgg19.safetensors", url=url, expected_sha256=wrong, progress=False)

    assert list(out_dir.iterdir()) == []


def test_unreachable_server_is_one_clear_error(served, tmp_path):
    url, digest, _ = served
    missing = url.replace("vgg19-fake.pth", "not-there.pth")
    with pytest.raises(SrganError, match=r"not-there\.pth: download failed \(HTTP Error 404"):
        fetch_vgg19(tmp_path / "vgg19.safetensors", url=missing, expected_sha256=digest, progress=False)
    assert list(tmp_path.iterdir()) == [tmp_path / "served"]


def test_cli_fetch_writes_to_the_cache_by_default(served, tmp_path, monkeypatch, capsys):
    url, digest, _ = served
    monkeypatch.setenv("SRGAN_CACHE_DIR", str(tmp_path / "cache"))

    assert main(["models", "fetch-vgg19", "--url", url, "--sha256", digest]) == 0

    assert (tmp_path / "cache" / "vgg19_imagenet_torchvision.safetensors").is_file()
    assert "torchvision preprocessing" in capsys.readouterr().out
