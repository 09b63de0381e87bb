import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from srgan.errors import SrganError
from srgan.imageio import LoadedImage, read_image, tensor_to_array, write_image

RNG = np.random.default_rng(0)


def random_pixels(height, width, channels, dtype=np.uint8):
    peak = np.iinfo(dtype).max
    return RNG.integers(0, peak + 1, (height, width, channels), dtype=np.int64).astype(dtype)


# WebP has no gray modes, so only colour layouts are tried with it.
LOSSLESS_LAYOUTS = [
    (channels, extension)
    for channels in (1, 2, 3, 4)  # L, LA, RGB, RGBA
    for extension in (".png", ".tif", ".webp")
    if not (extension == ".webp" and channels < 3)
]


@pytest.mark.parametrize(("channels", "extension"), LOSSLESS_LAYOUTS)
def test_8bit_modes_round_trip_losslessly(tmp_path, channels, extension):
    pixels = random_pixels(5, 7, channels)
    source = tmp_path / f"in{extension}"
    options = {"lossless": True} if extension == ".webp" else {}
    Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(source, **options)

    loaded = read_image(source)
    assert loaded.array.dtype == np.uint8 and loaded.array.shape == (5, 7, channels)
    np.testing.assert_array_equal(loaded.array, pixels)

    target = tmp_path / f"out{extension}"
    write_image(target, loaded.to_tensor() if channels == 3 else loaded.array, like=loaded)
    written = read_image(target)
    assert written.array.shape == pixels.shape
    if extension != ".webp":  # srgan writes WebP lossy (quality 95)
        np.testing.assert_array_equal(written.array, pixels)


def test_float_tensor_round_trip_through_loaded_image(tmp_path):
    pixels = random_pixels(6, 4, 3)
    source = tmp_path / "in.png"
    Image.fromarray(pixels).save(source)
    loaded = read_image(source)
    tensor = loaded.to_tensor()
    assert tensor.dtype == torch.float32 and tensor.shape == (3, 6, 4)
    assert 0.0 <= tensor.min() and tensor.max() <= 1.0
    write_image(tmp_path / "out.png", tensor, like=loaded)
    np.testing.assert_array_equal(read_image(tmp_path / "out.png").array, pixels)


def test_gray_is_repeated_to_rgb_and_written_back_as_gray(tmp_path):
    pixels = random_pixels(4, 4, 1)
    source = tmp_path / "gray.png"
    Image.fromarray(pixels[..., 0]).save(source)
    loaded = read_image(source)
    tensor = loaded.to_tensor()
    assert tensor.shape == (3, 4, 4)
    assert torch.equal(tensor[0], tensor[1]) and torch.equal(tensor[1], tensor[2])
    assert loaded.alpha_tensor() is None

    write_image(tmp_path / "out.png", tensor, like=loaded)
    with Image.open(tmp_path / "out.png") as written:
        assert written.mode == "L"
    np.testing.assert_array_equal(read_image(tmp_path / "out.png").array, pixels)


def test_alpha_is_kept_separately(tmp_path):
    pixels = random_pixels(3, 5, 4)
    Image.fromarray(pixels).save(tmp_path / "rgba.png")
    loaded = read_image(tmp_path / "rgba.png")
    assert loaded.to_tensor().shape == (3, 3, 5)
    alpha = loaded.alpha_tensor()
    assert alpha.shape == (1, 3, 5)
    np.testing.assert_allclose(alpha[0].numpy(), pixels[..., 3] / 255.0, atol=1e-7)


def test_16bit_gray_png_round_trips_at_16_bits(tmp_path):
    pixels = random_pixels(9, 11, 1, np.uint16)
    Image.fromarray(pixels[..., 0]).save(tmp_path / "in.png")
    loaded = read_image(tmp_path / "in.png")
    assert loaded.bit_depth == 16 and loaded.array.dtype == np.uint16
    np.testing.assert_array_equal(loaded.array, pixels)

    write_image(tmp_path / "out.png", loaded.to_tensor(), like=loaded)
    with Image.open(tmp_path / "out.png") as written:
        assert written.mode == "I;16"
    np.testing.assert_array_equal(read_image(tmp_path / "out.png").array, pixels)


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_16bit_colour_png_round_trips_at_16_bits(tmp_path, channels):
    pixels = random_pixels(8, 13, channels, np.uint16)
    write_image(tmp_path / "in.png", pixels)
    with Image.open(tmp_path / "in.png") as opened:  # a standard PNG other readers accept
        assert opened.size == (13, 8)
    loaded = read_image(tmp_path / "in.png")
    assert loaded.bit_depth == 16
    np.testing.assert_array_equal(loaded.array, pixels)

    write_image(tmp_path / "out.png", loaded.to_tensor() if channels == 3 else loaded.array, like=loaded)
    np.testing.assert_array_equal(read_image(tmp_path / "out.png").array, pixels)


