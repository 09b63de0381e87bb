"""Two-process data-parallel training on CPU (gloo): ranks agree, and match one process on the same global batch.

The generator is a BatchNorm-free tiny EDSR: on CPU PyTorch has no SyncBatchNorm, so only a BN-free
network makes the two-process run equal the single-process one exactly (SyncBatchNorm is used on CUDA).
"""

from __future__ import annotations

import math
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import yaml

from srgan.errors import SrganError
from srgan.train import checkpoint as ckpt
from srgan.train.config import load_config
from srgan.train.distributed import ProcessPlace, own_rows, per_process_batch
from srgan.train.trainer import Trainer, train

WORLD_SIZE = 2
ITERATIONS = 4


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wave_image(seed: int, size: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    fx, fy, phase = (torch.rand(3, 3, generator=generator) * 6).unbind(1)
    return torch.stack([0.5 + 0.4 * torch.sin(a * x * math.pi + b * y * math.pi + c) for a, b, c in zip(fx, fy, phase)])


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    from srgan.imageio import write_image

    root = tmp_path_factory.mktemp("ddp")
    for index in range(4):
        write_image(root / "train" / f"{index}.png", _wave_image(index, 32))
    values = {
        "name": "ddp",
        "scale": 4,
        "generator": {"arch": "edsr", "kwargs": {"num_features": 8, "num_blocks": 1}},
        "data": {"train_dirs": [str(root / "train")], "hr_patch": 16, "batch_size": 4, "num_workers": 0,
                 "prepare": False},
        "losses": {"pixel": {"kind": "l1"}},
        "optim_g": {"lr": 1e-2},
        "train": {"iterations": ITERATIONS, "seed": 5, "ema_decay": 0.5, "device": "cpu"},
        "checkpoint": {"every": 2, "keep_last": 3},
        "log": {"every": 2, "val_every": 100, "tensorboard": "off", "progress": "off", "plots": False},
    }
    path = root / "ddp.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


class _RecordingTrainer(Trainer):
    """Also keeps what every rank holds at each checkpoint (normally only rank 0 writes its state)."""

    def _save_checkpoint(self, state, *, periodic, best):
        rank = self.place.rank
        torch.save({key: state[key] for key in ("params", "params_ema", "params_d")},
                   self.run_dir.parent / f"rank{rank}_iter{self.iteration}.pt")
        super()._save_checkpoint(state, periodic=periodic, best=best)


def _rank_main(rank: int, port: int, recipe_path: str, overrides: list[str], run_dir: str, resume: str | None):
    import os

    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    _RecordingTrainer(load_config(recipe_path, overrides), Path(run_dir)).fit(resume)


def _run_two_processes(recipe: Path, run_dir: Path, overrides: list[str], resume: str | None = None) -> None:
    # fork: the children inherit the imported modules instead of importing torch again
    mp.start_processes(_rank_main, args=(_free_port(), str(recipe), overrides, str(run_dir), resume),
                       nprocs=WORLD_SIZE, start_method="fork")


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], **tolerance) -> None:
    assert a.keys() == b.keys()
    for name, value in a.items():
        torch.testing.assert_close(value, b[name], **tolerance, msg=lambda text, name=name: f"{name}: {text}")


def _single_process(recipe: Path, run_dir: Path, overrides: list[str]) -> dict:
    torch.set_num_threads(1)
    train(load_config(recipe, overrides), run_dir)
    return ckpt.load_checkpoint(ckpt.iteration_checkpoint_path(run_dir, ITERATIONS))


