"""The trainer (Lightning's Trainer role): device, precision, data loading, the loop, checkpoints, validation, logs.

What a step computes lives in `module.SRModule`; what a run shows and leaves behind in `monitor`;
the checkpoint format in `checkpoint`. `train(config, out_dir, resume)` is the Python entry point
behind `srgan train`.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import math
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

from srgan.errors import SrganError
from srgan.fileutil import atomic_write, remove_stale_partials
from srgan.train import checkpoint as ckpt
from srgan.train import distributed
from srgan.train.config import ScheduleConfig, TrainConfig, check_resources
from srgan.train.module import SRModule
from srgan.train.monitor import (
    SAMPLES_DIR,
    LossAverager,
    Monitor,
    close_log_file,
    plot_metrics,
    record_error,
    save_sample_grid,
    setup_logging,
    warnings_logged,
)
from srgan.train.runtime import (
    capture_rng_state,
    is_main_process,
    restore_rng_state,
    seed_everything,
    select_device,
    select_precision,
)

logger = logging.getLogger("srgan.train")

GENERATOR_FILE = "generator.safetensors"


def default_run_dir(config: TrainConfig) -> Path:
    return Path("runs") / (config.name + (f"_{config.preset}" if config.preset else ""))


def train(config: TrainConfig, out_dir: str | Path | None = None, resume: str | None = None) -> Path:
    """Train as `config` says, in `out_dir` (default runs/NAME[_PRESET]); `resume` is None, "auto" or a path.

    Returns the run folder, which then holds checkpoints/, metrics.jsonl, plots/, samples/ and the
    final generator as generator.safetensors.
    """
    run_dir = Path(out_dir) if out_dir is not None else default_run_dir(config)
    trainer = Trainer(config, run_dir)
    try:
        return trainer.fit(resume)
    finally:
        distributed.leave_process_group()


def lr_factor(schedule: ScheduleConfig, iterations: int, base_lr: float, step: int) -> float:
    """The learning rate of iteration `step + 1` as a multiple of `base_lr` (BasicSR's schedules, counted in
    global iterations): a linear warm-up ramp over the first `warmup_iterations`, times the schedule's factor."""
    ramp = min(1.0, (step + 1) / schedule.warmup_iterations) if schedule.warmup_iterations else 1.0
    if schedule.kind == "multistep":
        return ramp * schedule.gamma ** sum(milestone <= step for milestone in schedule.milestones)
    if schedule.kind == "constant":
        return ramp
    if schedule.kind == "cosine":
        weight, position, period = 1.0, min(step, iterations), iterations
    else:  # cosine_restarts: the cycle `step` falls in (the last one's end is held after it)
        start = 0
        for period, weight in zip(schedule.periods, schedule.restart_weights):
            if step < start + period:
                break
            start += period
        else:
            start -= period
        position = min(step - start, period)
    cosine = schedule.min_lr + weight * (base_lr - schedule.min_lr) * (1 + math.cos(math.pi * position / period)) / 2
    return ramp * cosine / base_lr


def _build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    base_lr = optimizer.param_groups[0]["lr"]
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, functools.partial(lr_factor, config.schedule, config.train.iterations, base_lr))


