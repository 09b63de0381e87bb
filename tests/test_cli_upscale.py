import numpy as np
import pytest
import torch
from PIL import Image

from srgan.archs.registry import create_model
from srgan.cli import main
from srgan.modelfiles import save_model

BICUBIC_X2 = ["--model", "bicubic", "--scale", "2"]
RNG = np.random.default_rng(0)


def save_rgb(path, height=6, width=8):
    Image.fromarray(RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def error_lines(captured):
    return [line for line in captured.err.splitlines() if line.startswith("srgan: error:")]


def no_partial_files(folder):
    return not [path for path in folder.rglob("*") if path.name.endswith(".partial")]


def test_folder_input_upscales_images_and_skips_other_files(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    save_rgb(inputs / "a.png")
    save_rgb(inputs / "b.jpg")
    (inputs / "readme.txt").write_text("not an image")
    out = tmp_path / "out"

    assert main(["upscale", str(inputs), "-o", str(out), *BICUBIC_X2]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["a_x2.png", "b_x2.jpg"]
    with Image.open(out / "a_x2.png") as written:
        assert written.size == (16, 12) and written.format == "PNG"
    with Image.open(out / "b_x2.jpg") as written:
        assert written.format == "JPEG"
    assert "upscaled 2 image(s)" in capsys.readouterr().out


def test_each_bad_input_is_reported_and_the_rest_still_processed(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    save_rgb(inputs / "good.png")
    (inputs / "empty.png").write_bytes(b"")
    (inputs / "text.png").write_text("hello")
    save_rgb(inputs / "full.png", 64, 64)
    data = (inputs / "full.png").read_bytes()
    (inputs / "cut.png").write_bytes(data[: len(data) // 2])
    (inputs / "full.png").unlink()
    save_rgb(inputs / "huge.png", 80, 80)
    out = tmp_path / "out"

    status = main(
        ["upscale", str(inputs), str(tmp_path / "missing.png"), "-o", str(out), "--max-pixels", "5000", *BICUBIC_X2]
    )
    assert status == 1
    errors = error_lines(capsys.readouterr())
    assert len(errors) == 5
    expected = {
        "empty.png": "file is empty",
        "text.png": "not an image",
        "cut.png": "truncated or corrupt",
        "huge.png": "over the limit of 5,000",
        "missing.png": "no such file",
    }
    for name, cause in expected.items():
        assert any(name in line and cause in line for line in errors), (name, errors)
    assert [path.name for path in out.iterdir()] == ["good_x2.png"]
    assert no_partial_files(tmp_path)


def test_unknown_model_fails_before_any_work(tmp_path, capsys):
    save_rgb(tmp_path / "a.png")
    out = tmp_path / "out"
    assert main(["upscale", str(tmp_path / "a.png"), "-o", str(out), "--model", "no-such-model"]) == 1
    captured = capsys.readouterr()
    assert error_lines(captured) == [captured.err.strip()]
    assert "no-such-model: unknown model" in captured.err
    assert not out.exists()


def test_existing_outputs_are_skipped_unless_overwrite(tmp_path):
    source = save_rgb(tmp_path / "a.png")
    target = tmp_path / "out" / "a_x2.png"
    target.parent.mkdir()
    target.write_bytes(b"keep me")

    assert main(["upscale", str(source), "-o", str(target.parent), *BICUBIC_X2]) == 0
    assert target.read_bytes() == b"keep me"

    assert main(["upscale", str(source), "-o", str(target.parent), "--overwrite", *BICUBIC_X2]) == 0
    with Image.open(target) as written:
        assert written.size == (16, 12)


def test_skip_note_names_the_existing_output(tmp_path, capsys):
    source = save_rgb(tmp_path / "a.png")
    (tmp_path / "a_x2.png").write_bytes(b"keep me")
    assert main(["upscale", str(source), *BICUBIC_X2]) == 0  # default output: next to the input
    assert f"skipping {source}: {tmp_path / 'a_x2.png'} exists (use --overwrite)" in capsys.readouterr().err


def test_single_output_file_format_suffix_and_outscale(tmp_path):
    source = save_rgb(tmp_path / "a.png")
    assert main(["upscale", str(source), "-o", str(tmp_path / "result.webp"), *BICUBIC_X2]) == 0
    with Image.open(tmp_path / "result.webp") as written:
        assert written.format == "WEBP" and written.size == (16, 12)

    out = tmp_path / "out"
    assert main(["upscale", str(source), "-o", str(out), "--format", "jpg", "--suffix=-big", *BICUBIC_X2]) == 0
    assert (out / "a-big.jpg").is_file()

    assert main(["upscale", str(source), "-o", str(out), "--outscale", "1.5", *BICUBIC_X2]) == 0
    with Image.open(out / "a_x1.5.png") as written:
        assert written.size == (12, 9)


def test_glob_inputs(tmp_path, capsys):
    save_rgb(tmp_path / "one.png")
    save_rgb(tmp_path / "two.png")
    out = tmp_path / "out"
    assert main(["upscale", str(tmp_path / "*.png"), "-o", str(out), *BICUBIC_X2]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["one_x2.png", "two_x2.png"]

    assert main(["upscale", str(tmp_path / "*.tiff"), "-o", str(out), *BICUBIC_X2]) == 1
    assert "*.tiff: no files match this pattern" in capsys.readouterr().err


def test_empty_folder_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["upscale", str(tmp_path / "empty"), "-o", str(tmp_path / "out"), *BICUBIC_X2]) == 1
    assert "empty: no images in this folder" in capsys.readouterr().err


def test_output_replacing_the_input_is_refused(tmp_path, capsys):
    source = save_rgb(tmp_path / "a.png")
    original = source.read_bytes()
    assert main(["upscale", str(source), "--suffix", "", *BICUBIC_X2]) == 1
    assert "the output would replace the input" in capsys.readouterr().err
    assert source.read_bytes() == original


@pytest.mark.parametrize(
    ("array", "mode"),
    [
        (RNG.integers(0, 256, (5, 7), dtype=np.uint8), "L"),
        (RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8), "RGBA"),
        (RNG.integers(0, 65536, (5, 7), dtype=np.uint16), "I;16"),
    ],
)
def test_mode_and_bit_depth_are_kept(tmp_path, array, mode):
    Image.fromarray(array).save(tmp_path / "in.png")
    assert main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), *BICUBIC_X2]) == 0
    with Image.open(tmp_path / "out.png") as written:
        assert written.mode == mode and written.size == (14, 10)


def test_model_file_with_tiles(tmp_path):
    module = create_model("srresnet_x4", num_blocks=1, num_features=8)
    model_path = tmp_path / "tiny.safetensors"
    save_model(model_path, module, arch="srresnet", kwargs={"num_blocks": 1, "num_features": 8, "scale": 4})
    source = save_rgb(tmp_path / "a.png", 20, 24)
    out = tmp_path / "out"
    args = ["upscale", str(source), "-o", str(out), "--model", str(model_path), "--tile", "8", "--tile-overlap", "10"]
    assert main(args) == 0
    with Image.open(out / "a_x4.png") as written:
        tiled = np.asarray(written)
    assert tiled.shape == (80, 96, 3)
    assert main([*args[:-4], "--tile", "0", "--suffix", "_whole"]) == 0
    with Image.open(out / "a_whole.png") as written:
        assert np.abs(np.asarray(written).astype(int) - tiled).max() <= 1


def test_one_output_file_for_several_inputs_is_refused(tmp_path, capsys):
    first, second = save_rgb(tmp_path / "a.png"), save_rgb(tmp_path / "b.png")
    assert main(["upscale", str(first), str(second), "-o", str(tmp_path / "out.png"), *BICUBIC_X2]) == 1
    assert "names one file but there are 2 inputs" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_two_inputs_with_the_same_output_name_are_refused(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    save_rgb(tmp_path / "x" / "a.png")
    save_rgb(tmp_path / "y" / "a.png")
    out = tmp_path / "out"
    assert main(["upscale", str(tmp_path / "x"), str(tmp_path / "y"), "-o", str(out), *BICUBIC_X2]) == 1
    assert "a_x2.png: would be written from several inputs" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_unavailable_device_is_one_clear_line(tmp_path, capsys):
    source = save_rgb(tmp_path / "a.png")
    assert main(["upscale", str(source), "--device", "cuda", *BICUBIC_X2]) == 1
    assert capsys.readouterr().err.strip() == (
        "srgan: error: device cuda: CUDA is not available on this machine; use --device cpu"
    )
