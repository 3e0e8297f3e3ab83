"""How launch-bound is eager PT-DiT? Aten ops (kernel launches) and CPU step time, against DiT.

On the H200 an eager bf16 training step of PT-DiT/B-Class at 512 px spends 125 ms of CPU time
issuing kernels for 44 ms of GPU work (docs/measurements/gpu_compile_check_NVIDIA-H200_2026-11-26.txt).
Without a GPU the same overhead shows in two proxies:

- ops: aten ops of one PT-DiT block forward + backward (and of a whole training forward + backward),
  counted below autograd with a TorchDispatchMode. "launches" leaves out views (view, transpose,
  t, ...), which cost dispatch time but no kernel; "all" counts them too.
- time: CPU wall time of one training step (forward, backward, AdamW) of a narrow model (hidden 64,
  2 heads, depth 12) at 512 px (64x64 latents), batch 2, one thread: the tensors are so small that
  dispatch overhead dominates, as it does on the GPU. The two models are timed alternately and the
  ratio is the median of per-pair ratios.

    PYTHONPATH=. python bench/pt_dit_launches.py [--repeats 7] [--bf16]
    # before/after: the same numbers for another checkout (e.g. `git archive <commit> | tar -x -C DIR`)
    PYTHONPATH=. python bench/pt_dit_launches.py --before DIR
"""

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ptdit.layers import modulate_by

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpu_ratio import alternate  # noqa: E402

MODELS = ("DiT-B/2", "PT-DiT/B-Class", "PT-DiT/B-Class-released")
SMALL = dict(hidden_size=64, num_heads=2, depth=12, input_size=64)    # 512 px latents


class OpCounter(TorchDispatchMode):
    """Counts every aten op that reaches the kernels (below autograd and autocast)."""

    def __init__(self):
        super().__init__()
        self.ops = collections.Counter()
        self.views = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func.overloadpacket.__name__] += 1
        self.views += bool(func.is_view)
        return func(*args, **(kwargs or {}))

    def summary(self):
        total = sum(self.ops.values())
        return {"all": total, "launches": total - self.views,
                "copies": sum(self.ops[k] for k in ("clone", "copy_", "_to_copy", "contiguous"))}


def build(name, seed=0):
    from ptdit import create_model
    torch.manual_seed(seed)
    model = create_model(name, **SMALL)
    with torch.no_grad():                  # trained-like weights: no zero gates or outputs
        for p in model.parameters():
            if p.requires_grad:
                p.normal_(0, 0.05)
    return model


def autocast(bf16):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)


def count(fn, model, bf16, warmup=2):
    """Ops of fn() after warm-up calls (caches built), with fresh gradients as in a training step."""
    with autocast(bf16):
        for _ in range(warmup):
            fn()
            model.zero_grad(set_to_none=True)
        with OpCounter() as counter:
            fn()
    model.zero_grad(set_to_none=True)
    return counter.summary()


def block_inputs(model):
    """Tokens (2, N, D) with gradients and a conditioning (2, D) for block 0 of `model`."""
    n = model.grid[0] * model.grid[1] * model.grid[2]
    d = model.config.hidden_size
    return torch.randn(2, n, d, requires_grad=True), torch.randn(2, d)


def block_ops(model, bf16=False):
    block = model.blocks[0]
    x, c = block_inputs(model)

    def step():
        block(x, c).sum().backward()
    return count(step, model, bf16)


def sublayer_ops(model, bf16=False):
    """Launches of each sub-layer of block 0, forward + backward, module alone (no LayerNorm, modulation,
    gate or residual), and of one such wrapper around nothing: the method's floor. A PT-DiT block
    has five wrapped sub-layers (GIIM's proxy self-attention and cross-attention, window attention,
    shifted windows, MLP) where DiT's has two (attention, MLP)."""
    block = model.blocks[0]
    x, _ = block_inputs(model)
    d = x.shape[-1]
    shift, factor, gate = torch.randn(2, d), torch.randn(2, d), torch.randn(2, d)

    def launches(module_call):
        def step():
            module_call().sum().backward()
        return count(step, model, bf16)["launches"]

    out = {"block": block_ops(model, bf16)["launches"]}
    for name in ("attn", "sw_attn", "mlp"):
        if getattr(block, name, None) is not None:
            out[name] = launches(lambda m=getattr(block, name): m(x))
    if getattr(block, "giim", None) is not None:       # GIIM with its own LNs, modulation and gates
        mod = tuple(torch.randn(2, d) for _ in range(6)) if block.compact else None
        out["giim (2 wrapped sub-layers)"] = launches(lambda: block.giim(x, mod))
    out["LN + modulate + gate + residual"] = launches(
        lambda: x + gate.unsqueeze(1) * modulate_by(torch.nn.functional.layer_norm(x, (d,)), shift, factor))
    return out


