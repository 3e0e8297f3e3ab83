"""What does one block keep for its backward? Saved activations per block, by the op that saves them.

With fused attention (flash / memory-efficient SDPA) no attention keeps an N x N matrix, so above the
weights and optimizer state a training step's memory is what its blocks save for the backward, a
fixed number of (N x D) tensors per block. This counts them on the CPU for block 0 of each model,
batch 1, in units of one fp32 (N x D) tensor, under bf16 autocast (--bf16, the GPU recipe) or fp32:

- total: every tensor autograd packs, each storage once, parameters left out (they are memory with
  or without a backward; evaluation/efficiency/video.py's SavedTensors, which counts whole video
  models on the meta device for the efficiency table), and a weight's bf16 copy under autocast
  apart (it does not grow with the tokens: "weight copies");
- by op: the same storages attributed to the graph node that saved them (its `_saved_*` fields).

It predicts the GPU's eager training memory of video models above what they hold anyway (H200,
2026-11-26, XL at 256 px x 16 frames, batch 4: PT-DiT/XL-Video 44.2 GB, Full3D-XL/2-Video 25.4 GB,
1.74x) from the block alone.

    PYTHONPATH=. python bench/saved_activations.py Full3D-XL/2-Video PT-DiT/XL-Video --bf16 [--compile]
    PYTHONPATH=. python bench/saved_activations.py DiT-B/2 PT-DiT/B-Class --input-size 64
"""

import argparse
import collections

import torch

from evaluation.efficiency.video import SavedTensors
from ptdit import create_model


def block_and_inputs(name, overrides):
    torch.manual_seed(0)
    model = create_model(name, **{**overrides, "depth": 1})
    n = model.grid[0] * model.grid[1] * model.grid[2]
    d = model.config.hidden_size
    # c needs a gradient as in training (it comes from the timestep and label embedders)
    return model.blocks[0], torch.randn(1, n, d, requires_grad=True), torch.randn(1, d, requires_grad=True)


def saving_ops(out):
    """{storage pointer: "Node._saved_field"} for the tensors the graph behind `out` holds."""
    names, seen, stack = {}, set(), [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        for field in dir(node):
            if not field.startswith("_saved_"):
                continue
            try:
                value = getattr(node, field)
            except RuntimeError:          # a field freed or not a tensor
                continue
            for t in value if isinstance(value, (tuple, list)) else [value]:
                if isinstance(t, torch.Tensor) and t.numel():
                    names.setdefault(t.untyped_storage().data_ptr(), f"{node.name()}.{field}")
        stack.extend(f for f, _ in node.next_functions)
    return names


def is_weight_copy(t, block):
    """Autocast's lower-precision copy of one of the block's parameters (a Linear saves it transposed)."""
    if t.dtype == torch.float32:
        return False
    for p in block.parameters():
        p = p.detach()
        for view in (p, p.t()) if p.dim() == 2 else (p,):
            if view.shape == t.shape and torch.equal(view.to(t.dtype), t):
                return True
    return False


def block_saved(name, bf16=False, overrides=None, compile=False):
    """Saved bytes of block 0 of `name` (batch 1): {"unit": bytes of an fp32 (N x D) tensor,
    "activations": total, "weight_copies": total, "by_op": {op: bytes}}. compile: of
    torch.compile(block), whose partitioner recomputes cheap ops in the backward instead of saving
    their outputs (one compiled node then saves everything)."""
    block, x, c = block_and_inputs(name, overrides or {})
    run = torch.compile(block) if compile else block
    saved = SavedTensors(block)           # every packed storage once, parameters left out
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        if compile:
            run(x, c).sum().backward()          # compiles forward and backward
        with saved.hooks():
            out = run(x, c)
    ops = saving_ops(out)
    result = {"unit": x.numel() * 4, "activations": 0, "weight_copies": 0, "by_op": collections.Counter()}
    for t in saved.kept:
        size = t.untyped_storage().nbytes()
        if is_weight_copy(t, block):
            result["weight_copies"] += size
            continue
        result["activations"] += size
        op = ops.get(t.untyped_storage().data_ptr(), "custom Function")
        result["by_op"][f"{op} ({str(t.dtype).replace('torch.', '')})"] += size
    return result


def report(name, r, top=12):
    unit = r["unit"]
    lines = [f"{name}: {r['activations'] / unit:.2f} x fp32 (N x D) per block = {r['activations'] / 2**20:.1f} MiB "
             f"(+ weight copies {r['weight_copies'] / 2**20:.1f} MiB)"]
    for op, size in r["by_op"].most_common(top):
        lines.append(f"    {op:60s} {size / unit:6.2f}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--bf16", action="store_true", help="under CPU bf16 autocast (the GPU recipe)")
    parser.add_argument("--input-size", type=int, help="latent size (default: the model's, 32 = 256 px)")
    parser.add_argument("--num-frames", type=int, help="video models: latent frames (default 16)")
    parser.add_argument("--compile", action="store_true", help="also count torch.compile(block) (~10-20 s a block)")
    args = parser.parse_args()
    overrides = {k: v for k, v in (("input_size", args.input_size), ("num_frames", args.num_frames)) if v}
    for compile in (False, True) if args.compile else (False,):
        mode = ", compiled" if compile else ""
        results = {name + mode: block_saved(name, args.bf16, overrides, compile) for name in args.models}
        base_name, base = next(iter(results.items()))
        for name, r in results.items():
            print(report(name, r))
            print(f"    ratio to {base_name}: {r['activations'] / base['activations']:.2f}\n")


if __name__ == "__main__":
    main()
