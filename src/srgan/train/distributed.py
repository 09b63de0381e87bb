"""Data-parallel training over several processes (one per GPU), launched by `torchrun`.

`torchrun --nproc_per_node=N -m srgan train CONFIG` starts N copies of `srgan train`; torchrun's
environment (`RANK`, `LOCAL_RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`) tells each one its
place. Every process builds the same networks, wraps the trained ones in DistributedDataParallel
(gradients are averaged across processes during backward) and trains on its own share of each batch.

`data.batch_size` is the *global* batch: each of N processes takes batch_size / N patches, so a
recipe means the same optimisation on any number of GPUs, the learning rate needs no rescaling, and
a run resumes on a different number of GPUs. The shares are disjoint and together are exactly the
batch a single process would draw: the worker loader's `ResumableSampler` hands process r every
N-th index from offset r, and the on-device sampler draws the whole batch on every process (all of
them hold the same generator state) and keeps its own rows.

Only rank 0 logs, validates, draws plots and writes checkpoints (`runtime.is_main_process`); the
others wait at a barrier meanwhile. On resume every process loads the same checkpoint.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from srgan.errors import SrganError
from srgan.train.runtime import seed_everything

logger = logging.getLogger("srgan.train")

_TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


@dataclass(frozen=True)
class ProcessPlace:
    """Where this process stands in the run: its ranks, how many processes there are, its device."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _torchrun_ranks() -> tuple[int, int, int]:
    values = {}
    for name in _TORCHRUN_VARIABLES:
        text = os.environ.get(name, "0" if name != "WORLD_SIZE" else "1")
        try:
            values[name] = int(text)
        except ValueError:
            raise SrganError(f"environment variable {name}={text!r} is not a number; launch with torchrun") from None
    return values["RANK"], values["LOCAL_RANK"], values["WORLD_SIZE"]


def join_process_group(device: torch.device) -> ProcessPlace:
    """Join torchrun's process group (NCCL on CUDA, gloo on CPU); a plain `srgan train` is rank 0 of 1.

    On CUDA each process takes the GPU of its local rank, so `train.device: auto` or `cuda` works
    unchanged under torchrun.
    """
    rank, local_rank, world_size = _torchrun_ranks()
    if world_size <= 1:
        return ProcessPlace(0, 0, 1, device)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise SrganError(
                f"LOCAL_RANK {local_rank} but this machine has {torch.cuda.device_count()} GPU(s); "
                "lower torchrun's --nproc_per_node"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise SrganError(f"multi-process training runs on CUDA or CPU, not {device.type}; set train.device")
    distributed = torch.distributed
    if not distributed.is_initialized():
        distributed.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return ProcessPlace(rank, local_rank, world_size, device)


def leave_process_group() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def per_process_batch(batch_size: int, place: ProcessPlace) -> int:
    """This process's share of the global `data.batch_size`."""
    if batch_size % place.world_size:
        raise SrganError(
            f"config key 'data.batch_size': {batch_size} does not split evenly over {place.world_size} processes; "
            "it is the global batch, so use a multiple of the process count"
        )
    return batch_size // place.world_size


def own_rows(batch: tuple[Tensor, ...], place: ProcessPlace) -> tuple[Tensor, ...]:
    """This process's slice of a global batch that every process drew identically."""
    share = per_process_batch(batch[0].shape[0], place)
    start = place.rank * share
    return tuple(tensor[start : start + share] for tensor in batch)


def seed_process(seed: int, place: ProcessPlace, iteration: int, *, deterministic: bool) -> None:
    """Give each process other than rank 0 its own global random streams.

    Rank 0 keeps the run's own streams (the ones its checkpoints save), so a single-process run and
    rank 0 of a distributed one resume exactly; the others derive theirs from (seed, rank, iteration),
    which a resumed run re-derives identically. Model initialisation does not depend on this: DDP
    copies rank 0's weights to every process.
    """
    if place.rank == 0:
        return
    derived = int(np.random.SeedSequence([seed, place.rank, iteration]).generate_state(1)[0])
    seed_everything(derived, deterministic=deterministic)


class _ReplicatedNetwork(DistributedDataParallel):
    """DDP that keeps the wrapped network's state-dict keys and steps aside when it has nothing to sync.

    Checkpoints therefore read the same with or without DDP (no `module.` prefix). A forward pass
    without autograd (validation, which runs on rank 0 alone) or through a frozen network (the
    discriminator during the generator's update, which receives no gradients) bypasses DDP, whose
    reducer would otherwise wait for gradients that never come.
    """

    def forward(self, *inputs, **kwargs):
        if not torch.is_grad_enabled() or not any(p.requires_grad for p in self.module.parameters()):
            return self.module(*inputs, **kwargs)
        return super().forward(*inputs, **kwargs)

    def state_dict(self, *args, **kwargs):
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.module.load_state_dict(state_dict, strict=strict, assign=assign)


def _has_batch_norm(network: nn.Module) -> bool:
    return any(isinstance(layer, nn.modules.batchnorm._BatchNorm) for layer in network.modules())


def replicate(module: nn.Module, place: ProcessPlace) -> None:
    """Wrap `module.generator` and `module.discriminator` in DDP, in place, on a multi-process run.

    BatchNorm becomes SyncBatchNorm on CUDA, so statistics are those of the global batch as in a
    single-process run. PyTorch's SyncBatchNorm has no CPU kernel, so on CPU each process normalises
    by its own share and rank 0's running statistics are copied to the others at each forward pass.
    The EMA copy (made before DDP copied rank 0's weights) is copied from rank 0 as well.
    """
    if not place.distributed:
        return
    on_cuda = place.device.type == "cuda"
    for name in ("generator", "discriminator"):
        network = getattr(module, name)
        if network is None:
            continue
        if _has_batch_norm(network):
            if on_cuda:
                network = nn.SyncBatchNorm.convert_sync_batchnorm(network)
            else:
                if place.rank == 0:
                    logger.warning("%s has BatchNorm; on CPU each process normalises by its own share of the batch", name)
        replicated = _ReplicatedNetwork(
            network,
            device_ids=[place.device] if on_cuda else None,
            # synchronised BN already keeps running statistics equal on every process
            forward_sync_buffers=not on_cuda,
        )
        setattr(module, name, replicated)
    ema = getattr(module, "ema", None)
    if ema is not None:
        for tensor in [*ema.module.parameters(), *ema.module.buffers()]:
            torch.distributed.broadcast(tensor.data, src=0)


def any_process(flag: bool, place: ProcessPlace) -> bool:
    """True on every process when `flag` is true on at least one (so all of them stop together)."""
    if not place.distributed:
        return flag
    value = torch.tensor([int(flag)], device=place.device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item())


def wait_for_main(place: ProcessPlace) -> None:
    """Hold the other processes while rank 0 validates or writes a checkpoint."""
    if place.distributed:
        torch.distributed.barrier()
