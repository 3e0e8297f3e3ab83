"""Atomic file writes: write a temporary file beside the target, flush it to disk, os.replace it.

A process killed at any moment leaves either the old file or the new one, never half of one
(checkpoints, latent shards, sample shards, the assembled .npz). Leftover temporaries end in
'.tmp<pid>' and are ignored by every reader.
"""

import json
import os

import torch


def atomic_write(path, write):
    """write(tmp_path) writes the content; then it becomes `path` in one step."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_text(path, text):
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    atomic_write(path, write)


def atomic_json(path, data):
    """JSON results (evaluations, profiled points): a reader never sees half a file."""
    atomic_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def atomic_torch_save(obj, path):
    atomic_write(path, lambda tmp: torch.save(obj, tmp))