@pytest.mark.parametrize("loader", ["workers", "device"])
def test_two_processes_agree_and_equal_one_process_with_the_global_batch(recipe, tmp_path, loader):
    overrides = [f"data.loader={loader}"]
    _run_two_processes(recipe, tmp_path / "ddp" / "run", overrides)
    single = _single_process(recipe, tmp_path / "single", overrides)

    for iteration in (2, ITERATIONS):
        rank0 = torch.load(tmp_path / "ddp" / f"rank0_iter{iteration}.pt")
        rank1 = torch.load(tmp_path / "ddp" / f"rank1_iter{iteration}.pt")
        for key in ("params", "params_ema"):
            _assert_same(rank0[key], rank1[key], rtol=0, atol=0)
    written = ckpt.load_checkpoint(ckpt.iteration_checkpoint_path(tmp_path / "ddp" / "run", ITERATIONS))
    start = ckpt.load_checkpoint(ckpt.iteration_checkpoint_path(tmp_path / "ddp" / "run", 2))
    assert any(not torch.equal(start["params"][name], written["params"][name]) for name in written["params"])
    for key in ("params", "params_ema"):
        # the same updates up to summation order: half-batch means averaged across ranks vs one batch mean
        _assert_same(written[key], single[key], rtol=1e-4, atol=1e-6)
    assert written["sampler"]["consumed"] == single["sampler"]["consumed"] == ITERATIONS * 4
    assert (tmp_path / "ddp" / "run" / "generator.safetensors").is_file()


def test_two_processes_resume_from_the_same_checkpoint(recipe, tmp_path):
    run_dir = tmp_path / "ddp" / "run"
    _run_two_processes(recipe, run_dir, ["train.iterations=2"])
    _run_two_processes(recipe, run_dir, [], resume="auto")
    single = _single_process(recipe, tmp_path / "single", [])

    resumed0 = torch.load(tmp_path / "ddp" / f"rank0_iter{ITERATIONS}.pt")
    resumed1 = torch.load(tmp_path / "ddp" / f"rank1_iter{ITERATIONS}.pt")
    _assert_same(resumed0["params"], resumed1["params"], rtol=0, atol=0)
    _assert_same(resumed0["params"], single["params"], rtol=1e-4, atol=1e-6)


def test_gan_ranks_keep_identical_generator_and_discriminator(recipe, tmp_path):
    # SRResNet and the SRGAN discriminator have BatchNorm, which on CPU normalises by each rank's share:
    # the weights must still agree (gradients are averaged); the running statistics are rank 0's at each
    # forward pass and each rank's own after it, so they are left out
    gan = ["generator.arch=srresnet", "generator.kwargs={num_features: 8, num_blocks: 1}",
           "discriminator={arch: srgan_discriminator, kwargs: {input_size: 16, num_features: 4}}",
           "losses.adversarial={kind: ragan, weight: 0.01}", "train.pixel_warmup_iterations=1"]
    _run_two_processes(recipe, tmp_path / "ddp" / "run", gan)

    rank0 = torch.load(tmp_path / "ddp" / f"rank0_iter{ITERATIONS}.pt")
    rank1 = torch.load(tmp_path / "ddp" / f"rank1_iter{ITERATIONS}.pt")
    for key in ("params", "params_ema", "params_d"):
        weights0, weights1 = ({name: value for name, value in rank[key].items() if not _is_bn_statistic(name)}
                              for rank in (rank0, rank1))
        assert len(weights0) < len(rank0[key])  # the network does have BatchNorm
        _assert_same(weights0, weights1, rtol=0, atol=0)


def _is_bn_statistic(name: str) -> bool:
    return name.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked")


def test_batch_size_is_global_and_must_split_evenly():
    place = ProcessPlace(rank=1, local_rank=1, world_size=2, device=torch.device("cpu"))
    assert per_process_batch(8, place) == 4
    with pytest.raises(SrganError, match="data.batch_size.*3 processes"):
        per_process_batch(8, ProcessPlace(0, 0, 3, torch.device("cpu")))
    batch = (torch.arange(8).view(8, 1), torch.arange(8, 16).view(8, 1))
    lr, hr = own_rows(batch, place)
    assert lr.flatten().tolist() == [4, 5, 6, 7] and hr.flatten().tolist() == [12, 13, 14, 15]
    with pytest.raises(SrganError, match="data.batch_size"):
        own_rows(batch, ProcessPlace(0, 0, 3, torch.device("cpu")))
