"""The training loop on CPU with tiny networks: learning, GAN updates, exact resume, divergence, export, interpolation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from srgan.errors import SrganError
from srgan.train import checkpoint as ckpt
from srgan.train.config import load_config
from srgan.train.monitor import read_metrics
from srgan.train.trainer import Trainer, train


@pytest.fixture(autouse=True)
def _one_thread():
    """Networks this small run fastest on one thread (and do not wait on busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _smooth_image(seed: int, size: int) -> torch.Tensor:
    """A learnable test image: a few random low-frequency waves per channel, values in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    channels = []
    for _ in range(3):
        fx, fy, phase = (torch.rand(3, generator=generator) * torch.tensor([6.0, 6.0, 6.3])).tolist()
        channels.append(0.5 + 0.4 * torch.sin(fx * x * math.pi + fy * y * math.pi + phase))
    return torch.stack(channels)


@pytest.fixture(scope="module")
def image_dirs(tmp_path_factory) -> tuple[Path, Path]:
    from srgan.imageio import write_image

    root = tmp_path_factory.mktemp("images")
    for index in range(6):
        write_image(root / "train" / f"{index}.png", _smooth_image(index, 32))
    for index in range(2):
        write_image(root / "val" / f"{index}.png", _smooth_image(100 + index, 24))
    return root / "train", root / "val"


@pytest.fixture
def tiny_recipe(tmp_path, image_dirs) -> Path:
    """A complete EDSR recipe (1 block x 8 features, batch 2, HR 16) and a GAN preset of it."""
    train_dir, val_dir = image_dirs
    recipe = {
        "name": "tiny",
        "scale": 4,
        "generator": {"arch": "edsr", "kwargs": {"num_features": 8, "num_blocks": 1}},
        "data": {
            "train_dirs": [str(train_dir)],
            "val_dir": str(val_dir),
            "hr_patch": 16,
            "batch_size": 2,
            "num_workers": 0,
            "prepare": False,
        },
        "losses": {"pixel": {"kind": "l1"}},
        "optim_g": {"lr": 2e-3},
        "train": {"iterations": 12, "seed": 3, "ema_decay": 0.9},
        "checkpoint": {"every": 6, "keep_last": 2},
        "log": {"every": 1, "val_every": 6, "sample_images": 1, "sample_crop": 16, "tensorboard": "off",
                "progress": "off", "plots": False},
        "presets": {
            "gan": {
                "discriminator": {"arch": "srgan_discriminator",
                                  "kwargs": {"input_size": 16, "num_features": 4}},
                "losses": {"adversarial": {"kind": "vanilla", "weight": 1e-2}},
                "train": {"pixel_warmup_iterations": 2},
            }
        },
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def train_losses(run_dir: Path, key: str = "l_g_total") -> dict[int, float]:
    return {r["iteration"]: r[key] for r in read_metrics(run_dir) if r["kind"] == "train" and key in r}


def test_tiny_config_learns_and_leaves_a_complete_run_folder(tiny_recipe, tmp_path):
    config = load_config(tiny_recipe, ["train.iterations=40", "log.val_every=40", "checkpoint.every=20", "log.plots=true"])
    run_dir = train(config, tmp_path / "run")
    losses = list(train_losses(run_dir).values())
    assert len(losses) == 40
    assert sum(losses[-8:]) / 8 < 0.7 * sum(losses[:8]) / 8
    names = sorted(path.name for path in (run_dir / "checkpoints").iterdir())
    assert names == ["best.ckpt", "iter_00000020.ckpt", "iter_00000040.ckpt"]
    assert (run_dir / "samples" / "iter_00000040.png").is_file()
    assert sorted(path.name for path in (run_dir / "plots").iterdir()) == ["losses.png", "validation.png"]
    validation = [r for r in read_metrics(run_dir) if r["kind"] == "val"]
    assert [r["iteration"] for r in validation] == [40]
    assert all(10 < r["psnr"] < 60 and 0 < r["ssim"] <= 1 for r in validation)
    assert (run_dir / "generator.safetensors").is_file()


def test_prepared_subimages_are_reused_for_another_patch_size(tiny_recipe, tmp_path):
    from srgan.imageio import write_image

    photos = tmp_path / "photos"
    write_image(photos / "photo.png", _smooth_image(7, 160))  # over prepare_subimages' 128 px minimum
    preparation = [f"data.train_dirs=[{photos}]", "data.prepare=true", f"data.prepared_dir={tmp_path / 'prepared'}",
                   "data.subimage_size=64", "data.subimage_step=64"]
    folders = [
        Trainer(load_config(tiny_recipe, [*preparation, f"data.hr_patch={patch}"]), tmp_path / f"run{patch}")
        ._training_folders()
        for patch in (16, 32)
    ]
    assert folders[0] == folders[1]
    assert len(list((tmp_path / "prepared").iterdir())) == 1


def test_gan_step_updates_generator_and_discriminator(tiny_recipe, tmp_path):
    config = load_config(tiny_recipe, ["preset=gan"])
    trainer = Trainer(config, tmp_path / "run")
    from srgan.train.module import SRModule

    module = SRModule(config)
    optimizers = module.configure_optimizers()
    lr, hr = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 16, 16)
    generator_before = [p.detach().clone() for p in module.generator.parameters()]
    discriminator_before = [p.detach().clone() for p in module.discriminator.parameters()]
    logs = module.training_step(lr, hr, 3, trainer, optimizers)  # iteration 3: after the 2 warm-up steps
    assert {"l_d", "l_g_gan", "l_g_pix", "discriminator_score", "generator_score"} <= logs.keys()
    assert all(not torch.equal(a, b) for a, b in zip(generator_before, module.generator.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(discriminator_before, module.discriminator.parameters()))
    assert all(p.requires_grad for p in module.discriminator.parameters())  # unfrozen again after the G step
    assert 0 < logs["discriminator_score"].item() < 1


def test_discriminator_init_is_checked_first_and_loaded(tiny_recipe, tmp_path):
    from srgan.train.config import check_resources
    from srgan.train.module import SRModule

    missing = load_config(tiny_recipe, ["preset=gan", f"discriminator.init={tmp_path / 'absent.ckpt'}"])
    with pytest.raises(SrganError, match=r"'discriminator\.init'.*absent\.ckpt not found"):
        check_resources(missing)
    trained = SRModule(load_config(tiny_recipe, ["preset=gan"])).discriminator
    torch.save({"params": trained.state_dict()}, tmp_path / "d.pth")  # BasicSR's layout
    config = load_config(tiny_recipe, ["preset=gan", f"discriminator.init={tmp_path / 'd.pth'}"])
    check_resources(config)
    loaded = SRModule(config).discriminator
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), loaded.state_dict().values()))
    torch.save({"params": {"nothing": torch.zeros(1)}}, tmp_path / "other.pth")
    wrong = load_config(tiny_recipe, ["preset=gan", f"discriminator.init={tmp_path / 'other.pth'}"])
    with pytest.raises(SrganError, match=r"discriminator\.init .*other\.pth: does not fit"):
        SRModule(wrong)


def test_wgan_gp_critic_step_logs_raw_scores_with_a_penalty(tiny_recipe, tmp_path):
    config = load_config(tiny_recipe, ["preset=gan", "losses.adversarial.kind=wgan_gp", "discriminator.kwargs.norm=none"])
    from srgan.train.module import SRModule

    module = SRModule(config)
    optimizers = module.configure_optimizers()
    before = [p.detach().clone() for p in module.discriminator.parameters()]
    logs = module.training_step(torch.rand(2, 3, 4, 4), torch.rand(2, 3, 16, 16), 3, Trainer(config, tmp_path), optimizers)
    assert {"l_d", "l_d_gp", "critic_real", "critic_fake"} <= logs.keys() and "discriminator_score" not in logs
    assert logs["l_d_gp"].item() > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, module.discriminator.parameters()))


def test_warmup_steps_leave_the_discriminator_alone(tiny_recipe, tmp_path):
    config = load_config(tiny_recipe, ["preset=gan"])
    from srgan.train.module import SRModule

    module = SRModule(config)
    optimizers = module.configure_optimizers()
    before = [p.detach().clone() for p in module.discriminator.parameters()]
    logs = module.training_step(torch.rand(2, 3, 4, 4), torch.rand(2, 3, 16, 16), 1, Trainer(config, tmp_path), optimizers)
    assert set(logs) == {"l_g_pix", "l_g_total"}
    assert all(torch.equal(a, b) for a, b in zip(before, module.discriminator.parameters()))


def test_nan_loss_stops_the_run_without_a_nan_checkpoint(tiny_recipe, tmp_path):
    # an absurd learning rate blows the weights up to inf within a few steps
    config = load_config(tiny_recipe, ["optim_g.lr=1e30", "checkpoint.every=1", "train.iterations=50",
                                       "train.ema_decay=0"])
    with pytest.raises(SrganError, match=r"iteration \d+: l_g_total is (nan|inf).*diverged"):
        train(config, tmp_path / "run")
    written = ckpt.iteration_checkpoints(tmp_path / "run")
    for _, path in written:
        params = ckpt.load_checkpoint(path)["params"]
        assert all(torch.isfinite(tensor).all() for tensor in params.values())


def test_nan_names_its_iteration_and_no_checkpoint_follows_it(tiny_recipe, tmp_path, monkeypatch):
    from srgan import losses

    calls = []
    forward = losses.PixelLoss.forward

    def nan_at_second(self, *args):
        calls.append(1)
        value = forward(self, *args)
        return value * float("nan") if len(calls) == 2 else value

    monkeypatch.setattr(losses.PixelLoss, "forward", nan_at_second)
    config = load_config(tiny_recipe, ["checkpoint.every=5", "log.every=5", "train.iterations=20"])
    with pytest.raises(SrganError, match=r"^iteration 2: l_g_total is nan, training diverged"):
        train(config, tmp_path / "run")
    assert ckpt.iteration_checkpoints(tmp_path / "run") == []


def test_full_disk_is_one_message_recorded_in_train_log(tiny_recipe, tmp_path, monkeypatch):
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "samples" / "x.png"))

    monkeypatch.setattr("srgan.train.trainer.save_sample_grid", full)
    with pytest.raises(SrganError, match=r"^no space left on device: .*x\.png; free space, then rerun with --resume auto$"):
        train(load_config(tiny_recipe), tmp_path / "run")
    assert "ERROR no space left on device" in (tmp_path / "run" / "train.log").read_text()


def test_checkpoint_writer_failing_on_a_full_disk_says_so(tmp_path, monkeypatch):
    import errno
    import shutil

    def broken(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 128 vs 64")

    monkeypatch.setattr(torch, "save", broken)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 0))
    with pytest.raises(OSError) as caught:
        ckpt.save_checkpoint(tmp_path / "a.ckpt", {"params": {}})
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "a.ckpt")


def test_checkpoint_with_nan_weights_is_refused(tmp_path):
    with pytest.raises(SrganError, match="contains NaN or inf"):
        ckpt.save_checkpoint(tmp_path / "x.ckpt", {"params": {"w": torch.tensor([1.0, float("nan")])}})
    assert not (tmp_path / "x.ckpt").exists()


def test_export_loads_with_load_model_and_matches_the_checkpoint(tiny_recipe, tmp_path):
    from srgan.archs.registry import build_arch
    from srgan.cli import main
    from srgan.models import load_model

    run_dir = train(load_config(tiny_recipe, ["train.iterations=6"]), tmp_path / "run")
    checkpoint = ckpt.iteration_checkpoint_path(run_dir, 6)
    out = tmp_path / "exported.safetensors"
    assert main(["export", str(checkpoint), "-o", str(out), "--no-ema"]) == 0
    loaded = load_model(str(out))
    state = ckpt.load_checkpoint(checkpoint)
    reference = build_arch("edsr", {"num_features": 8, "num_blocks": 1, "scale": 4})
    reference.load_state_dict(state["params"])
    reference.eval()
    image = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded.module(image), reference(image))
    assert loaded.scale == 4 and loaded.metadata["iterations"] == "6" and loaded.metadata["weights"] == "raw"
    described = ["--description", "tiny EDSR for tests", "--license", "CC0"]
    assert main(["export", str(checkpoint), "-o", str(tmp_path / "ema.safetensors"), "--fp16", *described]) == 0
    metadata = load_model(str(tmp_path / "ema.safetensors")).metadata
    assert (metadata["weights"], metadata["description"], metadata["license"]) == ("ema", "tiny EDSR for tests", "CC0")


def test_interpolate_blends_weights_and_refuses_different_networks(tiny_recipe, tmp_path):
    from srgan.cli import main
    from srgan.models import export_model, interpolate_models
    from srgan.modelfiles import read

    run_dir = train(load_config(tiny_recipe, ["train.iterations=12"]), tmp_path / "run")
    a, b = (ckpt.iteration_checkpoint_path(run_dir, n) for n in (6, 12))
    out = tmp_path / "blend.safetensors"
    assert main(["interpolate", str(a), str(b), "--alpha", "0.25", "-o", str(out)]) == 0
    blended = read(out).state_dict
    state_a, state_b = ckpt.load_checkpoint(a)["params_ema"], ckpt.load_checkpoint(b)["params_ema"]
    for key, tensor in blended.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, 0.75 * state_a[key] + 0.25 * state_b[key])

    other = train(load_config(tiny_recipe, ["train.iterations=2", "generator.kwargs.num_features=4"]),
                  tmp_path / "other")
    with pytest.raises(SrganError, match="are different networks"):
        interpolate_models(a, ckpt.iteration_checkpoint_path(other, 2), 0.5, tmp_path / "bad.safetensors")
    with pytest.raises(SrganError, match="between 0"):
        interpolate_models(a, b, 1.5, tmp_path / "bad.safetensors")

    described_b = export_model(b, tmp_path / "b.safetensors", description="model B", license="CC0")
    metadata = read(interpolate_models(a, described_b, 0.5, out)).provenance
    assert "description" not in metadata and metadata["license"] == "CC0" and "interpolated" in metadata


def test_plot_command_redraws_from_metrics(tiny_recipe, tmp_path, capsys):
    from srgan.cli import main

    run_dir = train(load_config(tiny_recipe, ["preset=gan", "train.iterations=4", "log.val_every=2"]), tmp_path / "run")
    assert not (run_dir / "plots").exists()  # log.plots is off in the tiny recipe
    with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"kind": "train", "itera')  # a line cut short by a kill is ignored
    assert main(["plot", str(run_dir)]) == 0
    drawn = sorted(path.name for path in (run_dir / "plots").iterdir())
    assert drawn == ["discriminator.png", "losses.png", "validation.png"]
    assert json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])["kind"] == "train"


def test_sample_grid_lays_out_captioned_crops():
    from srgan.train.monitor import sample_grid

    hr = torch.rand(3, 40, 48)
    lr = torch.rand(3, 10, 12)
    sr = torch.rand(3, 40, 48)
    grid = sample_grid([(lr, sr, hr), (lr, sr, hr)], scale=4, crop=32)
    gap, caption = 4, 16
    assert grid.shape == (3, caption + 2 * (gap + 32), 4 * 32 + 3 * gap)
    first_row = grid[:, caption + gap : caption + gap + 32]
    torch.testing.assert_close(first_row[..., 3 * (32 + gap) :], hr[:, 4:36, 8:40])  # HR column: centre crop
    torch.testing.assert_close(first_row[..., 2 * (32 + gap) : 2 * (32 + gap) + 32], sr[:, 4:36, 8:40])
    nearest = first_row[..., :32]
    torch.testing.assert_close(nearest[:, ::4, ::4], lr[:, 1:9, 2:10])


def test_validation_scores_each_set_as_srgan_eval_does(tiny_recipe, image_dirs, tmp_path):
    """One protocol: the numbers validation logs (and best.ckpt follows) are eval's, gray rule and 8 bits included."""
    from srgan.evaluate import evaluate_models
    from srgan.imageio import write_image

    gray_dir = tmp_path / "grayset"
    write_image(gray_dir / "gray.png", _smooth_image(9, 24)[:1])  # a 1-channel file: scored on its gray values
    config = load_config(tiny_recipe, ["train.iterations=6", "log.val_every=6", "log.plots=true",
                                       f"data.extra_val_dirs=[{gray_dir}]"])
    run_dir = train(config, tmp_path / "run")
    logged = [r for r in read_metrics(run_dir) if r["kind"] == "val"][-1]
    report = evaluate_models([str(run_dir / "generator.safetensors")], [image_dirs[1], gray_dir], 4)
    means = {mean.dataset: mean for mean in report.means() if mean.model != "bicubic"}
    assert logged["psnr"] == pytest.approx(means["val"].psnr, abs=1e-9)
    assert logged["ssim"] == pytest.approx(means["val"].ssim, abs=1e-9)
    assert logged["psnr_grayset"] == pytest.approx(means["grayset"].psnr, abs=1e-9)
    assert logged["ssim_grayset"] == pytest.approx(means["grayset"].ssim, abs=1e-9)
    assert (run_dir / "plots" / "validation.png").is_file()


def test_plain_log_lines_every_log_every_iterations(tiny_recipe, tmp_path, capsys):
    """Without a progress bar (nohup, SLURM) each log step is a line on the console and in train.log."""
    run_dir = train(load_config(tiny_recipe, ["preset=gan", "train.iterations=6", "log.every=3"]), tmp_path / "run")
    lines = [line for line in (run_dir / "train.log").read_text().splitlines() if ": l_" in line]
    assert [line.split(" INFO ")[1].split(":")[0] for line in lines] == ["iteration 3/6", "iteration 6/6"]
    last = lines[-1]
    for part in ("l_g_total ", "l_d ", "lr 0.002", "D(real) ", "D(fake) ", " it/s", "ETA 0:00:00"):
        assert part in last
    assert "iteration 6/6: l_" in capsys.readouterr().err


def test_image_loops_print_progress_lines_off_a_terminal(monkeypatch, capsys):
    from srgan import progress
    from srgan.data.store import progress_bar

    monkeypatch.setattr(progress, "LOG_INTERVAL_SECONDS", 0.0)
    assert list(progress_bar(range(3), description="preparing sub-images", enabled=None)) == [0, 1, 2]
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == [f"preparing sub-images: {n}/3" for n in (1, 2, 3)]
    assert "ETA 0:00:00" in lines[-1]
