"""Training throughput: the trainer's fast path against a plain PyTorch loop, with model-FLOP utilisation.

For SRResNet x4 (batch 16, HR 96) and RRDBNet x4 (batch 16, HR 128), on one device, in one run:

  plain    eager fp32 NCHW model, `PatchDataset` + a CPU `DataLoader` (worker processes, shuffled),
           batches copied to the device, torch.optim.Adam defaults, L1 loss read back with `.item()`
           every step: what a straightforward training script does.
  trainer  what `srgan train` runs with `data.loader: device`: training images held on the device as
           uint8, each batch cut, MATLAB-bicubic downscaled and flipped there (`srgan.data.sample_batch`),
           `SRModule.training_step` with the `Trainer` as step runner (bf16 autocast and channels_last on
           CUDA, fused Adam on CUDA, optional torch.compile), losses left on the device until the end.

Each loop runs `--warmup` untimed steps, then `--iterations` timed ones (the device is synchronised
before the clock stops). Reported: iterations/s, images/s, speed-up over plain, and model-FLOP
utilisation: the generator's forward + backward FLOPs per step (counted once with
`torch.utils.flop_counter.FlopCounterMode`; loss, optimiser and data work are not model FLOPs) times
iterations/s, over a matrix-multiply peak measured in the same run (bf16 on CUDA, fp32 on CPU).

    python benchmarks/train_throughput.py                                 # GPU: the issue's settings
    python benchmarks/train_throughput.py --device cpu --batch 4 --iterations 3 --warmup 1
    python benchmarks/train_throughput.py --models srresnet --compile --json train.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from machine import cpu_name  # benchmarks/machine.py, beside this script
from torch import nn

from srgan.fileutil import atomic_write

SHARED_TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "train" / "cq100"
# the settings: (registry arch, HR patch)
MODELS = {"srresnet": ("srresnet", 96), "rrdbnet": ("rrdbnet", 128)}
SCALE = 4


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device) -> tuple[float, str]:
    """Sustained FLOP/s of one large matrix multiply: bf16 on CUDA (tensor cores), fp32 on CPU."""
    dtype, size, repeats = (torch.bfloat16, 8192, 20) if device.type == "cuda" else (torch.float32, 2048, 5)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    synchronize(device)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        synchronize(device)
        best = min(best, (time.perf_counter() - started) / repeats)
    return 2 * size**3 / best, f"{str(dtype).removeprefix('torch.')} {size}x{size} matmul"


def model_flops(network: nn.Module, lr: torch.Tensor) -> int:
    """Forward + backward FLOPs of one step of `network` on the batch `lr`."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        network(lr).sum().backward()
    network.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def recipe(arch: str, hr_patch: int, options, run_dir: Path):
    """The training config of the trainer loop, loaded as `srgan train` would load it."""
    import yaml

    from srgan.train.config import load_config

    values = {
        "name": f"throughput_{arch}",
        "scale": SCALE,
        "generator": {"arch": arch},
        "data": {"train_dirs": [str(options.data)], "hr_patch": hr_patch, "batch_size": options.batch,
                 "prepare": False, "loader": "device"},
        "losses": {"pixel": {"kind": "l1"}},
        "train": {"device": str(options.device), "precision": "auto", "compile": options.compile},
    }
    path = run_dir / "recipe.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return load_config(path)


