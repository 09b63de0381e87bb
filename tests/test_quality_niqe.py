"""NIQE against MATLAB and a reference table (../shared/data/reference/niqe), the parameter file's
checks, and its checksummed download from a local HTTP server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest
import torch

from srgan.downloads import NIQE_PARAMS_SHA256, fetch_niqe_params
from srgan.errors import SrganError
from srgan.imageio import read_image
from srgan.quality.niqe import luma_8bit, load_niqe_model, niqe

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REFERENCE = SHARED / "reference" / "niqe"
needs_reference = pytest.mark.skipif(
    not (REFERENCE / "niqe_pris_params.npz").is_file(),
    reason="../shared/data/reference/niqe (NIQE parameters and known answers) is not on this machine",
)


@pytest.fixture(scope="module")
def model():
    return load_niqe_model(REFERENCE / "niqe_pris_params.npz")


@needs_reference
def test_matches_matlab_on_the_test_image(model):
    image = read_image(REFERENCE / "baboon_basicsr_test.png").to_tensor()[None]
    # MATLAB R2021a, official niqe_release code: 5.72957338
    assert niqe(image, model).item() == pytest.approx(5.72957338, abs=1e-4)


@needs_reference
@pytest.mark.slow
def test_matches_the_reference_table_on_set5_and_set14(model):
    reference = json.loads((REFERENCE / "niqe_reference.json").read_text())["reference_implementation"]
    assert reference["crop_border"] == 4 and reference["convert_to"] == "y"
    for name, expected in reference["values"].items():
        # the reference read every file as 3 channels, Set14's 1-channel bridge.png included
        image = read_image(SHARED / "bench" / name).to_tensor()[None]
        assert niqe(image, model, crop_border=4).item() == pytest.approx(expected, abs=1e-3), name


def test_luma_is_matlab_uint8_rgb2ycbcr():
    pixels = torch.tensor([[0, 0, 0], [255, 255, 255], [255, 0, 0], [10, 200, 30]], dtype=torch.float32) / 255
    luma = luma_8bit(pixels.T.reshape(1, 3, 1, 4))
    # MATLAB: rgb2ycbcr(uint8(...)) Y = round(16 + (65.481 R + 128.553 G + 24.966 B) / 255)
    assert luma.flatten().tolist() == [16, 235, 81, 122]
    gray = luma_8bit(torch.tensor([[[[0.5, 1.0]]]]))
    assert gray.flatten().tolist() == [128, 255]  # 127.5 rounds away from zero, as MATLAB's round


@needs_reference
def test_scores_do_not_depend_on_the_batch_or_a_flip_of_the_block_grid(model):
    image = read_image(SHARED / "bench" / "Set14" / "lenna.png").to_tensor()
    batch = torch.stack([image, image.flip(-1)])
    scores = niqe(batch[..., :384, :384], model)
    single = niqe(image[None, :, :384, :384], model)
    assert scores[0] == single[0]
    assert scores[1] != scores[0]  # a different image gives a different score


@needs_reference
def test_too_small_image_is_refused(model):
    with pytest.raises(ValueError, match=r"a 96x150 image holds 1 block\(s\) of 96x96; NIQE needs at least 2"):
        niqe(torch.rand(1, 3, 100, 154), model, crop_border=2)


def test_missing_or_wrong_parameter_file_says_how_to_get_it(tmp_path):
    with pytest.raises(SrganError, match=r"NIQE parameters not found; run `srgan models fetch-niqe`"):
        load_niqe_model(tmp_path / "none.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(SrganError, match=r"bad\.npz: not a NIQE parameter file"):
        load_niqe_model(tmp_path / "bad.npz")


@pytest.fixture
def served(tmp_path):
    """The shared parameter file served on 127.0.0.1: (url, sha256)."""
    if not (REFERENCE / "niqe_pris_params.npz").is_file():
        pytest.skip("../shared/data/reference/niqe/niqe_pris_params.npz is not on this machine")
    root = tmp_path / "served"
    root.mkdir()
    shutil.copy(REFERENCE / "niqe_pris_params.npz", root / "niqe_pris_params.npz")

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/niqe_pris_params.npz"
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_verifies_the_published_checksum(served, tmp_path, monkeypatch, capsys):
    from srgan.cli import main

    assert hashlib.sha256((REFERENCE / "niqe_pris_params.npz").read_bytes()).hexdigest() == NIQE_PARAMS_SHA256
    monkeypatch.setenv("SRGAN_CACHE_DIR", str(tmp_path / "cache"))

    assert main(["models", "fetch-niqe", "--url", served]) == 0

    written = tmp_path / "cache" / "niqe_pris_params.npz"
    assert written.read_bytes() == (REFERENCE / "niqe_pris_params.npz").read_bytes()
    assert str(written) in capsys.readouterr().out
    load_niqe_model(written)


def test_fetch_refuses_another_file(served, tmp_path):
    with pytest.raises(SrganError, match="checksum mismatch"):
        fetch_niqe_params(tmp_path / "p.npz", url=served, expected_sha256="0" * 64, progress=False)
    assert not (tmp_path / "p.npz").exists()


@needs_reference
def test_cli_scores_files_offline_with_params_and_writes_json_by_name(tmp_path, capsys):
    from srgan.cli import main

    from srgan.imageio import write_image

    photo = REFERENCE / "baboon_basicsr_test.png"
    small = tmp_path / "small.png"
    write_image(small, torch.rand(3, 100, 100))
    out = tmp_path / "scores.json"

    code = main(["metrics", "niqe", str(photo), str(small), "--params", str(REFERENCE / "niqe_pris_params.npz"),
                 "--json", str(out)])

    captured = capsys.readouterr()
    assert code == 1  # one file could not be scored; the others still are
    assert "small.png: niqe: a 100x100 image holds 1 block(s)" in captured.err
    assert json.loads(out.read_text()) == {str(photo): pytest.approx(5.7296, abs=1e-4)}
    assert "5.7296" in captured.out