def _encode_png16_rgb_with_filter(path, pixels, png_filter):
    """A 16-bit RGB PNG whose rows all use one PNG filter type (1 Sub ... 4 Paeth)."""
    height, width, _ = pixels.shape
    data = pixels.astype(">u2").reshape(height, width * 3).view(np.uint8).astype(np.int32)
    left = np.pad(data, ((0, 0), (6, 0)))[:, :-6]
    up = np.pad(data, ((1, 0), (0, 0)))[:-1]
    up_left = np.pad(data, ((1, 0), (6, 0)))[:-1, :-6]
    estimate = left + up - up_left
    distances = [np.abs(estimate - left), np.abs(estimate - up), np.abs(estimate - up_left)]
    paeth = np.where(
        (distances[0] <= distances[1]) & (distances[0] <= distances[2]),
        left,
        np.where(distances[1] <= distances[2], up, up_left),
    )
    predictor = {1: left, 2: up, 3: (left + up) // 2, 4: paeth}[png_filter]
    rows = np.concatenate([np.full((height, 1), png_filter), (data - predictor) & 0xFF], axis=1)
    chunks = [
        (b"IHDR", width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([16, 2, 0, 0, 0])),
        (b"IDAT", zlib.compress(rows.astype(np.uint8).tobytes())),
        (b"IEND", b""),
    ]
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        for kind, body in chunks:
            handle.write(len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big"))


@pytest.mark.parametrize("png_filter", [1, 2, 3, 4])
def test_16bit_png_filters_are_decoded(tmp_path, png_filter):
    pixels = random_pixels(6, 5, 3, np.uint16)
    _encode_png16_rgb_with_filter(tmp_path / "filtered.png", pixels, png_filter)
    with Image.open(tmp_path / "filtered.png") as reference:  # Pillow agrees on the top 8 bits
        np.testing.assert_array_equal(np.asarray(reference.convert("RGB")), pixels >> 8)
    np.testing.assert_array_equal(read_image(tmp_path / "filtered.png").array, pixels)


def test_palette_with_transparency_becomes_rgba(tmp_path):
    palette_image = Image.new("P", (4, 3))
    palette_image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    palette_image.putpixel((1, 1), 1)
    palette_image.info["transparency"] = 0
    palette_image.save(tmp_path / "palette.png", transparency=0)

    loaded = read_image(tmp_path / "palette.png")
    assert loaded.array.shape == (3, 4, 4)
    assert tuple(loaded.array[1, 1]) == (0, 255, 0, 255)
    assert tuple(loaded.array[0, 0]) == (255, 0, 0, 0)


def test_palette_without_transparency_becomes_rgb(tmp_path):
    Image.new("P", (4, 3), 0).save(tmp_path / "palette.gif")
    assert read_image(tmp_path / "palette.gif").array.shape == (3, 4, 3)


def test_cmyk_jpeg_is_read_as_rgb(tmp_path):
    Image.new("CMYK", (6, 4), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=100)
    loaded = read_image(tmp_path / "cmyk.jpg")
    assert loaded.array.shape == (4, 6, 3)
    red, green, blue = loaded.array[2, 3].astype(int)
    assert red > 200 and green < 60 and blue < 60


def test_exif_orientation_is_applied(tmp_path):
    pixels = random_pixels(2, 4, 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: display rotated 90 degrees clockwise
    Image.fromarray(pixels).save(tmp_path / "rotated.png", exif=exif.tobytes())

    loaded = read_image(tmp_path / "rotated.png")
    np.testing.assert_array_equal(loaded.array, np.rot90(pixels, -1))

    write_image(tmp_path / "out.png", loaded.array, like=loaded)
    with Image.open(tmp_path / "out.png") as written:
        assert written.getexif().get(0x0112, 1) == 1  # not rotated a second time by viewers


def test_exif_orientation_is_applied_to_16bit_colour_png(tmp_path):
    pixels = random_pixels(2, 3, 3, np.uint16)
    write_image(tmp_path / "plain.png", pixels)
    exif = Image.Exif()
    exif[0x0112] = 8
    # add an eXIf chunk before IEND
    data = (tmp_path / "plain.png").read_bytes()
    body = exif.tobytes()
    chunk = len(body).to_bytes(4, "big") + b"eXIf" + body + zlib.crc32(b"eXIf" + body).to_bytes(4, "big")
    (tmp_path / "rotated.png").write_bytes(data[:-12] + chunk + data[-12:])
    np.testing.assert_array_equal(read_image(tmp_path / "rotated.png").array, np.rot90(pixels, 1))


@pytest.mark.parametrize("extension", [".png", ".jpg", ".tif"])
def test_icc_profile_is_carried_to_the_output(tmp_path, extension):
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(random_pixels(4, 4, 3)).save(tmp_path / f"in{extension}", icc_profile=profile)
    loaded = read_image(tmp_path / f"in{extension}")
    assert loaded.icc_profile == profile
    write_image(tmp_path / f"out{extension}", loaded.to_tensor(), like=loaded)
    with Image.open(tmp_path / f"out{extension}") as written:
        assert written.info.get("icc_profile") == profile


def test_icc_profile_is_carried_to_16bit_colour_png(tmp_path):
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    like = LoadedImage(array=random_pixels(3, 3, 3, np.uint16), format="PNG", icc_profile=profile, bit_depth=16)
    write_image(tmp_path / "out.png", like.array, like=like)
    assert read_image(tmp_path / "out.png").icc_profile == profile


def test_extension_decides_the_format_and_jpeg_composites_alpha_over_white(tmp_path):
    pixels = np.zeros((4, 4, 4), np.uint8)
    pixels[..., 3] = 0  # fully transparent black
    Image.fromarray(pixels).save(tmp_path / "clear.png")
    loaded = read_image(tmp_path / "clear.png")
    write_image(tmp_path / "out.jpg", loaded.array, like=loaded)
    with Image.open(tmp_path / "out.jpg") as written:
        assert written.format == "JPEG" and written.mode == "RGB"
        assert np.asarray(written).min() > 250


def test_explicit_format_overrides_the_extension(tmp_path):
    write_image(tmp_path / "out.img", random_pixels(3, 3, 3), format="png")
    with Image.open(tmp_path / "out.img") as written:
        assert written.format == "PNG"


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_compress_level_trades_size_not_pixels(tmp_path, dtype):
    y, x = np.mgrid[0:32, 0:48]
    smooth = ((x + y) / 80.0)[..., None].repeat(3, axis=2)
    pixels = np.rint(smooth * np.iinfo(dtype).max).astype(dtype)
    write_image(tmp_path / "stored.png", pixels, compress_level=0)
    write_image(tmp_path / "small.png", pixels, compress_level=9)
    assert (tmp_path / "stored.png").stat().st_size > 2 * (tmp_path / "small.png").stat().st_size
    for name in ("stored.png", "small.png"):
        np.testing.assert_array_equal(read_image(tmp_path / name).array, pixels)


def test_16bit_to_jpeg_is_reduced_to_8_bits(tmp_path):
    pixels = np.full((4, 4, 3), 65535, np.uint16)
    write_image(tmp_path / "out.jpg", pixels)
    assert read_image(tmp_path / "out.jpg").array.min() >= 250


def test_tensor_to_array_clamps_and_rounds():
    tensor = torch.tensor([[[-0.5, 0.5, 1.5]]])
    np.testing.assert_array_equal(tensor_to_array(tensor)[..., 0], [[0, 128, 255]])
    np.testing.assert_array_equal(tensor_to_array(tensor, 16)[..., 0], [[0, 32768, 65535]])


def test_unknown_extension_is_refused_without_output(tmp_path):
    with pytest.raises(SrganError, match="unknown image extension"):
        write_image(tmp_path / "out.xyz", random_pixels(2, 2, 3))
    assert list(tmp_path.iterdir()) == []


def test_float_array_is_quantized(tmp_path):
    write_image(tmp_path / "out.png", np.full((2, 2, 3), 0.5))
    assert read_image(tmp_path / "out.png").array.max() == 128


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def save_half_then_fail(image, fp, *args, **kwargs):
        with open(fp, "wb") as handle:
            handle.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", save_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_image(tmp_path / "out.png", random_pixels(2, 2, 3))
    assert list(tmp_path.iterdir()) == []


def test_missing_file(tmp_path):
    with pytest.raises(SrganError, match="nope.png: no such file"):
        read_image(tmp_path / "nope.png")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(SrganError, match="is a folder"):
        read_image(tmp_path)


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(SrganError, match="empty.png: file is empty"):
        read_image(tmp_path / "empty.png")


def test_not_an_image(tmp_path):
    (tmp_path / "notes.png").write_text("just some text, not pixels\n")
    with pytest.raises(SrganError, match="notes.png: not an image"):
        read_image(tmp_path / "notes.png")


@pytest.mark.parametrize("extension", [".png", ".jpg"])
def test_truncated_file(tmp_path, extension):
    Image.fromarray(random_pixels(64, 64, 3)).save(tmp_path / f"full{extension}")
    data = (tmp_path / f"full{extension}").read_bytes()
    (tmp_path / f"cut{extension}").write_bytes(data[: len(data) // 2])
    with pytest.raises(SrganError, match=f"cut\\{extension}: image data is truncated or corrupt"):
        read_image(tmp_path / f"cut{extension}")


def test_truncated_16bit_colour_png(tmp_path):
    write_image(tmp_path / "full.png", random_pixels(32, 32, 3, np.uint16))
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(SrganError, match="cut.png: image data is truncated or corrupt"):
        read_image(tmp_path / "cut.png")


def test_over_the_pixel_limit(tmp_path):
    Image.new("RGB", (20, 10)).save(tmp_path / "big.png")
    with pytest.raises(SrganError, match=r"big.png: image has 200 pixels \(20x10\), over srgan's limit of 199"):
        read_image(tmp_path / "big.png", max_pixels=199)
    assert read_image(tmp_path / "big.png", max_pixels=200).array.shape == (10, 20, 3)


def test_a_decompression_bomb_is_refused_with_srgans_limit_not_pillows(tmp_path, monkeypatch):
    Image.new("RGB", (20, 20)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # what another library may have set
    with pytest.raises(SrganError, match=r"bomb.png: image has 400 pixels \(20x20\), over srgan's limit of 150;"):
        read_image(tmp_path / "bomb.png", max_pixels=150)
