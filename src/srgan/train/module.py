"""The model side of training: networks, losses, EMA and one optimisation step (Lightning's LightningModule role).

`SRModule` knows what a step computes, not where it runs: the trainer hands it a `StepRunner`
that owns autocast, gradient scaling, clipping and the NaN check. The GAN step follows the
canonical order — D on `fake.detach()`, then G with D frozen — so no graph is reused after an
in-place parameter update.
"""

from __future__ import annotations

import copy
from typing import Protocol

import torch
from torch import Tensor, nn

from srgan.errors import SrganError
from srgan.train.config import OptimizerConfig, TrainConfig


class StepRunner(Protocol):
    """What the trainer gives a training step (implemented by `trainer.Trainer`)."""

    def autocast(self): ...

    def optimize(self, name: str, loss: Tensor, optimizer: torch.optim.Optimizer, parameters: list[Tensor]) -> None: ...


class ExponentialMovingAverage(nn.Module):
    """A frozen copy of the generator whose weights trail the trained ones (BasicSR's `params_ema`)."""

    def __init__(self, model: nn.Module, decay: float):
        super().__init__()
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    def decay_at(self, iteration: int) -> float:
        """The decay, warmed up as (1 + i) / (10 + i): a fixed 0.999 from the first step would keep the
        average mostly at the initial weights for thousands of iterations (0.999**500 = 0.61)."""
        return min(self.decay, (1 + iteration) / (10 + iteration))

    @torch.no_grad()
    def update(self, model: nn.Module, iteration: int) -> None:
        weight = 1.0 - self.decay_at(iteration)
        for averaged, current in zip(self.module.parameters(), model.parameters()):
            averaged.lerp_(current.detach(), weight)
        # running statistics (BatchNorm) are copied, not averaged
        for averaged, current in zip(self.module.buffers(), model.buffers()):
            averaged.copy_(current)

    def train(self, mode: bool = True) -> ExponentialMovingAverage:
        # the averaged copy is only ever evaluated
        super().train(False)
        return self


def build_generator(config: TrainConfig) -> nn.Module:
    from srgan.modelfiles.checkpoint import generator_spec
    from srgan.models import read_reference

    spec = generator_spec(config.to_dict())
    generator = spec.build()
    if config.generator.init:
        init = read_reference(config.generator.init)
        if init.spec != spec:
            raise SrganError(
                f"generator.init {config.generator.init}: holds a {init.spec.arch} {init.spec.kwargs_json()}, "
                f"but the config builds a {spec.arch} {spec.kwargs_json()}; use weights of the same network"
            )
        generator.load_state_dict(init.state_dict)
    return generator


def build_discriminator(config: TrainConfig) -> nn.Module | None:
    from srgan.archs.registry import build_arch

    if config.discriminator is None:
        return None
    discriminator = build_arch(config.discriminator.arch, config.discriminator.kwargs)
    if config.discriminator.init:
        state = _discriminator_state(config.discriminator.init)
        try:
            discriminator.load_state_dict(state)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise SrganError(
                f"discriminator.init {config.discriminator.init}: does not fit the configured "
                f"{config.discriminator.arch} ({first}); use weights of the same discriminator"
            ) from None
    return discriminator


def _discriminator_state(path: str) -> dict[str, Tensor]:
    """A discriminator's weights from a training checkpoint (`params_d`) or a plain state-dict file."""
    from srgan.modelfiles.checkpoint import read_state
    from srgan.safeload import load_weights_only

    if path.endswith(".ckpt"):
        state = read_state(path).get("params_d")
        if not state:
            raise SrganError(f"discriminator.init {path}: this checkpoint holds no discriminator; "
                             "use one from a GAN run")
        return state
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    state = load_weights_only(path)
    # BasicSR saves networks as {"params": state_dict}
    if isinstance(state, dict) and isinstance(state.get("params"), dict):
        state = state["params"]
    if not isinstance(state, dict):
        raise SrganError(f"discriminator.init {path}: not a state dict; give a .ckpt, .pth or .safetensors file")
    return state


def _adam(parameters, settings: OptimizerConfig) -> torch.optim.Adam:
    parameters = list(parameters)
    # on CUDA one fused kernel updates every tensor, instead of several launches per tensor
    fused = all(parameter.is_cuda for parameter in parameters)
    return torch.optim.Adam(parameters, lr=settings.lr, betas=tuple(settings.betas), weight_decay=settings.weight_decay,
                            fused=fused)


