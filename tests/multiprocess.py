"""Run a function in N spawned CPU processes with the torchrun environment (gloo), for DDP tests."""

import os
import socket

import torch
import torch.multiprocessing as mp


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank, world_size, port, fn, args):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)  # same arithmetic in every process and in the 1-process reference
    fn(*args)


def run_processes(world_size, fn, *args):
    """fn(*args) in world_size processes, as torchrun would start them; raises if any fails."""
    mp.start_processes(_entry, args=(world_size, free_port(), fn, args), nprocs=world_size,
                       join=True, start_method="spawn")
