"""The bad-input corpus: damaged files and faults, all generated here, against every command.

Every case asserts the same contract (docs/RELIABILITY.md): one `srgan: error:` line (or one JSON
error for the server) that names the file at fault, a non-zero exit when something was not done, no
traceback, no output left behind (not even a hidden `.partial`), and the inputs byte for byte as they
were. The command-line cases run in-process through `srgan.cli.main` so the corpus stays fast.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import srgan
from srgan.cli import main
from srgan.data.files import IMAGE_EXTENSIONS
from srgan.errors import SrganError

# the tiny training recipe and its images are shared with the training tests
from test_train_loop import _one_thread, image_dirs, tiny_recipe  # noqa: F401

BICUBIC_X2 = ["--model", "bicubic", "--scale", "2"]


@pytest.fixture(autouse=True)
def _pillows_own_bomb_limit(monkeypatch):
    """Each case starts as a fresh process does: reading an image lifts Pillow's decompression-bomb limit
    for the process (srgan's own limit replaces it), which would hide a path that opens images another way."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 89_478_485)  # Pillow's default


# ---- the corpus: how each kind of bad input is made ---------------------------------------------


def _pixels(height: int = 24, width: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _encoded(image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_pixels()).save(buffer, format=image_format, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png() -> bytes:
    """A 100-byte PNG whose header claims 60000 x 60000 pixels (3.6 gigapixels)."""
    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    body = _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 16)) + _png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def _bomb_gif() -> bytes:
    """A tiny GIF whose logical screen and frame claim 60000 x 60000 pixels."""
    size = struct.pack("<HH", 60000, 60000)
    frame = b"," + b"\0\0\0\0" + size + b"\0" + b"\x02\x02\x44\x01\x00"
    return b"GIF89a" + size + b"\0\0\0" + frame + b";"


def _scrambled_idat_png() -> bytes:
    """A PNG whose compressed pixel stream is garbled after its start (chunk lengths intact)."""
    data = _encoded("PNG")
    start = data.index(b"IDAT") + 4 + 20
    return data[:start] + bytes(byte ^ 0x5A for byte in data[start : start + 30]) + data[start + 30 :]


def _flipped_header_png() -> bytes:
    data = _encoded("PNG")
    return data[:20] + bytes([data[20] ^ 0xFF]) + data[21:]


@dataclass(frozen=True)
class BadImage:
    name: str  # the file name, its extension the one a user would give it
    make: Callable[[], bytes]
    says: str  # what the one-line message must say besides the file name
    http_status: int  # what the server answers when it is uploaded

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.name
        path.write_bytes(self.make())
        return path


BAD_IMAGES = [
    BadImage("empty.png", lambda: b"", "file is empty", 422),
    BadImage("text.png", lambda: b"hello, I am not an image\n", "not an image", 415),
    BadImage("noise.jpg", lambda: np.random.default_rng(1).bytes(500), "not an image", 415),
    BadImage("signature_only.png", lambda: _encoded("PNG")[:8], "not an image", 415),
    BadImage("cut.png", lambda: _encoded("PNG")[: len(_encoded("PNG")) // 2], "truncated or corrupt", 422),
    BadImage("scrambled.png", _scrambled_idat_png, "truncated or corrupt", 422),
    BadImage("flipped_header.png", _flipped_header_png, "not an image", 415),
    BadImage("cut.jpg", lambda: _encoded("JPEG")[:300], "cannot be opened", 422),
    BadImage("cut.tif", lambda: _encoded("TIFF")[:400], "truncated or corrupt", 422),
    BadImage("cut.webp", lambda: _encoded("WEBP")[:100], "cannot be opened", 422),
    BadImage("cut.gif", lambda: _encoded("GIF")[:60], "not an image", 415),
    BadImage("cut.bmp", lambda: _encoded("BMP")[:200], "truncated or corrupt", 422),
    BadImage("zero_header.bmp", lambda: b"BM" + bytes(60), "cannot be opened", 422),
    BadImage("bomb.png", _bomb_png, "over srgan's limit of 100,000,000", 413),
    BadImage("bomb.gif", _bomb_gif, "over srgan's limit of 100,000,000", 413),
]
IMAGE_IDS = [bad.name for bad in BAD_IMAGES]
# datasets (eval, training) are read by extension, and a GIF is no dataset image
DATASET_IMAGES = [bad for bad in BAD_IMAGES if Path(bad.name).suffix in IMAGE_EXTENSIONS]


def _good_image(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_pixels(seed=seed)).save(path)
    return path


def _snapshot(*folders: Path) -> dict[str, str]:
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in folders
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _named_failure(code: int, captured, path: Path, says: str) -> str:
    """The contract for a command that did not do its work; returns the error line."""
    assert code != 0
    assert "Traceback" not in captured.err + captured.out
    errors = [line for line in captured.err.splitlines() if line.startswith("srgan: error: ")]
    assert len(errors) == 1, captured.err
    assert str(path) in errors[0] and says in errors[0], errors[0]
    return errors[0]


def _nothing_written(folder: Path) -> None:
    assert not folder.exists() or not any(folder.rglob("*")), sorted(folder.rglob("*"))


def _no_partials(folder: Path) -> None:
    assert not [path for path in folder.rglob("*") if path.name.endswith(".partial")]


# ---- every bad image against upscale, eval, the Python API and the server -----------------------


@pytest.mark.parametrize("bad", BAD_IMAGES, ids=IMAGE_IDS)
def test_upscale_names_the_bad_image_and_writes_nothing(bad, tmp_path, capsys):
    path = bad.write(tmp_path / "in")
    before = _snapshot(tmp_path / "in")
    out = tmp_path / "out"
    code = main(["upscale", str(path), "-o", str(out / "result.png"), *BICUBIC_X2])
    _named_failure(code, capsys.readouterr(), path, bad.says)
    _nothing_written(out)
    _no_partials(tmp_path)
    assert _snapshot(tmp_path / "in") == before


@pytest.mark.parametrize("bad", DATASET_IMAGES, ids=[bad.name for bad in DATASET_IMAGES])
def test_eval_names_the_bad_image_instead_of_scoring_the_rest(bad, tmp_path, capsys):
    dataset = tmp_path / "Set2"
    _good_image(dataset / "good.png")
    path = bad.write(dataset)
    before = _snapshot(dataset)
    report = tmp_path / "report" / "r.json"
    code = main(["eval", "--data", str(dataset), "--scale", "2", "--json", str(report)])
    _named_failure(code, capsys.readouterr(), path, bad.says)
    _nothing_written(report.parent)
    assert _snapshot(dataset) == before


@pytest.mark.parametrize("bad", BAD_IMAGES, ids=IMAGE_IDS)
def test_python_api_raises_one_srgan_error_naming_the_file(bad, tmp_path):
    path = bad.write(tmp_path)
    with pytest.raises(SrganError) as caught:
        srgan.read_image(path)
    assert str(path) in str(caught.value) and bad.says in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.fixture(scope="module")
def upscale_server():
    pytest.importorskip("fastapi", reason='srgan serve needs its extra: pip install "srgan[serve]"')
    httpx = pytest.importorskip("httpx", reason='the serve tests need httpx: pip install "srgan[test]"')
    from test_serve_api import serving_in_thread

    from srgan.serve.app import ServerSettings, create_app
    from srgan.serve.engine import UpscaleEngine

    settings = ServerSettings(max_upload_bytes=64 * 1024, max_pixels=20_000)
    app = create_app(UpscaleEngine("bicubic", max_pixels=settings.max_pixels), settings)
    with serving_in_thread(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as http:
        yield http


def _json_error(response, status: int) -> str:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert message and "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize("bad", BAD_IMAGES, ids=IMAGE_IDS)
def test_server_refuses_the_bad_image_with_one_json_error(bad, upscale_server):
    response = upscale_server.post("/api/upscale", files={"image": (bad.name, bad.make(), "image/png")})
    message = _json_error(response, bad.http_status)
    assert "/tmp" not in message and "srgan-serve-" not in message  # the server's own paths stay private


def test_server_faults_beyond_images(upscale_server):
    png = _encoded("PNG")
    rebound = {"host": "evil.example", "origin": "http://evil.example"}
    assert "evil.example" in _json_error(upscale_server.post("/api/upscale", headers=rebound), 403)
    foreign = upscale_server.post("/api/upscale", files={"image": ("a.png", png, "image/png")},
                                  headers={"origin": "http://elsewhere.example"})
    assert "elsewhere.example" in _json_error(foreign, 403)
    big = upscale_server.post("/api/upscale", files={"image": ("big.png", bytes(70 * 1024), "image/png")})
    assert "too large" in _json_error(big, 413)
    assert "'image'" in _json_error(upscale_server.post("/api/upscale", files={"picture": ("a.png", png)}), 422)
    for outscale in ("nan", "1e9", "two"):
        answer = upscale_server.post("/api/upscale", files={"image": ("a.png", png)}, data={"outscale": outscale})
        assert "outscale" in _json_error(answer, 422)
    traversal = upscale_server.get("/api/jobs/..%2F..%2Fetc%2Fpasswd")
    assert traversal.status_code in (404, 422) and traversal.json()["error"]


# ---- training: bad images are skipped with a named warning line, in train.log too ------------------


def test_training_skips_every_bad_image_naming_it_in_the_log(tiny_recipe, image_dirs, tmp_path, capsys):
    train_dir = tmp_path / "train"
    train_dir.mkdir()
    for index, good in enumerate(sorted(image_dirs[0].iterdir())):
        (train_dir / f"good{index}.png").write_bytes(good.read_bytes())
    bad_paths = [bad.write(train_dir) for bad in DATASET_IMAGES]
    before = _snapshot(train_dir)
    run = tmp_path / "run"
    code = main(["train", str(tiny_recipe), "--out", str(run), "--set", "train.iterations=2",
                 f"data.train_dirs=[{train_dir}]", "log.val_every=2", "checkpoint.every=2"])
    captured = capsys.readouterr()
    assert code == 0 and "Traceback" not in captured.err and "UserWarning" not in captured.err
    log = (run / "train.log").read_text()
    for path in bad_paths:
        assert f"WARNING skipping unreadable image: {path}:" in log
    assert (run / "generator.safetensors").is_file()
    assert _snapshot(train_dir) == before


# ---- model files, against upscale and load_model -------------------------------------------------


class _CallsSystem:
    """Unpickling this would run a shell command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _tiny_state() -> tuple[dict, dict]:
    from srgan.archs.registry import build_arch

    kwargs = {"num_features": 4, "num_convs": 1, "scale": 2}
    return kwargs, build_arch("srvgg_compact", kwargs).state_dict()


def _safetensors(path: Path, metadata: dict[str, str], *, shapes_from_scale: int = 2) -> Path:
    from safetensors.torch import save_file

    from srgan.archs.registry import build_arch

    weights = build_arch("srvgg_compact", {"num_features": 4, "num_convs": 1, "scale": shapes_from_scale}).state_dict()
    save_file(weights, str(path), metadata={"format": "srgan", **metadata})
    return path


def _corrupt_checkpoint(path: Path) -> Path:
    """A training checkpoint whose tensor bytes were damaged after it was written (its zip still reads)."""
    from srgan.train.checkpoint import save_checkpoint

    kwargs, params = _tiny_state()
    config = {"name": "tiny", "scale": 2, "generator": {"arch": "srvgg_compact", "kwargs": kwargs},
              "data": {"train_dirs": ["x"]}}
    save_checkpoint(path, {"iteration": 5, "config": config, "params": params, "params_ema": None})
    target = max(params.values(), key=torch.Tensor.numel).numpy().tobytes()
    path.write_bytes(path.read_bytes().replace(target, bytes(len(target))))
    return path


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _pickled(path: Path, payload) -> Path:
    torch.save(payload, path)
    return path


def _truncated_safetensors(path: Path) -> Path:
    from srgan.modelfiles import save_model
    from srgan.archs.registry import build_arch

    kwargs, _ = _tiny_state()
    save_model(path, build_arch("srvgg_compact", kwargs), arch="srvgg_compact", kwargs=kwargs)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    return path


BAD_MODELS = {
    "code_in_pickle.pth": (lambda p: _pickled(p, {"w": _CallsSystem(p.parent / "code-ran")}),
                           "refused: the file's pickle references code"),
    "empty.pth": (lambda p: _written(p, b""), "file is empty (0 bytes)"),
    "noise.pth": (lambda p: _written(p, np.random.default_rng(2).bytes(300)), "not a readable"),
    "cut.safetensors": (_truncated_safetensors, "not a readable safetensors file"),
    "unknown_arch.safetensors": (lambda p: _safetensors(p, {"arch": "srgann", "kwargs": "{}"}),
                                 "unknown architecture 'srgann'"),
    "bad_kwargs.safetensors": (lambda p: _safetensors(p, {"arch": "srvgg_compact", "kwargs": "{oops"}),
                               "damaged metadata"),
    "wrong_shapes.safetensors": (lambda p: _safetensors(p, {"arch": "srvgg_compact", "kwargs": '{"num_features": 4, '
                                                        '"num_convs": 1, "scale": 2}'}, shapes_from_scale=3),
                                 ""),
    "corrupt.ckpt": (_corrupt_checkpoint, "checkpoint is corrupt"),
    "weights.xyz": (lambda p: _written(p, b"weights"), ""),
}


@pytest.mark.parametrize("name", list(BAD_MODELS))
def test_a_bad_model_file_is_named_by_upscale_and_load_model(name, tmp_path, capsys):
    make, says = BAD_MODELS[name]
    models = tmp_path / "models"
    models.mkdir()
    path = make(models / name)
    image = _good_image(tmp_path / "in" / "a.png")
    before = _snapshot(models, image.parent)
    out = tmp_path / "out"
    code = main(["upscale", str(image), "--model", str(path), "-o", str(out / "a_x2.png")])
    _named_failure(code, capsys.readouterr(), path, says)
    with pytest.raises(SrganError, match=str(path).replace(".", r"\.")):
        srgan.load_model(path)
    _nothing_written(out)
    assert _snapshot(models, image.parent) == before
    assert not (models / "code-ran").exists()


# ---- upscale: command-level faults ---------------------------------------------------------------


def test_upscale_command_faults(tmp_path, capsys):
    inputs = tmp_path / "in"
    image = _good_image(inputs / "a.png")
    before = _snapshot(inputs)

    missing = tmp_path / "nowhere.png"
    _named_failure(main(["upscale", str(missing), *BICUBIC_X2]), capsys.readouterr(), missing, "no such file")

    odd = tmp_path / "result.xyz"
    _named_failure(main(["upscale", str(image), "-o", str(odd), *BICUBIC_X2]), capsys.readouterr(), odd, "")
    assert not odd.exists()

    huge = main(["upscale", str(image), "-o", str(tmp_path / "big.png"), "--outscale", "100000", *BICUBIC_X2])
    _named_failure(huge, capsys.readouterr(), image, "result: needs about")
    assert not (tmp_path / "big.png").exists()

    existing = _good_image(tmp_path / "taken.png", seed=3)
    taken = _snapshot(tmp_path)[str(existing)]
    code = main(["upscale", str(image), "-o", str(existing), *BICUBIC_X2])
    _named_failure(code, capsys.readouterr(), existing, "--overwrite")
    assert _snapshot(tmp_path)[str(existing)] == taken

    # an unrelated input named like the output of another input is never replaced, even with --overwrite
    lookalike = _good_image(inputs / "a_x2.png", seed=4)
    kept = lookalike.read_bytes()
    code = main(["upscale", str(inputs), "--suffix", "_x2", "--overwrite", *BICUBIC_X2])
    captured = capsys.readouterr()
    assert code != 0 and "Traceback" not in captured.err and f"its output {lookalike} is one of the input" in captured.err
    assert lookalike.read_bytes() == kept
    for made in ("a_x2.png", "a_x2_x2.png"):
        (inputs / made).unlink()
    assert _snapshot(inputs) == before
    _no_partials(tmp_path)


def test_upscale_says_what_it_left_out_of_a_folder(tmp_path, capsys):
    inputs = tmp_path / "in"
    _good_image(inputs / "a.png")
    (inputs / "dangling.png").symlink_to(tmp_path / "gone.png")
    (inputs / "sub").mkdir()
    _good_image(inputs / "sub" / "b.png")
    frames = [Image.new("RGB", (6, 4), colour) for colour in ("red", "blue")]
    frames[0].save(inputs / "anim.png", save_all=True, append_images=frames[1:])
    code = main(["upscale", str(inputs), "-o", str(tmp_path / "out"), *BICUBIC_X2])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert str(inputs / "dangling.png") in captured.err and "sub" in captured.err
    assert "anim.png: has 2 frames; only the first is upscaled" in captured.err
    assert code != 0  # the dangling link was not upscaled


# ---- eval: faults of the dataset and the models --------------------------------------------------


def test_eval_faults(tmp_path, capsys):
    hr = tmp_path / "Set2"
    _good_image(hr / "a.png")
    _good_image(hr / "b.png", seed=1)
    lr = tmp_path / "lr"
    lr.mkdir()
    Image.fromarray(_pixels(12, 16)).save(lr / "a.png")
    before = _snapshot(hr, lr)
    report = tmp_path / "report.json"

    code = main(["eval", "--data", str(hr), "--lr-dir", str(lr), "--scale", "2", "--json", str(report)])
    _named_failure(code, capsys.readouterr(), hr / "b.png", "")  # b has no LR partner

    Image.fromarray(_pixels(10, 16)).save(lr / "b.png")
    code = main(["eval", "--data", str(hr), "--lr-dir", str(lr), "--scale", "2", "--json", str(report)])
    _named_failure(code, capsys.readouterr(), lr / "b.png", "the HR must be")  # b's LR has the wrong size
    (lr / "b.png").unlink()

    model = _safetensors(tmp_path / "x3.safetensors", {"arch": "srvgg_compact", "kwargs": '{"num_features": 4, '
                                                        '"num_convs": 1, "scale": 3}'}, shapes_from_scale=3)
    code = main(["eval", "--model", str(model), "--data", str(hr), "--scale", "2", "--json", str(report)])
    _named_failure(code, capsys.readouterr(), model, "not x2")

    empty = tmp_path / "empty"
    empty.mkdir()
    _named_failure(main(["eval", "--data", str(empty), "--json", str(report)]), capsys.readouterr(), empty, "no images")
    assert not report.exists()
    assert _snapshot(hr, lr) == before


# ---- train: faults of the recipe, its overrides, its init weights and its checkpoints ------------------


def test_train_faults(tiny_recipe, tmp_path, capsys):
    run = tmp_path / "run"

    def fails(path: Path, says: str, *args: str) -> None:
        code = main(["train", *args, "--out", str(run)])
        _named_failure(code, capsys.readouterr(), path, says)
        assert not (run / "checkpoints").exists() and not (run / "generator.safetensors").exists()

    not_yaml = tmp_path / "broken.yaml"
    not_yaml.write_text("name: [unclosed\n")
    fails(not_yaml, "", str(not_yaml))

    unknown_key = tmp_path / "unknown.yaml"
    recipe = yaml.safe_load(tiny_recipe.read_text())
    unknown_key.write_text(yaml.safe_dump({**recipe, "trian": {}}))
    fails(unknown_key, "trian", str(unknown_key))

    # an override that is not YAML names itself (there is no file to name)
    code = main(["train", str(tiny_recipe), "--out", str(run), "--set", "data.train_dirs=[a,b"])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err and "data.train_dirs=[a,b" in captured.err

    evil = _pickled(tmp_path / "evil.pth", {"w": _CallsSystem(tmp_path / "code-ran")})
    fails(evil, "refused", str(tiny_recipe), "--set", f"generator.init={evil}")
    assert not (tmp_path / "code-ran").exists()

    corrupt = _corrupt_checkpoint(tmp_path / "iter_00000005.ckpt")
    fails(corrupt, "checkpoint is corrupt", str(tiny_recipe), "--resume", str(corrupt))

    missing = tmp_path / "absent_dir"
    fails(missing, "", str(tiny_recipe), "--set", f"data.train_dirs=[{missing}]")


# ---- faults while writing: SIGTERM unwinds, a SIGKILLed writer's leftovers are cleared -------------


def test_sigterm_while_writing_leaves_no_partial_file(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    source = tmp_path / "noise.png"
    Image.fromarray(_pixels(700, 700, seed=5)).save(source)  # x2 noise: a slow PNG to encode
    out = tmp_path / "out"
    command = [sys.executable, "-m", "srgan", "upscale", str(source), "-o", str(out / "big.png"), *BICUBIC_X2]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not (out.is_dir() and any(path.name.endswith(".partial") for path in out.iterdir())):
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the output was never being written"
            time.sleep(0.005)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 143
    finally:
        process.kill()
        process.wait()
    assert "Traceback" not in process.stderr.read().decode()
    _no_partials(tmp_path)
    if (out / "big.png").exists():  # the writer thread may finish its file while the main thread unwinds
        with Image.open(out / "big.png") as written:
            written.load()
            assert written.size == (1400, 1400)


def test_a_frames_folder_with_a_bomb_frame_is_one_line(tmp_path, capsys):
    pytest.importorskip("av", reason='video needs its extra: pip install "srgan[video]"')
    frames = tmp_path / "frames"
    frames.mkdir()
    frame = frames / "0001.png"
    frame.write_bytes(_bomb_png())
    code = main(["upscale", str(frames), "-o", str(tmp_path / "clip.mp4"), *BICUBIC_X2])
    _named_failure(code, capsys.readouterr(), frame, "not a readable image")
    assert not (tmp_path / "clip.mp4").exists()
    _no_partials(tmp_path)


def test_the_next_run_clears_what_a_killed_writer_left(tmp_path):
    import subprocess
    import sys

    image = _good_image(tmp_path / "in" / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = out / f".a_bicubic_x2.png.{int(finished.stdout)}-abcd1234.partial"  # a SIGKILLed writer's file
    leftover.write_bytes(b"half an image")
    assert main(["upscale", str(image), "-o", str(out), *BICUBIC_X2]) == 0
    assert not leftover.exists() and (out / "a_bicubic_x2.png").is_file()


def test_a_reader_that_went_away_is_no_traceback():
    """`srgan models | head`: the pipe closes before srgan has written; it exits as SIGPIPE would, silently."""
    import signal
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write
    try:
        finished = subprocess.run([sys.executable, "-m", "srgan", "models"], stdout=write_end,
                                  stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert "Traceback" not in finished.stderr, finished.stderr
    assert finished.stderr == ""
    assert finished.returncode == 128 + signal.SIGPIPE
