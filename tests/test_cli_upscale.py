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
    assert sorted(path.name for path in out.iterdir()) == ["a_bicubic_x2.png", "b_bicubic_x2.jpg"]
    with Image.open(out / "a_bicubic_x2.png") as written:
        assert written.size == (16, 12) and written.format == "PNG"
    with Image.open(out / "b_bicubic_x2.jpg") as written:
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
        "huge.png": "over srgan's limit of 5,000",
        "missing.png": "no such file",
    }
    for name, cause in expected.items():
        assert any(name in line and cause in line for line in errors), (name, errors)
    assert [path.name for path in out.iterdir()] == ["good_bicubic_x2.png"]
    assert no_partial_files(tmp_path)


def test_unknown_model_fails_before_any_work(tmp_path, capsys):
    save_rgb(tmp_path / "a.png")
    out = tmp_path / "out"
    assert main(["upscale", str(tmp_path / "a.png"), "-o", str(out), "--model", "no-such-model"]) == 1
    captured = capsys.readouterr()
    assert error_lines(captured) == [captured.err.strip()]
    assert "no-such-model: unknown model" in captured.err
    assert not out.exists()


def test_existing_output_is_an_error_unless_skipping_or_overwriting_is_asked(tmp_path, capsys):
    source = save_rgb(tmp_path / "a.png")
    target = tmp_path / "out" / "a_bicubic_x2.png"
    target.parent.mkdir()
    target.write_bytes(b"keep me")

    assert main(["upscale", str(source), "-o", str(target.parent), *BICUBIC_X2]) == 1  # nothing asked was written
    assert f"{target} exists; pass --overwrite to replace it or --skip-existing" in capsys.readouterr().err
    assert target.read_bytes() == b"keep me"
    assert main(["upscale", str(source), "-o", str(target.parent), "--skip-existing", *BICUBIC_X2]) == 0
    assert "0 skipped" not in capsys.readouterr().out and target.read_bytes() == b"keep me"

    assert main(["upscale", str(source), "-o", str(target.parent), "--overwrite", *BICUBIC_X2]) == 0
    with Image.open(target) as written:
        assert written.size == (16, 12)


