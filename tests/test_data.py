import json
import warnings
from itertools import islice

import numpy as np
import pytest
import torch
from PIL import Image

import srgan.data.subimages as subimages_module
from srgan.data import (
    ImageFolderPairs,
    PatchDataset,
    ResumableSampler,
    apply_dihedral,
    find_pairs,
    load_training_images,
    prepare_subimages,
    sample_batch,
)
from srgan.data.patches import origin_range
from srgan.errors import SrganError
from srgan.imageio import read_image
from srgan.resize import matlab_bicubic_resize


def random_pixels(height, width, seed=0, channels=3):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, channels), dtype=np.uint8).squeeze()


def save(path, pixels, **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **options)
    return path


def as_uint8_tensor(pixels):
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


def to_uint8(pixels):
    return (pixels * 255).round().to(torch.uint8)


def coordinate_image(height, width):
    """Red = row, green = column: a patch's pixel values say where it came from."""
    rows, columns = np.mgrid[0:height, 0:width]
    return np.stack([rows, columns, np.zeros_like(rows)], axis=-1).astype(np.uint8)


# --- scanning and pairing -------------------------------------------------------------------------


def test_scan_is_recursive_ignores_non_images_and_names_are_unique(tmp_path):
    save(tmp_path / "a" / "one.png", random_pixels(8, 8))
    save(tmp_path / "a" / "deeper" / "two.jpg", random_pixels(8, 8))
    save(tmp_path / "b" / "one.png", random_pixels(8, 8))
    for junk in ("README.md", "metadata.csv", "COPYRIGHT.debian", ".hidden.png"):
        (tmp_path / "a" / junk).write_text("not an image")

    assert [pair.name for pair in find_pairs(tmp_path / "a", scale=4)] == ["deeper/two", "one"]
    names = [pair.name for pair in find_pairs([tmp_path / "a", tmp_path / "b"], scale=4)]
    assert names == ["a/deeper/two", "a/one", "b/one"]


