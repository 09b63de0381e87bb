"""Training options BasicSR users rely on, and training paths beyond the plain pixel loss.

Schedules (multistep, cosine, cosine with restarts, lr warm-up), D steps per G step and D-only
iterations, LSGAN and hinge, per-layer perceptual weights with a style loss, TV loss, grad_clip,
compile, and a generator initialised from a trained model.
"""

from __future__ import annotations

import math

import pytest
import torch
from test_train_loop import _one_thread, image_dirs, tiny_recipe  # noqa: F401  (fixtures)

from srgan.errors import SrganError
from srgan.train import checkpoint as ckpt
from srgan.train.config import ScheduleConfig, load_config
from srgan.train.module import SRModule
from srgan.train.monitor import read_metrics
from srgan.train.trainer import Trainer, lr_factor, train


def _train_records(run_dir, key: str) -> dict[int, float]:
    return {r["iteration"]: r[key] for r in read_metrics(run_dir) if r["kind"] == "train" and key in r}


def test_multistep_and_cosine_factors_match_torch_schedulers():
    def torch_lrs(make, steps):
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
        scheduler, lrs = make(optimizer), []
        for _ in range(steps):
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return lrs

    multistep = ScheduleConfig(kind="multistep", milestones=[3, 5], gamma=0.5)
    expected = torch_lrs(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [3, 5], gamma=0.5), 8)
    assert [2.0 * lr_factor(multistep, 8, 2.0, step) for step in range(8)] == pytest.approx(expected)
    cosine = ScheduleConfig(kind="cosine", min_lr=0.1)
    expected = torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 8, eta_min=0.1), 9)
    assert [2.0 * lr_factor(cosine, 8, 2.0, step) for step in range(9)] == pytest.approx(expected)


def test_cosine_restarts_and_warmup_follow_basicsr():
    schedule = ScheduleConfig(kind="cosine_restarts", periods=[4, 6], restart_weights=[1.0, 0.5], min_lr=0.1)

    def basicsr(step):  # CosineAnnealingRestartLR's formula
        start, period, weight = (0, 4, 1.0) if step < 4 else (4, 6, 0.5)
        return 0.1 + weight * 0.5 * (1.0 - 0.1) * (1 + math.cos(math.pi * (step - start) / period))

    assert [lr_factor(schedule, 10, 1.0, step) for step in range(10)] == pytest.approx([basicsr(s) for s in range(10)])
    assert lr_factor(schedule, 10, 1.0, 25) == pytest.approx(0.1)  # after the last cycle: its end is held
    warm = ScheduleConfig(kind="multistep", milestones=[6], gamma=0.1, warmup_iterations=4)
    assert [lr_factor(warm, 10, 1.0, step) for step in range(8)] == pytest.approx([0.25, 0.5, 0.75, 1, 1, 1, 0.1, 0.1])


@pytest.mark.parametrize("schedule", [
    ["schedule.kind=multistep", "schedule.milestones=[3]", "schedule.warmup_iterations=2"],
    ["schedule.kind=cosine", "schedule.min_lr=1e-5"],
    ["schedule.kind=cosine_restarts", "schedule.periods=[3,3]", "schedule.restart_weights=[1,0.5]"],
], ids=["multistep+warmup", "cosine", "cosine_restarts"])
def test_the_configured_schedule_drives_the_logged_learning_rate(tiny_recipe, tmp_path, schedule):
    config = load_config(tiny_recipe, ["train.iterations=6", *schedule])
    logged = _train_records(train(config, tmp_path / "run"), "lr_g")
    # lr_g is logged after the scheduler's step: the rate of the next iteration
    assert [logged[i] for i in range(1, 7)] == pytest.approx(
        [2e-3 * lr_factor(config.schedule, 6, 2e-3, i) for i in range(1, 7)])
    assert len(set(logged.values())) > 1


def test_cosine_restarts_needs_periods_and_weights(tiny_recipe):
    with pytest.raises(SrganError, match=r"'schedule\.periods'"):
        load_config(tiny_recipe, ["schedule.kind=cosine_restarts"])
    with pytest.raises(SrganError, match=r"'schedule\.restart_weights': give one weight per period \(2\)"):
        load_config(tiny_recipe, ["schedule.kind=cosine_restarts", "schedule.periods=[3,3]", "schedule.restart_weights=[1]"])


def test_d_steps_per_g_step_and_d_only_iterations(tiny_recipe, tmp_path):
    config = load_config(tiny_recipe, ["preset=gan", "train.iterations=8", "train.d_init_iterations=2",
                                       "train.d_steps_per_g_step=2"])
    run_dir = train(config, tmp_path / "run")
    discriminator, generator = _train_records(run_dir, "l_d"), _train_records(run_dir, "l_g_gan")
    assert sorted(discriminator) == [3, 4, 5, 6, 7, 8]  # D steps every adversarial iteration (after the 2 warm-up)
    assert sorted(generator) == [6, 8]  # G: not in the 2 D-only iterations, then every 2nd
    with pytest.raises(SrganError, match=r"'train\.d_steps_per_g_step': is for GAN recipes"):
        load_config(tiny_recipe, ["train.d_steps_per_g_step=2"])