class SRModule(nn.Module):
    """Generator (+ EMA), optional discriminator, the configured losses, and the training step."""

    def __init__(self, config: TrainConfig):
        super().__init__()
        from srgan import losses

        self.config = config
        self.generator = build_generator(config)
        self.discriminator = build_discriminator(config)
        decay = config.train.ema_decay
        self.ema = ExponentialMovingAverage(self.generator, decay) if decay > 0 else None
        settings = config.losses
        self.pixel_loss = losses.PixelLoss(settings.pixel.kind) if settings.pixel else None
        self.perceptual_loss = (
            losses.PerceptualLoss(
                settings.perceptual.layer,
                settings.perceptual.weights,
                convention=settings.perceptual.convention,
                rescale=settings.perceptual.rescale,
                criterion=settings.perceptual.criterion,
            )
            if settings.perceptual
            else None
        )
        self.adversarial_loss = losses.AdversarialLoss(settings.adversarial.kind) if settings.adversarial else None

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optimizers = {"generator": _adam(self.generator.parameters(), self.config.optim_g)}
        if self.discriminator is not None:
            optimizers["discriminator"] = _adam(self.discriminator.parameters(), self.config.optim_d)
        return optimizers

    @property
    def inference_generator(self) -> nn.Module:
        """The network validation and export use: the EMA copy when there is one."""
        return self.ema.module if self.ema is not None else self.generator

    def in_warmup(self, iteration: int) -> bool:
        return iteration <= self.config.train.pixel_warmup_iterations

    def steps_generator(self, iteration: int) -> bool:
        """In the adversarial phase: G steps after the D-only iterations, every d_steps_per_g_step-th iteration."""
        loop = self.config.train
        adversarial = iteration - loop.pixel_warmup_iterations
        return adversarial > loop.d_init_iterations and adversarial % loop.d_steps_per_g_step == 0

    def training_step(
        self, lr: Tensor, hr: Tensor, iteration: int, runner: StepRunner, optimizers: dict[str, torch.optim.Optimizer]
    ) -> dict[str, Tensor]:
        """One update of G (and of D after the warm-up); returns detached scalars named BasicSR-style (`l_*`)."""
        if self.discriminator is None:
            logs = self._generator_step(lr, hr, runner, optimizers["generator"])
        elif self.in_warmup(iteration):
            logs = self._warmup_step(lr, hr, runner, optimizers["generator"])
        else:
            steps_generator = self.steps_generator(iteration)
            with runner.autocast(), torch.set_grad_enabled(steps_generator):
                fake = self.generator(lr)
            logs = self._discriminator_step(hr, fake, runner, optimizers["discriminator"])
            if steps_generator:
                logs |= self._generator_step(lr, hr, runner, optimizers["generator"], fake=fake)
        if self.ema is not None:
            self.ema.update(self.generator, iteration)
        return logs

    def _warmup_step(self, lr: Tensor, hr: Tensor, runner: StepRunner, optimizer) -> dict[str, Tensor]:
        """Pixel loss only: gives the GAN phase a sensible generator when no pretrained init is given."""
        with runner.autocast():
            loss = self.pixel_loss(self.generator(lr), hr)
        runner.optimize("l_g_pix", loss, optimizer, list(self.generator.parameters()))
        return {"l_g_pix": loss.detach(), "l_g_total": loss.detach()}

    def _generator_step(self, lr, hr, runner: StepRunner, optimizer, *, fake: Tensor | None = None) -> dict[str, Tensor]:
        """Content losses, plus the adversarial term against a frozen D when `fake` (= G(lr)) is given."""
        settings = self.config.losses
        with runner.autocast():
            sr = self.generator(lr) if fake is None else fake
            terms: dict[str, Tensor] = {}
            if self.pixel_loss is not None and settings.pixel.weight > 0:
                terms["l_g_pix"] = settings.pixel.weight * self.pixel_loss(sr, hr)
            perceptual = settings.perceptual
            if self.perceptual_loss is not None and (perceptual.weight > 0 or perceptual.style_weight > 0):
                percep, style = self.perceptual_loss.with_style(sr, hr, style=perceptual.style_weight > 0)
                if perceptual.weight > 0:
                    terms["l_g_percep"] = perceptual.weight * percep
                if style is not None:
                    terms["l_g_style"] = perceptual.style_weight * style
            if settings.tv_weight > 0:
                from srgan.losses import tv_loss

                terms["l_g_tv"] = settings.tv_weight * tv_loss(sr)
            if fake is not None:
                self.discriminator.requires_grad_(False)
                fake_logits = self.discriminator(sr)
                real_logits = self.discriminator(hr).detach() if settings.adversarial.kind == "ragan" else None
                terms["l_g_gan"] = settings.adversarial.weight * self.adversarial_loss.generator_loss(
                    fake_logits, real_logits
                )
            total = sum(terms.values())
        runner.optimize("l_g_total", total, optimizer, list(self.generator.parameters()))
        if fake is not None:
            self.discriminator.requires_grad_(True)
        logs = {key: value.detach() for key, value in terms.items()}
        logs["l_g_total"] = total.detach()
        return logs

    def _discriminator_step(self, hr: Tensor, fake: Tensor, runner, optimizer) -> dict[str, Tensor]:
        settings = self.config.losses.adversarial
        with runner.autocast():
            real_logits = self.discriminator(hr)
            fake_logits = self.discriminator(fake.detach())
            terms = {"l_d": self.adversarial_loss.discriminator_loss(real_logits, fake_logits)}
        if settings.kind == "wgan_gp":
            from srgan.losses import gradient_penalty

            # the penalty differentiates through D; fp32 keeps its second-order terms finite
            with torch.autocast(device_type=hr.device.type, enabled=False):
                terms["l_d_gp"] = settings.gradient_penalty_weight * gradient_penalty(
                    self.discriminator, hr.float(), fake.detach().float()
                )
        total = sum(terms.values())
        runner.optimize("l_d_total", total, optimizer, list(self.discriminator.parameters()))
        logs = {key: value.detach() for key, value in terms.items()}
        if settings.kind in self.adversarial_loss.RAW_SCORE_KINDS:
            # a critic's (or LSGAN's, hinge's) scores are no logits; σ of them means nothing, so raw means are logged
            logs["critic_real"] = real_logits.detach().float().mean()
            logs["critic_fake"] = fake_logits.detach().float().mean()
        else:
            logs["discriminator_score"] = torch.sigmoid(real_logits.detach().float()).mean()
            logs["generator_score"] = torch.sigmoid(fake_logits.detach().float()).mean()
        return logs
