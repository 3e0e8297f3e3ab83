"""Loading official and suite checkpoints safely.

Checkpoints from elsewhere are untrusted: torch.load(weights_only=True) only. DiT's and SiT's
train.py save {"model", "ema", "opt", "args"} with args an argparse.Namespace, which we allow
explicitly; the released DiT/SiT .pt files are raw state dicts. EMA weights are preferred, as the
official sample.py does.
"""

import argparse
import os

import torch


def read_state_dict(path, prefer="ema"):
    """A model state dict from a raw state dict or a {model, ema, ...} training checkpoint."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint '{path}' does not exist; pass the path of a .pt file "
                                f"(official DiT/SiT/DAM release or a `ptdit train` checkpoint)")
    with torch.serialization.safe_globals([argparse.Namespace]):
        obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict):
        raise ValueError(f"checkpoint '{path}' holds a {type(obj).__name__}, expected a state dict")
    for key in (prefer, "ema", "model", "state_dict"):
        if isinstance(obj.get(key), dict):
            return obj[key]
    return obj


def load_weights(model, path, prefer="ema"):
    """Load a checkpoint with strict key matching; a mismatch names the keys and the file."""
    state = read_state_dict(path, prefer)
    expected = set(model.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        show = lambda keys: ", ".join(keys[:8]) + (f" ... ({len(keys)} in all)" if len(keys) > 8 else "")  # noqa: E731
        raise KeyError(f"checkpoint '{path}' does not fit {type(model).__name__} "
                       f"({getattr(model, 'config', '')}): missing keys [{show(missing)}], unexpected keys "
                       f"[{show(unexpected)}]; check the model name and overrides (patch size, depth, "
                       f"num_classes, learn_sigma) against the checkpoint")
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
              for k, v in model.state_dict().items() if tuple(state[k].shape) != tuple(v.shape)]
    if shapes:
        raise ValueError(f"checkpoint '{path}' has tensors of other shapes: {'; '.join(shapes[:5])}; "
                         f"check input_size / patch_size / hidden_size")
    model.load_state_dict(state, strict=True)
    return model