@pytest.mark.parametrize("kind", ["lsgan", "hinge"])
def test_lsgan_and_hinge_train_both_networks_and_log_raw_scores(tiny_recipe, tmp_path, kind):
    config = load_config(tiny_recipe, ["preset=gan", f"losses.adversarial.kind={kind}"])
    module = SRModule(config)
    optimizers = module.configure_optimizers()
    before = [[p.detach().clone() for p in net.parameters()] for net in (module.generator, module.discriminator)]
    logs = module.training_step(torch.rand(2, 3, 4, 4), torch.rand(2, 3, 16, 16), 3, Trainer(config, tmp_path), optimizers)
    assert {"l_d", "l_g_gan", "critic_real", "critic_fake"} <= logs.keys() and "discriminator_score" not in logs
    for old, net in zip(before, (module.generator, module.discriminator)):
        assert any(not torch.equal(a, b) for a, b in zip(old, net.parameters()))


def test_layer_weighted_perceptual_style_and_tv_losses_train(tiny_recipe, tmp_path, shared_dir):
    weights = shared_dir / "weights" / "vgg19_imagenet_conv1-conv3_caffe.safetensors"
    config = load_config(tiny_recipe, [
        "losses.perceptual.layer={relu1_2: 0.5, relu2_2: 1.0}", f"losses.perceptual.weights={weights}",
        "losses.perceptual.convention=caffe", "losses.perceptual.rescale=0.00392156862745098",
        "losses.perceptual.style_weight=10", "losses.tv_weight=0.1", "train.iterations=4"])
    assert config.losses.perceptual.layer == {"relu1_2": 0.5, "relu2_2": 1.0}
    run_dir = train(config, tmp_path / "run")
    for key in ("l_g_pix", "l_g_percep", "l_g_style", "l_g_tv"):
        values = _train_records(run_dir, key)
        assert len(values) == 4 and all(math.isfinite(v) and v > 0 for v in values.values()), key
    with pytest.raises(SrganError, match=r"'losses\.perceptual\.layer': expected str or dict"):
        load_config(tiny_recipe, [f"losses.perceptual.weights={weights}", "losses.perceptual.layer=[relu1_2]"])
    with pytest.raises(SrganError, match=r"'losses\.perceptual\.layer\.relu1_2': expected float"):
        load_config(tiny_recipe, [f"losses.perceptual.weights={weights}", "losses.perceptual.layer={relu1_2: high}"])


def test_grad_clip_bounds_the_gradient_norm_before_each_step(tiny_recipe, tmp_path, monkeypatch):
    clipped_norms = []
    real_clip = torch.nn.utils.clip_grad_norm_

    def clip_and_measure(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        before = real_clip(parameters, max_norm, *args, **kwargs)
        after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in parameters]))
        clipped_norms.append((max_norm, before.item(), after.item()))
        return before

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip_and_measure)
    train(load_config(tiny_recipe, ["train.iterations=3", "train.grad_clip=1e-3"]), tmp_path / "run")
    assert [max_norm for max_norm, _, _ in clipped_norms] == [1e-3] * 3
    assert all(before > 1e-3 and after == pytest.approx(1e-3, rel=1e-3) for _, before, after in clipped_norms)


def test_compile_trains_and_keeps_plain_state_dict_keys(tiny_recipe, tmp_path, monkeypatch):
    # inductor's C++ compile of even a tiny network takes minutes on this CPU; the eager backend runs the
    # same torch.compile path (dynamo tracing, in-place compile) in seconds
    real_compile = torch.nn.Module.compile
    compiled = []

    def eager_compile(self, *args, **kwargs):
        compiled.append(type(self).__name__)
        return real_compile(self, backend="eager")

    monkeypatch.setattr(torch.nn.Module, "compile", eager_compile)
    run_dir = train(load_config(tiny_recipe, ["preset=gan", "train.iterations=3", "train.compile=true"]), tmp_path / "run")
    assert compiled == ["EDSR", "SRGANDiscriminator"]
    state = ckpt.load_checkpoint(ckpt.iteration_checkpoint_path(run_dir, 3))
    assert not any("_orig_mod" in key for key in (*state["params"], *state["params_d"]))


def test_generator_init_from_a_trained_model_or_checkpoint(tiny_recipe, tmp_path):
    from srgan.models import read_reference

    run_dir = train(load_config(tiny_recipe, ["train.iterations=6"]), tmp_path / "first")
    for reference in (run_dir / "generator.safetensors", ckpt.iteration_checkpoint_path(run_dir, 6)):
        started = SRModule(load_config(tiny_recipe, [f"generator.init={reference}"])).generator.state_dict()
        trained = read_reference(reference).state_dict
        assert started.keys() == trained.keys()
        assert all(torch.equal(started[key], trained[key]) for key in trained)
    other = load_config(tiny_recipe, [f"generator.init={run_dir / 'generator.safetensors'}",
                                      "generator.kwargs.num_features=4"])
    with pytest.raises(SrganError, match=r"generator\.init .*generator\.safetensors: holds a edsr .*use weights of the same network"):
        SRModule(other)