class Trainer:
    """Runs one training: owns the device, precision, optimisers' stepping, checkpoints and logging."""

    def __init__(self, config: TrainConfig, run_dir: Path):
        self.config = config
        self.run_dir = Path(run_dir)
        # under torchrun this process joins the others and takes its own GPU
        self.place = distributed.join_process_group(select_device(config.train.device))
        self.device = self.place.device
        self.is_main = is_main_process()
        self.precision = select_precision(config.train.precision, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision.use_grad_scaler)
        self.iteration = 0
        self.best_psnr = -math.inf
        self._val_scorer = None  # srgan.quality Scorer for data.val_metrics, made at the first validation
        self.averager = LossAverager()
        # losses of the steps since the last read-back, kept on the device so that no step waits for it
        self.pending_logs: list[dict[str, Tensor]] = []
        self.optimized_losses: list[tuple[int, str, Tensor]] = []
        # NHWC is the layout tensor-core convolutions use; in NCHW each one would add transposes
        self.memory_format = torch.channels_last if self.device.type == "cuda" else torch.contiguous_format
        # random stream of the on-device batch sampler (data.loader = "device"); checkpointed
        self.batch_generator = torch.Generator().manual_seed(config.train.seed)

    # --- the StepRunner the module's training_step uses ------------------------------------------

    def autocast(self):
        dtype = self.precision.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def optimize(self, name: str, loss: Tensor, optimizer: torch.optim.Optimizer, parameters: list[Tensor]) -> None:
        """Backward and step; `_read_back_losses` checks the loss later (a NaN/inf stops the run)."""
        self.optimized_losses.append((self.iteration, name, loss.detach()))
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.train.grad_clip > 0:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(parameters, self.config.train.grad_clip)
        self.scaler.step(optimizer)

    def _read_back_losses(self) -> None:
        """Copy the losses of the steps since the last call to the host in one transfer, stop if one diverged.

        Reading a loss every step would make the host wait for the GPU each iteration. This runs
        before every log line, validation and checkpoint, so a diverged run never writes a checkpoint.
        """
        step_logs, self.pending_logs = self.pending_logs, []
        optimized, self.optimized_losses = self.optimized_losses, []
        tensors = [loss for _, _, loss in optimized] + [value for logs in step_logs for value in logs.values()]
        if not tensors:
            return
        values = torch.stack([tensor.float() for tensor in tensors]).tolist()
        diverged = next(((iteration, name, value) for (iteration, name, _), value in zip(optimized, values)
                         if not math.isfinite(value)), None)
        if distributed.any_process(diverged is not None, self.place):
            where = "iteration {}: {} is {}".format(*diverged) if diverged else (
                f"iteration {self.iteration}: a loss of another process is not finite")
            raise SrganError(
                f"{where}, training diverged; stopped without writing a checkpoint; "
                "resume from the last one with a lower learning rate or train.grad_clip"
            )
        log_values = iter(values[len(optimized):])
        for logs in step_logs:
            self.averager.add({key: next(log_values) for key in logs})

    # --- setup -------------------------------------------------------------------------------------

    def _announce(self) -> None:
        config = self.config
        logger.info("run folder %s", self.run_dir)
        logger.info("config %s%s, device %s, precision %s", config.name,
                    f" (preset {config.preset})" if config.preset else "", self.device, self.precision.description)
        if config.note:
            logger.info("note: %s", config.note)

    def _write_config(self) -> None:
        with atomic_write(self.run_dir / "config.yaml") as temp_path:
            temp_path.write_text(yaml.safe_dump(self.config.to_dict(), sort_keys=False), encoding="utf-8")

    def _training_folders(self) -> list[str]:
        """The folders patches are cut from: the configured ones, or their prepared sub-images."""
        data = self.config.data
        if not data.prepare:
            return list(data.train_dirs)
        from srgan.data import prepare_subimages

        # min_size is left at its default so that the prepared set does not depend on data.hr_patch:
        # a new patch size reuses it, and a sub-image smaller than the patch is an error naming it.
        prepared = prepare_subimages(
            data.train_dirs,
            data.prepared_dir,
            scale=self.config.scale,
            subimage_size=data.subimage_size,
            step=data.subimage_step,
            jpeg_predownscale=data.jpeg_predownscale,
        )
        logger.info("training on sub-images prepared in %s", prepared)
        return [str(prepared)]

    def _train_batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        """Endless (lr, hr) batches continuing after `self.iteration` exactly as an unbroken run would."""
        data = self.config.data
        folders = self._training_folders()
        if data.loader == "device":
            return self._device_batches(folders)
        from torch.utils.data import DataLoader

        from srgan.data import PatchDataset, ResumableSampler

        dataset = PatchDataset(
            folders,
            scale=self.config.scale,
            hr_patch=data.hr_patch,
            lr_dir=data.train_lr_dirs,
            patches_per_image=data.patches_per_image,
            augment=data.augment,
            seed=self.config.train.seed,
        )
        sampler = ResumableSampler(len(dataset), seed=self.config.train.seed, start=self.iteration * data.batch_size,
                                   rank=self.place.rank, world_size=self.place.world_size)
        loader = DataLoader(
            dataset,
            batch_size=distributed.per_process_batch(data.batch_size, self.place),
            sampler=sampler,
            num_workers=data.num_workers,
            pin_memory=self.device.type == "cuda",
            drop_last=True,
            persistent_workers=data.num_workers > 0,
        )
        logger.info("%d training images, %d patches per pass", len(dataset) // data.patches_per_image, len(dataset))
        return iter(loader)

    def _device_batches(self, folders: list[str]) -> Iterator[tuple[Tensor, Tensor]]:
        from srgan.data import load_training_images, sample_batch

        data = self.config.data
        images = load_training_images(folders, scale=self.config.scale, hr_patch=data.hr_patch, device=self.device)
        logger.info("%d training images held on %s", len(images), self.device)
        while True:
            batch = sample_batch(images, data.batch_size, data.hr_patch, self.config.scale, self.batch_generator,
                                 augment=data.augment)
            yield distributed.own_rows(batch, self.place)

    def _validation_sets(self) -> list[tuple[str, Any]]:
        """(label, ImageFolderPairs) for data.val_dir, then each of data.extra_val_dirs."""
        from srgan.data import ImageFolderPairs
        from srgan.data.files import unique_folder_labels

        data = self.config.data
        if data.val_dir is None:
            return []
        folders = [data.val_dir, *data.extra_val_dirs]
        labels = unique_folder_labels([Path(folder) for folder in folders])
        lr_dirs = [data.val_lr_dir] + [None] * len(data.extra_val_dirs)
        return [(label, ImageFolderPairs(folder, scale=self.config.scale, lr_dir=lr_dir))
                for label, folder, lr_dir in zip(labels, folders, lr_dirs)]

    # --- checkpoints -------------------------------------------------------------------------------

    def _state(self, module: SRModule, optimizers: dict, schedulers: dict) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "config": self.config.to_dict(),
            "params": module.generator.state_dict(),
            "params_ema": module.ema.module.state_dict() if module.ema is not None else None,
            "params_d": module.discriminator.state_dict() if module.discriminator is not None else None,
            "optimizers": {name: optimizer.state_dict() for name, optimizer in optimizers.items()},
            "schedulers": {name: scheduler.state_dict() for name, scheduler in schedulers.items()},
            "scaler": self.scaler.state_dict(),
            "rng": capture_rng_state(),
            "sampler": {
                "seed": self.config.train.seed,
                "consumed": self.iteration * self.config.data.batch_size,
                "generator": self.batch_generator.get_state(),
            },
            "loss_averager": self.averager.state_dict(),
            "best_psnr": self.best_psnr,
        }

    def _differences_from_started_run(self, resume: str | None) -> str:
        """What this config changes against the one stored in the checkpoint that `resume` picks ("" if nothing)."""
        if resume is None:
            return ""
        if resume == "auto":
            found = ckpt.find_resume_checkpoint(self.run_dir)
        else:
            found = Path(resume), ckpt.load_checkpoint(resume)
        if found is None or not isinstance(found[1].get("config"), dict):
            return ""
        path, state = found
        before, now = _flatten(state["config"]), _flatten(self.config.to_dict())
        changed = [f"{key}={now.get(key)!r} (was {before.get(key)!r})" for key in sorted(before.keys() | now.keys())
                   if before.get(key) != now.get(key)]
        if not changed:
            return ""
        return (f"the run was started with preset={state['config'].get('preset')!r}; this config differs from "
                f"{path.name}'s in " + ", ".join(changed))

    def _find_resume_state(self, resume: str | None) -> tuple[Path, dict[str, Any]] | None:
        existing = ckpt.iteration_checkpoints(self.run_dir)
        if resume is None:
            if existing:
                raise SrganError(
                    f"{self.run_dir} already holds checkpoints; pass --resume auto to continue that run, "
                    "or --out a new folder"
                )
            return None
        if resume == "auto":
            found = ckpt.find_resume_checkpoint(self.run_dir)
            if found is None:
                logger.info("no valid checkpoint in %s; starting from iteration 0", ckpt.checkpoint_dir(self.run_dir))
            return found
        return Path(resume), ckpt.load_checkpoint(resume)

    def _restore(self, path: Path, state: dict[str, Any], module: SRModule, optimizers: dict, schedulers: dict) -> None:
        try:
            module.generator.load_state_dict(state["params"])
            if module.ema is not None:
                module.ema.module.load_state_dict(state["params_ema"] or state["params"])
            if module.discriminator is not None:
                if state["params_d"] is None:
                    raise KeyError("params_d")
                module.discriminator.load_state_dict(state["params_d"])
            for name, optimizer in optimizers.items():
                optimizer.load_state_dict(state["optimizers"][name])
            for name, scheduler in schedulers.items():
                # a LambdaLR's state is its step count; checkpoints from before the schedules were LambdaLRs
                # (MultiStepLR, CosineAnnealingLR) lack its lr_lambdas entry but resume the same
                scheduler.load_state_dict({"lr_lambdas": [None], **state["schedulers"][name]})
        except (KeyError, RuntimeError, ValueError) as error:
            first_line = str(error).strip().splitlines()[0]
            raise SrganError(
                f"{path}: does not match this config's networks or optimisers ({first_line}); "
                "resume with the config the run was started with"
            ) from None
        self.scaler.load_state_dict(state["scaler"])
        restore_rng_state(state["rng"])
        self.averager.load_state_dict(state["loss_averager"])
        self.batch_generator.set_state(state["sampler"]["generator"])
        self.iteration = state["iteration"]
        self.best_psnr = state["best_psnr"]
        parts = ["generator", "EMA" if state["params_ema"] else None,
                 "discriminator" if state["params_d"] else None,
                 f"{len(optimizers)} optimiser(s)", f"{len(schedulers)} scheduler(s)", "grad scaler",
                 "RNG states (python, numpy, torch" + (", cuda" if "cuda" in state["rng"] else "") + ")",
                 f"sampler position ({state['sampler']['consumed']} patches)"]
        logger.info("resumed from %s at iteration %d: restored %s", path, self.iteration,
                    ", ".join(part for part in parts if part))

    def _save_checkpoint(self, state: dict[str, Any], *, periodic: bool, best: bool) -> None:
        if not self.is_main:
            return
        if periodic:
            ckpt.save_checkpoint(ckpt.iteration_checkpoint_path(self.run_dir, self.iteration), state)
            ckpt.prune_checkpoints(self.run_dir, self.config.checkpoint.keep_last)
        if best:
            ckpt.save_checkpoint(ckpt.checkpoint_dir(self.run_dir) / ckpt.BEST_CHECKPOINT_NAME, state)

    # --- validation --------------------------------------------------------------------------------

    @torch.no_grad()
    def validate(self, module: SRModule, val_sets: list[tuple[str, Any]]) -> dict[str, float]:
        """Mean PSNR/SSIM (and `data.val_metrics`) per validation set, scored as `srgan eval` scores
        (`evaluate.score_image`: 8-bit output, Y channel, crop = scale, gray rule); a sample grid of the
        first set.

        The first set's scores are `psnr`/`ssim`/... (they choose best.ckpt), the others' `psnr_LABEL`, ....
        """
        from srgan.evaluate import Protocol, score_image

        if self._val_scorer is None and self.config.data.val_metrics:
            from srgan.quality.registry import Scorer

            self._val_scorer = Scorer(self.config.data.val_metrics, device=str(self.device))
        scale = self.config.scale
        protocol = Protocol(scale, y_channel=True, crop_border=scale)
        network = module.inference_generator
        was_training = network.training
        network.eval()
        scores: dict[str, float] = {}
        samples = []
        for position, (label, val_set) in enumerate(val_sets):
            limit = min(self.config.data.val_max_images or len(val_set), len(val_set))
            values: dict[str, list[float]] = {}
            for index in range(limit):
                _, lr, hr = val_set[index]
                stored = val_set.store.images[index]
                sr = network(lr.unsqueeze(0).to(self.device)).float().clamp(0, 1).cpu()[0]
                psnr_value, ssim_value, extra = score_image(
                    sr, hr, stored.is_gray, protocol, str(stored.pair.hr_path), self._val_scorer
                )
                for name, value in {"psnr": psnr_value, "ssim": ssim_value, **extra}.items():
                    values.setdefault(name, []).append(value)
                if position == 0 and index < self.config.log.sample_images:
                    samples.append((lr, sr, hr))
            suffix = f"_{label}" if position else ""
            scores.update({f"{name}{suffix}": sum(series) / len(series) for name, series in values.items()})
        network.train(was_training)
        if samples:
            grid_path = self.run_dir / SAMPLES_DIR / f"iter_{self.iteration:08d}.png"
            save_sample_grid(grid_path, samples, scale=scale, crop=self.config.log.sample_crop)
        return scores

    # --- the loop ----------------------------------------------------------------------------------

    def fit(self, resume: str | None = None) -> Path:
        differences = self._differences_from_started_run(resume)
        try:
            check_resources(self.config)
        except SrganError as error:
            if differences:
                raise SrganError(f"{error} (resuming: {differences})") from None
            raise
        if self.is_main:
            setup_logging(self.run_dir)
            self._announce()
            if differences:
                logger.info("resuming: %s", differences)
        try:
            with warnings_logged():
                return self._run(resume)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            failure = SrganError(f"no space left on device: {error.filename or self.run_dir}; "
                                 "free space, then rerun with --resume auto")
            record_error(str(failure))
            raise failure from None
        except SrganError as error:
            record_error(str(error))
            raise
        finally:
            close_log_file()

    def _run(self, resume: str | None) -> Path:
        config = self.config
        seed_everything(config.train.seed, deterministic=config.train.deterministic)
        module = SRModule(config).to(self.device, memory_format=self.memory_format)
        if config.train.compile:
            # in place, so state-dict keys (and checkpoints) stay those of the plain networks
            for network in (module.generator, module.discriminator):
                if network is not None:
                    network.compile()
        distributed.replicate(module, self.place)
        optimizers = module.configure_optimizers()
        schedulers = {name: _build_scheduler(optimizer, config) for name, optimizer in optimizers.items()}
        found = self._find_resume_state(resume)
        if found is not None:
            self._restore(*found, module, optimizers, schedulers)
        distributed.seed_process(config.train.seed, self.place, self.iteration, deterministic=config.train.deterministic)
        if self.is_main:
            # a run killed while writing (SIGKILL, power loss) leaves its temporary files behind
            for folder in (self.run_dir, ckpt.checkpoint_dir(self.run_dir)):
                remove_stale_partials(folder)
        if self.iteration >= config.train.iterations:
            if self.is_main and found is not None and not (self.run_dir / GENERATOR_FILE).is_file():
                # the run was killed during its final export: finish that instead of doing nothing
                self._export(found[0], ema=module.ema is not None)
                return self.run_dir
            logger.info("the run is already at iteration %d of %d; nothing to do", self.iteration, config.train.iterations)
            return self.run_dir
        if self.is_main:
            self._write_config()
        batches = self._train_batches()
        val_sets = self._validation_sets()
        monitor = None
        if self.is_main:
            monitor = Monitor(self.run_dir, start_iteration=self.iteration, total_iterations=config.train.iterations,
                              tensorboard=config.log.tensorboard, progress=config.log.progress)
        try:
            self._loop(module, optimizers, schedulers, batches, val_sets, monitor)
        finally:
            if monitor is not None:
                monitor.close()
        if self.is_main:
            self._export(ckpt.iteration_checkpoint_path(self.run_dir, self.iteration), ema=module.ema is not None)
        return self.run_dir

    def _export(self, checkpoint: Path, *, ema: bool) -> None:
        from srgan.models import export_model

        export_path = self.run_dir / GENERATOR_FILE
        export_model(checkpoint, export_path, ema=ema)
        logger.info("done: %d iterations; generator written to %s", self.iteration, export_path)

    def _loop(self, module: SRModule, optimizers: dict, schedulers: dict, batches, val_sets, monitor) -> None:
        config = self.config
        module.train()
        warmup_end = config.train.pixel_warmup_iterations if module.discriminator is not None else 0
        started, first = time.perf_counter(), self.iteration
        while self.iteration < config.train.iterations:
            lr, hr = next(batches)
            self.iteration += 1
            if self.iteration == warmup_end + 1 and warmup_end:
                logger.info("iteration %d: pixel-loss warm-up done, adversarial training starts", self.iteration)
            lr, hr = (batch.to(self.device, non_blocking=True, memory_format=self.memory_format) for batch in (lr, hr))
            self.pending_logs.append(module.training_step(lr, hr, self.iteration, self, optimizers))
            self.scaler.update()
            with warnings.catch_warnings():
                # schedules count global iterations, so D's also advances during the warm-up, when D
                # does not step; PyTorch warns about exactly that
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
                for scheduler in schedulers.values():
                    scheduler.step()
            last = self.iteration == config.train.iterations
            log_now = self.iteration % config.log.every == 0 or last
            validate_now = bool(val_sets) and (self.iteration % config.log.val_every == 0 or last)
            periodic = self.iteration % config.checkpoint.every == 0 or last
            if log_now or validate_now or periodic:
                self._read_back_losses()
            if monitor is not None:
                monitor.step(self.iteration)
                if log_now:
                    values = self.averager.pop_means()
                    values["lr_g"] = optimizers["generator"].param_groups[0]["lr"]
                    monitor.log_train(self.iteration, values)
            improved = False
            if validate_now and self.is_main:
                scores = self.validate(module, val_sets)
                improved = scores["psnr"] > self.best_psnr
                self.best_psnr = max(self.best_psnr, scores["psnr"])
                monitor.log_validation(self.iteration, scores)
                if config.log.plots:
                    plot_metrics(self.run_dir)
            if periodic or improved:
                self._save_checkpoint(self._state(module, optimizers, schedulers), periodic=periodic, best=improved)
            if validate_now or periodic:
                distributed.wait_for_main(self.place)
        resumed = f" (iterations {first + 1}-{self.iteration}, resumed at {first})" if first else ""
        logger.info("trained %d iterations%s in %.1f s", self.iteration - first, resumed, time.perf_counter() - started)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
