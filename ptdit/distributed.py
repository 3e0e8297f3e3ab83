"""One process or torchrun DDP, without a framework (karpathy/nanoGPT train.py style).

torchrun (or a test that sets RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT itself) starts one
process per device; each calls setup(). Backend: NCCL on GPUs, gloo on the CPU.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Context:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool  # we initialised the process group, so we tear it down

    @property
    def is_main(self):
        return self.rank == 0


def pick_device(device, local_rank):
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device(device)


def setup(device="auto"):
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")))
    dev = pick_device(device, local_rank)
    owns = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        owns = True
    rank = dist.get_rank() if dist.is_initialized() else 0
    world_size = dist.get_world_size() if dist.is_initialized() else 1
    return Context(rank, world_size, local_rank, dev, owns)


def barrier(ctx):
    if ctx.world_size > 1:
        dist.barrier()


def mean_over_ranks(values, ctx):
    """Mean of a list of floats over all processes (for the log)."""
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    if ctx.world_size > 1:
        dist.all_reduce(t)
        t /= ctx.world_size
    return t.tolist()


def gather_objects(obj, ctx):
    """[obj of rank 0, obj of rank 1, ...] on every process."""
    if ctx.world_size == 1:
        return [obj]
    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def teardown(ctx):
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()