def training_inputs(model, batch=2):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *model.config.input_shape, generator=gen)
    t = torch.randint(0, 1000, (batch,), generator=gen).float()
    y = torch.randint(0, model.config.num_classes, (batch,), generator=gen)
    return x, t, y


def model_ops(model, bf16=False):
    x, t, y = training_inputs(model)

    def step():
        model(x, t, y).square().mean().backward()
    return count(step, model, bf16)


def step_times(models, repeats, bf16=False):
    """Seconds per training step (forward, backward, AdamW) of each model, timed in turn."""
    steps = []
    for model in models:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x, t, y = training_inputs(model)

        def step(model=model, opt=opt, x=x, t=t, y=y):
            with autocast(bf16):
                loss = model(x, t, y).float().square().mean()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        steps.append(step)
    for step in steps:          # a second warm-up call (alternate makes one): AdamW's state
        step()
    return alternate(steps, repeats)


def measure(repeats, bf16):
    torch.set_num_threads(1)
    models = {name: build(name) for name in MODELS}
    result = {name: {"block": block_ops(m, bf16), "model": model_ops(m, bf16)} for name, m in models.items()}
    times = step_times(list(models.values()), repeats, bf16)
    base = times[0]
    for name, t in zip(MODELS, times):
        result[name]["step_s"] = statistics.median(t)
        result[name]["step_ratio_to_dit"] = statistics.median(c / b for b, c in zip(base, t))
    return result


def table(result, title):
    lines = [title, f"{'model':26s}{'block launches':>15s}{'block all':>10s}{'step launches':>14s}"
             f"{'step all':>9s}{'step s':>8s}{'time / DiT':>11s}"]
    for name, r in result.items():
        lines.append(f"{name:26s}{r['block']['launches']:>15d}{r['block']['all']:>10d}{r['model']['launches']:>14d}"
                     f"{r['model']['all']:>9d}{r['step_s']:>8.3f}{r['step_ratio_to_dit']:>11.2f}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--bf16", action="store_true", help="count and time under CPU bf16 autocast")
    parser.add_argument("--input-size", type=int, default=SMALL["input_size"],
                        help="latent size (64 = 512 px); 32 makes the step even more dispatch-bound")
    parser.add_argument("--sublayers", action="store_true",
                        help="only count launches per sub-layer of block 0 (no timing)")
    parser.add_argument("--before", help="a checkout of the code before the change: measured too, in a subprocess")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)   # subprocess protocol
    args = parser.parse_args()
    SMALL["input_size"] = args.input_size
    if args.json:
        print(json.dumps(measure(args.repeats, args.bf16)))
        return
    if args.sublayers:
        torch.set_num_threads(1)
        for name in MODELS:
            parts = sublayer_ops(build(name), args.bf16)
            print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in parts.items()))
        return
    from evaluation.efficiency.profile import cpu_capability, device_name
    mode = f"{'bf16 autocast' if args.bf16 else 'fp32'}, input_size {args.input_size}, CPU {device_name('cpu')} ({cpu_capability()})"
    if args.before:
        root = os.path.abspath(args.before)
        if not os.path.isdir(os.path.join(root, "ptdit")):
            raise SystemExit(f"--before {args.before}: no ptdit/ package there; extract a checkout, "
                             f"e.g. `git archive HEAD~1 | tar -x -C {args.before}`")
        cmd = [sys.executable, os.path.abspath(__file__), "--json", "--repeats", str(args.repeats),
               "--input-size", str(args.input_size)]
        cmd += ["--bf16"] if args.bf16 else []
        env = dict(os.environ, PYTHONPATH=root)
        before = json.loads(subprocess.run(cmd, env=env, cwd=root, check=True, capture_output=True,
                                           text=True).stdout.splitlines()[-1])
        print(table(before, f"before ({root}), {mode}"))
    print(table(measure(args.repeats, args.bf16), f"now, {mode}"))


if __name__ == "__main__":
    main()