def test_outputs_of_two_models_do_not_collide(tmp_path):
    source = save_rgb(tmp_path / "a.png")
    assert main(["upscale", str(source), "-o", str(tmp_path / "out"), *BICUBIC_X2]) == 0
    assert main(["upscale", str(source), "-o", str(tmp_path / "out"), "--model", "compact-psnr-x4"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_bicubic_x2.png", "a_compact-psnr-x4_x4.png"]


def test_rerun_on_a_folder_does_not_upscale_its_own_outputs(tmp_path, capsys):
    save_rgb(tmp_path / "a.png")
    assert main(["upscale", str(tmp_path), *BICUBIC_X2]) == 0
    assert main(["upscale", str(tmp_path), "--overwrite", *BICUBIC_X2]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a_bicubic_x2.png"]
    note = "named like srgan's outputs of other inputs (e.g. a_bicubic_x2.png) not upscaled again"
    assert note in capsys.readouterr().err


def test_overwrite_never_replaces_a_file_of_the_input_set(tmp_path, capsys):
    save_rgb(tmp_path / "a.png")
    unrelated = save_rgb(tmp_path / "a_x2.png", 5, 5)
    original = unrelated.read_bytes()
    assert main(["upscale", str(tmp_path), "--suffix", "_x2", "--overwrite", *BICUBIC_X2]) == 1
    err = capsys.readouterr().err
    assert f"its output {unrelated} is one of the input files and is never overwritten" in err
    assert unrelated.read_bytes() == original
    with Image.open(tmp_path / "a_x2_x2.png") as written:  # the unrelated file is an input like any other
        assert written.size == (10, 10)


def test_single_output_file_format_suffix_and_outscale(tmp_path):
    source = save_rgb(tmp_path / "a.png")
    assert main(["upscale", str(source), "-o", str(tmp_path / "result.webp"), *BICUBIC_X2]) == 0
    with Image.open(tmp_path / "result.webp") as written:
        assert written.format == "WEBP" and written.size == (16, 12)

    out = tmp_path / "out"
    assert main(["upscale", str(source), "-o", str(out), "--format", "jpg", "--suffix=-big", *BICUBIC_X2]) == 0
    assert (out / "a-big.jpg").is_file()

    assert main(["upscale", str(source), "-o", str(out), "--outscale", "1.5", *BICUBIC_X2]) == 0
    with Image.open(out / "a_bicubic_x1.5.png") as written:
        assert written.size == (12, 9)


def test_format_disagreeing_with_the_output_file_is_said(tmp_path, capsys):
    source = save_rgb(tmp_path / "a.png")
    assert main(["upscale", str(source), "-o", str(tmp_path / "x.png"), "--format", "jpg", *BICUBIC_X2]) == 0
    assert "--format jpg ignored: -o x.png is written as PNG" in capsys.readouterr().err
    with Image.open(tmp_path / "x.png") as written:
        assert written.format == "PNG"


def test_output_with_an_unknown_extension_is_refused_not_made_a_folder(tmp_path, capsys):
    source = save_rgb(tmp_path / "a.png")
    assert main(["upscale", str(source), "-o", str(tmp_path / "result.xyz"), *BICUBIC_X2]) == 1
    assert "'.xyz' is not an image extension srgan can write" in capsys.readouterr().err
    assert not (tmp_path / "result.xyz").exists()


def test_quality_sets_jpeg_size(tmp_path, capsys):
    source = save_rgb(tmp_path / "a.png", 40, 40)
    out = tmp_path / "out"
    assert main(["upscale", str(source), "-o", str(out / "low.jpg"), "--quality", "10", *BICUBIC_X2]) == 0
    assert main(["upscale", str(source), "-o", str(out / "high.jpg"), "--quality", "100", *BICUBIC_X2]) == 0
    assert (out / "low.jpg").stat().st_size < (out / "high.jpg").stat().st_size / 2
    assert main(["upscale", str(source), "--quality", "0", *BICUBIC_X2]) == 1
    assert "--quality 0: must be between 1 and 100" in capsys.readouterr().err


def test_glob_inputs(tmp_path, capsys):
    save_rgb(tmp_path / "one.png")
    save_rgb(tmp_path / "two.png")
    out = tmp_path / "out"
    assert main(["upscale", str(tmp_path / "*.png"), "-o", str(out), *BICUBIC_X2]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["one_bicubic_x2.png", "two_bicubic_x2.png"]

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
    assert "is one of the input files and is never overwritten" in capsys.readouterr().err
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
    with Image.open(out / "a_tiny_x4.png") as written:
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
    assert "a_bicubic_x2.png: would be written from several inputs" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_unavailable_device_is_one_clear_line(tmp_path, capsys):
    source = save_rgb(tmp_path / "a.png")
    assert main(["upscale", str(source), "--device", "cuda", *BICUBIC_X2]) == 1
    assert capsys.readouterr().err.strip() == (
        "srgan: error: device cuda: CUDA is not available on this machine; use --device cpu"
    )


def test_recursive_keeps_the_tree_and_plain_folder_mode_names_what_it_left(tmp_path, capsys):
    inputs = tmp_path / "in"
    (inputs / "sub" / "deeper").mkdir(parents=True)
    save_rgb(inputs / "top.png")
    save_rgb(inputs / "sub" / "deeper" / "low.png")
    (inputs / "gone.png").symlink_to(tmp_path / "nowhere.png")
    out = tmp_path / "out"

    assert main(["upscale", str(inputs), "-o", str(out), *BICUBIC_X2]) == 1  # the broken link was not done
    err = capsys.readouterr().err
    assert "1 subfolder(s) not searched; pass --recursive" in err
    assert "gone.png: broken symbolic link" in err
    assert [p.name for p in out.iterdir()] == ["top_bicubic_x2.png"]

    (inputs / "gone.png").unlink()
    assert main(["upscale", str(inputs), "-o", str(out), "-r", "--overwrite", *BICUBIC_X2]) == 0
    assert (out / "sub" / "deeper" / "low_bicubic_x2.png").is_file()


def test_animated_png_says_only_the_first_frame_is_upscaled(tmp_path, capsys):
    frames = [Image.new("RGB", (6, 4), colour) for colour in ("red", "blue", "green")]
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:])  # GIFs go the video path
    assert main(["upscale", str(tmp_path / "anim.png"), *BICUBIC_X2]) == 0
    assert "anim.png: has 3 frames; only the first is upscaled" in capsys.readouterr().err


def test_an_impossible_outscale_is_refused_before_any_allocation_and_the_batch_goes_on(tmp_path, capsys):
    first, second = save_rgb(tmp_path / "a.png", 48, 64), save_rgb(tmp_path / "b.png")
    out = tmp_path / "out"
    assert main(["upscale", str(first), str(second), "-o", str(out), "--outscale", "100000", *BICUBIC_X2]) == 1
    captured = capsys.readouterr()
    assert "a.png: a 6400000x4800000 result: needs about" in captured.err and "GiB available" in captured.err
    assert "b.png" in captured.err  # b is small but 100000x still does not fit: it is tried and reported too
    assert "upscaled 0 image(s)" in captured.out and "2 failed" in captured.out


def test_log_lines_when_stderr_is_not_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("srgan.progress.LOG_INTERVAL_SECONDS", 0.0)
    for name in "abc":
        save_rgb(tmp_path / f"{name}.png")
    assert main(["upscale", str(tmp_path), "-o", str(tmp_path / "out"), *BICUBIC_X2]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("srgan: ") and "images" in line]
    # the last line, written when the batch ends, has the count and rate (and no ETA: nothing is left)
    assert lines[-1].startswith("srgan: 3/3 images") and "MP/s" in lines[-1] and "ETA" not in lines[-1]


def test_alpha_option_sends_the_alpha_channel_through_the_model_or_bicubic(tmp_path):
    from srgan.imageio import read_image
    from srgan.resize import matlab_bicubic_resize

    torch.manual_seed(0)
    module = create_model("srresnet_x4", num_blocks=1, num_features=8)
    model_path = tmp_path / "tiny.safetensors"
    save_model(model_path, module, arch="srresnet", kwargs={"num_blocks": 1, "num_features": 8, "scale": 4})
    rgba = RNG.integers(0, 256, (12, 10, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(np.arange(10) < 5, 255, 0)  # a hard vertical alpha edge
    Image.fromarray(rgba, "RGBA").save(tmp_path / "logo.png")
    run = ["upscale", str(tmp_path / "logo.png"), "--model", str(model_path), "--tile", "0"]
    assert main([*run, "--alpha", "model", "--suffix", "_model"]) == 0
    assert main([*run, "--suffix", "_bicubic"]) == 0  # --alpha bicubic is the default

    alpha = torch.from_numpy(rgba[..., 3]).float()[None, None] / 255
    by_bicubic = (matlab_bicubic_resize(alpha, scale=4).clamp(0, 1)[0, 0] * 255).round().numpy()
    gray = alpha.expand(1, 3, 12, 10)
    with torch.no_grad():  # the alpha plane as a gray image through the network, channels averaged
        by_network = module.eval()(gray)[0].mean(0).clamp(0, 1) * 255
    written = {
        mode: read_image(tmp_path / f"logo_{mode}.png").array[..., 3].astype(float) for mode in ("model", "bicubic")
    }
    assert np.abs(written["bicubic"] - by_bicubic).max() <= 1
    assert np.abs(written["model"] - by_network.round().numpy()).max() <= 1
    assert np.abs(written["model"] - written["bicubic"]).max() > 20  # the two modes really differ here