def test_empty_or_missing_folder_is_an_error_naming_it(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.md").write_text("no images here")
    with pytest.raises(SrganError, match="empty: no images found"):
        PatchDataset(tmp_path / "empty", scale=4)
    with pytest.raises(SrganError, match="missing: folder not found"):
        find_pairs(tmp_path / "missing", scale=4)


def test_div2k_layout_and_same_name_pairs(tmp_path):
    save(tmp_path / "DIV2K_train_HR" / "0001.png", random_pixels(32, 48))
    save(tmp_path / "DIV2K_train_LR_bicubic" / "X4" / "0001x4.png", random_pixels(8, 12))
    save(tmp_path / "hr" / "cat.png", random_pixels(16, 16))
    save(tmp_path / "lr" / "cat.png", random_pixels(8, 8))

    (div2k,) = find_pairs(tmp_path / "DIV2K_train_HR", tmp_path / "DIV2K_train_LR_bicubic", scale=4)
    assert div2k.lr_path == tmp_path / "DIV2K_train_LR_bicubic" / "X4" / "0001x4.png"
    (same_name,) = find_pairs(tmp_path / "hr", tmp_path / "lr", scale=2)
    assert same_name.lr_path == tmp_path / "lr" / "cat.png"


def test_hr_without_lr_partner_is_an_error_naming_it(tmp_path):
    save(tmp_path / "hr" / "0001.png", random_pixels(16, 16))
    save(tmp_path / "hr" / "0002.png", random_pixels(16, 16))
    save(tmp_path / "lr" / "0001x4.png", random_pixels(4, 4))
    with pytest.raises(SrganError, match=r"0002\.png: no LR partner"):
        find_pairs(tmp_path / "hr", tmp_path / "lr", scale=4)
    with pytest.raises(SrganError, match="one LR folder per HR folder"):
        find_pairs([tmp_path / "hr", tmp_path / "hr"], tmp_path / "lr", scale=4)


def test_paired_sizes_must_match_exactly(tmp_path):
    save(tmp_path / "hr" / "0001.png", random_pixels(34, 32))
    save(tmp_path / "lr" / "0001x4.png", random_pixels(8, 8))
    with pytest.raises(SrganError, match=r"0001\.png \(32x34\) and its LR image .*0001x4\.png \(8x8\)"):
        PatchDataset(tmp_path / "hr", lr_dir=tmp_path / "lr", scale=4, hr_patch=16)


# --- PatchDataset -----------------------------------------------------------------------------------


def test_hr_only_lr_equals_crop_of_whole_image_matlab_lr(tmp_path):
    pixels = random_pixels(42, 50)  # not multiples of 4: the HR is mod-cropped to 40x48 first
    save(tmp_path / "hr" / "image.png", pixels)
    whole_lr = matlab_bicubic_resize(as_uint8_tensor(pixels)[:, :40, :48], scale=1 / 4)
    dataset = PatchDataset(tmp_path / "hr", scale=4, hr_patch=16, augment=False, patches_per_image=12)

    for lr, hr in (dataset[index] for index in range(len(dataset))):
        assert lr.shape == (3, 4, 4) and hr.shape == (3, 16, 16)
        assert lr.dtype == torch.float32 and lr.min() >= 0 and lr.max() <= 1
        # Locate the patch by its first row of pixels (random content makes it unique).
        hr_pixels = to_uint8(hr).permute(1, 2, 0).numpy()
        matches = [
            (top, left)
            for top in range(0, 40 - 16 + 1)
            for left in range(0, 48 - 16 + 1)
            if np.array_equal(pixels[top : top + 16, left : left + 16], hr_pixels)
        ]
        assert len(matches) == 1
        top, left = matches[0]
        assert top % 4 == 0 and left % 4 == 0
        expected = whole_lr[:, top // 4 : top // 4 + 4, left // 4 : left // 4 + 4]
        assert torch.equal(to_uint8(lr), expected)


@pytest.mark.parametrize("paired", [False, True])
def test_augmentation_transforms_lr_and_hr_alike(tmp_path, paired):
    pixels = random_pixels(48, 48)
    save(tmp_path / "hr" / "image.png", pixels)
    lr_dir = None
    if paired:
        lr_pixels = matlab_bicubic_resize(as_uint8_tensor(pixels), scale=1 / 4)
        save(tmp_path / "lr" / "imagex4.png", lr_pixels.permute(1, 2, 0).numpy())
        lr_dir = tmp_path / "lr"
    options = dict(scale=4, hr_patch=24, lr_dir=lr_dir, patches_per_image=16, seed=3)
    augmented = PatchDataset(tmp_path / "hr", augment=True, **options)
    plain = PatchDataset(tmp_path / "hr", augment=False, **options)

    codes_seen = set()
    for index in range(len(plain)):
        lr, hr = augmented[index]
        plain_lr, plain_hr = plain[index]  # same draw, same position, no transform
        (code,) = [code for code in range(8) if torch.equal(apply_dihedral(plain_hr, code), hr)]
        codes_seen.add(code)
        assert torch.equal(apply_dihedral(plain_lr, code), lr)
        # The LR of the augmented HR patch is the augmented LR (borders aside, where the patch lacks context).
        lr_of_hr = matlab_bicubic_resize(hr, scale=1 / 4)
        assert torch.allclose(lr_of_hr[:, 2:-2, 2:-2], lr[:, 2:-2, 2:-2], atol=1.5 / 255)
    assert len(codes_seen) >= 6


def test_flips_and_rotations_are_the_eight_distinct_symmetries():
    square = torch.arange(9.0).reshape(1, 3, 3)
    results = {tuple(apply_dihedral(square, code).flatten().tolist()) for code in range(8)}
    assert len(results) == 8
    rotated = torch.rot90(square, 1, dims=(-2, -1))
    assert tuple(rotated.flatten().tolist()) in results


def test_items_are_deterministic_in_seed_and_index(tmp_path):
    save(tmp_path / "hr" / "a.png", random_pixels(40, 40, seed=1))
    save(tmp_path / "hr" / "b.png", random_pixels(40, 40, seed=2))
    options = dict(scale=2, hr_patch=8, patches_per_image=5)
    first = PatchDataset(tmp_path / "hr", seed=7, **options)
    second = PatchDataset(tmp_path / "hr", seed=7, **options)
    other_seed = PatchDataset(tmp_path / "hr", seed=8, **options)

    # Order of access does not matter: item i is a function of (seed, i) only.
    forward = [first[index] for index in range(len(first))]
    backward = [second[index] for index in reversed(range(len(second)))][::-1]
    for (lr_a, hr_a), (lr_b, hr_b) in zip(forward, backward):
        assert torch.equal(lr_a, lr_b) and torch.equal(hr_a, hr_b)
    assert not all(torch.equal(hr, other_seed[index][1]) for index, (_, hr) in enumerate(forward))
    # Index i + len is the same image again with a fresh patch.
    assert len(first) == 10
    assert not torch.equal(first[3][1], first[13][1])


def test_patches_per_image_and_image_order(tmp_path):
    save(tmp_path / "hr" / "dark.png", np.full((16, 16, 3), 10, np.uint8))
    save(tmp_path / "hr" / "light.png", np.full((16, 16, 3), 200, np.uint8))
    dataset = PatchDataset(tmp_path / "hr", scale=2, hr_patch=8, patches_per_image=3)
    levels = [round(dataset[index][1].mean().item() * 255) for index in range(len(dataset))]
    assert dataset.names == ["dark", "light"]
    assert levels == [10, 10, 10, 200, 200, 200]


def test_resumable_sampler_passes_are_permutations_and_resume_exactly():
    stream = ResumableSampler(5, seed=1)
    draws = list(islice(stream, 15))
    for data_pass in range(3):
        chunk = draws[data_pass * 5 : data_pass * 5 + 5]
        assert sorted(chunk) == list(range(data_pass * 5, data_pass * 5 + 5))
    assert draws[:5] != list(range(5)) or draws[5:10] != list(range(5, 10))

    resumed = ResumableSampler(5, seed=1, start=7)
    assert list(islice(resumed, 8)) == draws[7:15]
    ranks = [ResumableSampler(5, seed=1, rank=rank, world_size=2) for rank in (0, 1)]
    rank_draws = [list(islice(sampler, 5)) for sampler in ranks]
    assert rank_draws[0] == draws[0:10:2] and rank_draws[1] == draws[1:10:2]


def test_inner_fraction_keeps_patches_inside_the_centre(tmp_path):
    save(tmp_path / "hr" / "face.png", coordinate_image(120, 96))
    options = dict(scale=4, hr_patch=16, patches_per_image=24)
    centre = PatchDataset(tmp_path / "hr", inner_fraction=0.5, **options)
    whole = PatchDataset(tmp_path / "hr", **options)
    top_rows, left_columns = set(), set()
    for index in range(len(centre)):
        rows, columns = to_uint8(centre[index][1])[:2]
        assert rows.min() >= 30 and rows.max() < 90, (rows.min(), rows.max())
        assert columns.min() >= 24 and columns.max() < 72, (columns.min(), columns.max())
        top_rows.add(int(rows.min()))
        left_columns.add(int(columns.min()))
    assert len(top_rows) > 5 and len(left_columns) > 5  # positions still vary within the centre
    assert min(to_uint8(whole[index][1])[0].min() for index in range(len(whole))) < 30


def test_inner_region_narrower_than_patch_centres_the_patch():
    assert origin_range(40, 32, 4, 0.5) == (4, 4)
    assert origin_range(200, 32, 4, 0.5) == (52, 116)


def test_corrupt_image_is_skipped_with_a_warning_naming_it(tmp_path):
    save(tmp_path / "hr" / "good.png", random_pixels(16, 16))
    (tmp_path / "hr" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.warns(UserWarning, match=r"broken\.png"):
        dataset = PatchDataset(tmp_path / "hr", scale=4, hr_patch=16)
    assert dataset.names == ["good"]


def test_only_corrupt_images_is_an_error(tmp_path):
    (tmp_path / "hr").mkdir()
    (tmp_path / "hr" / "broken.jpg").write_bytes(b"not a jpeg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(SrganError, match="none of the images could be read"):
            PatchDataset(tmp_path / "hr", scale=4, hr_patch=16)


def test_image_smaller_than_patch_is_an_error_naming_it(tmp_path):
    save(tmp_path / "hr" / "big.png", random_pixels(64, 64))
    save(tmp_path / "hr" / "tiny.png", random_pixels(64, 30))
    with pytest.raises(SrganError, match=r"tiny\.png: image is 28x64 .*smaller than the 32x32 HR patch"):
        PatchDataset(tmp_path / "hr", scale=4, hr_patch=32)


def test_patch_must_be_a_multiple_of_scale(tmp_path):
    save(tmp_path / "hr" / "image.png", random_pixels(64, 64))
    with pytest.raises(SrganError, match="hr_patch=30: must be a positive multiple of scale=4"):
        PatchDataset(tmp_path / "hr", scale=4, hr_patch=30)


def test_cache_cap_decodes_uncached_images_again_with_same_result(tmp_path):
    save(tmp_path / "hr" / "a.png", random_pixels(32, 32, seed=1))
    save(tmp_path / "hr" / "b.png", random_pixels(32, 32, seed=2))
    cached = PatchDataset(tmp_path / "hr", scale=4, hr_patch=16)
    with pytest.warns(UserWarning, match="1 of 2 images do not fit"):
        capped = PatchDataset(tmp_path / "hr", scale=4, hr_patch=16, cache_bytes=3 * 32 * 32)
    assert capped.store.cached_bytes == 3 * 32 * 32
    for index in range(2):
        assert torch.equal(cached[index][0], capped[index][0])
        assert torch.equal(cached[index][1], capped[index][1])


# --- ImageFolderPairs -------------------------------------------------------------------------------


def test_validation_pairs_mod_crop_and_make_lr(tmp_path):
    pixels = random_pixels(30, 37)
    save(tmp_path / "Set" / "bird.png", pixels)
    ((name, lr, hr),) = list(ImageFolderPairs(tmp_path / "Set", scale=4))
    assert name == "bird"
    assert hr.shape == (3, 28, 36) and lr.shape == (3, 7, 9)
    assert torch.equal(to_uint8(hr), as_uint8_tensor(pixels)[:, :28, :36])
    assert torch.equal(to_uint8(lr), matlab_bicubic_resize(as_uint8_tensor(pixels)[:, :28, :36], scale=1 / 4))


def test_validation_pairs_read_lr_folder_of_benchmark_layout(tmp_path):
    save(tmp_path / "Set" / "bird.png", random_pixels(30, 37))
    lr_pixels = random_pixels(7, 9, seed=5)
    save(tmp_path / "Set_LR_bicubic" / "X4" / "birdx4.png", lr_pixels)
    ((name, lr, hr),) = list(ImageFolderPairs(tmp_path / "Set", scale=4, lr_dir=tmp_path / "Set_LR_bicubic"))
    assert hr.shape == (3, 28, 36)
    assert torch.equal(to_uint8(lr), as_uint8_tensor(lr_pixels))
    save(tmp_path / "Set_LR_bicubic" / "X4" / "birdx4.png", random_pixels(8, 9))
    with pytest.raises(SrganError, match=r"birdx4\.png \(9x8\)"):
        ImageFolderPairs(tmp_path / "Set", scale=4, lr_dir=tmp_path / "Set_LR_bicubic")


def test_validation_pairs_record_which_files_are_gray(tmp_path):
    save(tmp_path / "Set" / "gray.png", random_pixels(8, 8, channels=1))
    save(tmp_path / "Set" / "gray_alpha.png", random_pixels(8, 8, channels=2))
    save(tmp_path / "Set" / "rgb.png", np.repeat(random_pixels(8, 8, channels=1)[..., None], 3, axis=2))
    pairs = ImageFolderPairs(tmp_path / "Set", scale=4)
    assert {image.pair.name: image.is_gray for image in pairs.store.images} == {
        "gray": True, "gray_alpha": True, "rgb": False
    }


# --- prepare_subimages ------------------------------------------------------------------------------


def test_prepare_subimages_cuts_cleans_and_reuses(tmp_path, monkeypatch):
    save(tmp_path / "photos" / "wide.png", random_pixels(100, 140))
    save(tmp_path / "photos" / "shot.jpg", random_pixels(160, 120), quality=90)
    save(tmp_path / "photos" / "gray.png", random_pixels(64, 64, channels=1))
    save(tmp_path / "photos" / "small.png", random_pixels(20, 64))
    (tmp_path / "photos" / "README.md").write_text("credits")
    options = dict(scale=4, subimage_size=48, step=40, min_size=32, progress=False)

    reads = []
    real_read = subimages_module.read_image
    monkeypatch.setattr(subimages_module, "read_image", lambda path: reads.append(path) or real_read(path))
    with pytest.warns(UserWarning, match=r"small\.png: 64x20 .* under min_size=32"):
        output = prepare_subimages(tmp_path / "photos", tmp_path / "cache", **options)

    manifest = json.loads((output / "manifest.json").read_text())
    files = sorted(output.rglob("*.png"))
    assert sorted(manifest["subimages"]) == sorted(path.relative_to(output).as_posix() for path in files)
    by_source = {}
    for path in files:
        image = read_image(path)
        assert image.array.shape[2] == 3  # gray became RGB
        by_source.setdefault(path.name.rsplit("_s", 1)[0], set()).add(image.array.shape[:2])
    # PNG 100x140 kept at full size: windows at rows 0, 40, 52 and columns 0, 40, 80, 92.
    assert by_source["wide"] == {(48, 48)}
    assert sum(path.name.startswith("wide_") for path in files) == 12
    # JPEG 160x120 downscaled by 2 to 80x60 first: rows 0, 32 x columns 0, 12.
    assert sum(path.name.startswith("shot_") for path in files) == 4
    assert "small" not in by_source

    # A complete preparation is reused: nothing is read or rewritten.
    modified = {path: path.stat().st_mtime_ns for path in files}
    reads.clear()
    assert prepare_subimages(tmp_path / "photos", tmp_path / "cache", **options) == output
    assert reads == []
    assert {path: path.stat().st_mtime_ns for path in output.rglob("*.png")} == modified
    # Other parameters give another folder.
    with pytest.warns(UserWarning, match="small.png"):
        assert prepare_subimages(tmp_path / "photos", tmp_path / "cache", **{**options, "step": 24}) != output


def test_interrupted_preparation_is_redone(tmp_path, monkeypatch):
    save(tmp_path / "photos" / "a.png", random_pixels(96, 96, seed=1))
    save(tmp_path / "photos" / "b.png", random_pixels(96, 96, seed=2))
    options = dict(scale=4, subimage_size=48, step=48, min_size=32, progress=False)

    real_write = subimages_module._write_subimage
    calls = []

    def failing_write(path, pixels):
        calls.append(path)
        if len(calls) == 5:
            raise KeyboardInterrupt
        real_write(path, pixels)

    monkeypatch.setattr(subimages_module, "_write_subimage", failing_write)
    with pytest.raises(KeyboardInterrupt):
        prepare_subimages(tmp_path / "photos", tmp_path / "cache", **options)
    (partial,) = (tmp_path / "cache").iterdir()
    assert not (partial / "manifest.json").exists()

    monkeypatch.setattr(subimages_module, "_write_subimage", real_write)
    output = prepare_subimages(tmp_path / "photos", tmp_path / "cache", **options)
    assert output == partial
    assert len(json.loads((output / "manifest.json").read_text())["subimages"]) == 8
    assert len(list(output.rglob("*.png"))) == 8


# --- device batches ---------------------------------------------------------------------------------


def test_sample_batch_shapes_determinism_and_consistency(tmp_path):
    save(tmp_path / "hr" / "a.png", random_pixels(48, 40, seed=1))
    save(tmp_path / "hr" / "b.png", random_pixels(36, 52, seed=2))
    images = load_training_images(tmp_path / "hr", scale=4, hr_patch=16, device="cpu")
    assert [tuple(image.shape) for image in images] == [(3, 48, 40), (3, 36, 52)]
    whole_lrs = [matlab_bicubic_resize(image, scale=1 / 4) for image in images]

    generator = torch.Generator().manual_seed(5)
    state = generator.get_state()
    lr, hr = sample_batch(images, 12, 16, 4, generator)
    assert lr.shape == (12, 3, 4, 4) and hr.shape == (12, 3, 16, 16) and hr.dtype == torch.float32
    generator.set_state(state)
    lr_again, hr_again = sample_batch(images, 12, 16, 4, generator)
    assert torch.equal(lr, lr_again) and torch.equal(hr, hr_again)

    # Each patch is a flip/rotation of an HR crop at a multiple of 4, its LR the same of the whole-image LR crop.
    for lr_patch, hr_patch in zip(to_uint8(lr), to_uint8(hr)):
        matches = [
            (image, whole_lr, top, left, code)
            for image, whole_lr in zip(images, whole_lrs)
            for top in range(0, image.shape[1] - 15, 4)
            for left in range(0, image.shape[2] - 15, 4)
            for code in range(8)
            if torch.equal(apply_dihedral(image[:, top : top + 16, left : left + 16], code), hr_patch)
        ]
        assert len(matches) == 1
        image, whole_lr, top, left, code = matches[0]
        lr_crop = whole_lr[:, top // 4 : top // 4 + 4, left // 4 : left // 4 + 4]
        assert torch.equal(apply_dihedral(lr_crop, code), lr_patch)


# --- the shared data --------------------------------------------------------------------------------


def test_training_folder_holds_147_images(shared_dir):
    pairs = find_pairs(shared_dir / "data" / "train", scale=4)
    assert len(pairs) == 147
    assert all(pair.hr_path.suffix in {".png", ".jpg"} for pair in pairs)


def test_set5_lr_made_on_the_fly_equals_the_published_lr_files(shared_dir):
    bench = shared_dir / "data" / "bench"
    made = ImageFolderPairs(bench / "Set5", scale=4)
    published = ImageFolderPairs(bench / "Set5", scale=4, lr_dir=bench / "Set5_LR_bicubic")
    assert made.names == published.names == ["baby", "bird", "butterfly", "head", "woman"]
    for (_, lr, hr), (_, published_lr, published_hr) in zip(made, published):
        assert torch.equal(hr, published_hr)
        assert (to_uint8(lr).int() - to_uint8(published_lr).int()).abs().max() <= 1


def test_prepare_two_real_jpegs(shared_dir, tmp_path):
    train = shared_dir / "data" / "train"
    sources = [train / "debian_mate_nature" / "GreenMeadow.jpg", train / "pypi_samples" / "skimage_rocket.jpg"]
    output = prepare_subimages(sources, tmp_path / "cache", scale=4, progress=False)
    sizes = {}
    for path in sorted(output.rglob("*.png")):
        sizes.setdefault(path.name.rsplit("_s", 1)[0], []).append(read_image(path).array.shape)
    # 1280x1024 downscaled by 2 to 640x512: 480-pixel windows at rows 0, 32 and columns 0, 160.
    assert sizes["GreenMeadow"] == [(480, 480, 3)] * 4
    # 640x427 downscaled to 320x214: smaller than a window, kept whole, cropped to a multiple of 4.
    assert sizes["skimage_rocket"] == [(212, 320, 3)]