def time_steps(step, warmup: int, iterations: int, device: torch.device) -> float:
    """Seconds per step, over `iterations` steps after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(iterations):
        step()
    synchronize(device)
    return (time.perf_counter() - started) / iterations


def plain_loop(arch: str, hr_patch: int, options) -> float:
    """Seconds per step of the plain loop (see the module docstring)."""
    from torch.utils.data import DataLoader

    from srgan.archs.registry import build_arch
    from srgan.data import PatchDataset

    device = options.device
    network = build_arch(arch, {"scale": SCALE}).to(device).train()
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    dataset = PatchDataset(options.data, scale=SCALE, hr_patch=hr_patch, patches_per_image=1000)
    loader = DataLoader(dataset, batch_size=options.batch, shuffle=True, num_workers=options.workers,
                        drop_last=True, persistent_workers=options.workers > 0)
    batches = iter(loader)
    criterion = nn.L1Loss()

    def step():
        lr, hr = next(batches)
        lr, hr = lr.to(device), hr.to(device)
        loss = criterion(network(lr), hr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()

    return time_steps(step, options.warmup, options.iterations, device)


def trainer_loop(arch: str, hr_patch: int, options, run_dir: Path) -> tuple[float, int]:
    """Seconds per step of the trainer's fast path, and the generator's FLOPs per step."""
    from srgan.data import load_training_images, sample_batch
    from srgan.train.module import SRModule
    from srgan.train.trainer import Trainer

    config = recipe(arch, hr_patch, options, run_dir)
    trainer = Trainer(config, run_dir)
    module = SRModule(config).to(trainer.device, memory_format=trainer.memory_format).train()
    flops = model_flops(module.generator, torch.rand(options.batch, 3, hr_patch // SCALE, hr_patch // SCALE,
                                                    device=trainer.device))
    if options.compile:
        module.generator.compile()
    optimizers = module.configure_optimizers()
    images = load_training_images([options.data], scale=SCALE, hr_patch=hr_patch, device=trainer.device)
    sampler = torch.Generator().manual_seed(0)

    def step():
        lr, hr = sample_batch(images, options.batch, hr_patch, SCALE, sampler)
        lr, hr = (batch.contiguous(memory_format=trainer.memory_format) for batch in (lr, hr))
        trainer.iteration += 1
        trainer.pending_logs.append(module.training_step(lr, hr, trainer.iteration, trainer, optimizers))

    seconds = time_steps(step, options.warmup, options.iterations, trainer.device)
    trainer._read_back_losses()  # what the trainer does at a log step; also checks the losses are finite
    return seconds, flops


def environment(device: torch.device, peak: float, peak_kind: str) -> dict:
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = f"{cpu_name()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} threads"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "hardware": hardware,
        "torch": torch.__version__,
        "peak_flops": peak,
        "peak_kind": peak_kind,
        "load_average_1min": os.getloadavg()[0],
    }


def markdown(rows: list[dict], env: dict) -> str:
    heading = (
        f"{env['hardware']}, torch {env['torch']}, {env['date']}; peak {env['peak_flops'] / 1e12:.3f} TFLOP/s "
        f"({env['peak_kind']}); 1-min load average at the end {env['load_average_1min']:.1f}"
    )
    lines = [
        heading,
        "",
        "| model | batch x HR | loop | it/s | images/s | speed-up | model TFLOP/s | MFU |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['batch']} x {row['hr_patch']} | {row['loop']} | {row['it_per_s']:.3f} | "
            f"{row['images_per_s']:.2f} | {row['speedup']:.2f}x | {row['model_tflops']:.4f} | {row['mfu']:.1%} |"
        )
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=sorted(MODELS, reverse=True))
    parser.add_argument("--device", default="auto", help="auto (cuda if present, else cpu), cpu, cuda, cuda:N")
    parser.add_argument("--batch", type=int, default=16, help="batch size (default 16, the issue's)")
    parser.add_argument("--iterations", type=int, default=50, help="timed steps per loop (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader processes of the plain loop (default 4)")
    parser.add_argument("--data", type=Path, default=SHARED_TRAIN, help=f"training images (default {SHARED_TRAIN})")
    parser.add_argument("--compile", action="store_true", help="torch.compile the generator in the trainer loop")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    from srgan.train.runtime import select_device

    options = parse_args(argv)
    options.device = select_device(options.device)
    peak, peak_kind = matmul_peak(options.device)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for key in options.models:
            arch, hr_patch = MODELS[key]
            plain_seconds = plain_loop(arch, hr_patch, options)
            trainer_seconds, flops = trainer_loop(arch, hr_patch, options, Path(scratch) / key)
            for loop, seconds in (("plain", plain_seconds), ("trainer", trainer_seconds)):
                rows.append({
                    "model": key, "batch": options.batch, "hr_patch": hr_patch, "loop": loop,
                    "seconds_per_step": seconds, "it_per_s": 1 / seconds, "images_per_s": options.batch / seconds,
                    "speedup": plain_seconds / seconds, "model_flops_per_step": flops,
                    "model_tflops": flops / seconds / 1e12, "mfu": flops / seconds / peak,
                })
    env = environment(options.device, peak, peak_kind)
    env["options"] = {key: str(value) for key, value in vars(options).items()}
    print(markdown(rows, env))
    if options.json:
        with atomic_write(options.json) as temp_path:
            temp_path.write_text(json.dumps({"environment": env, "results": rows}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
