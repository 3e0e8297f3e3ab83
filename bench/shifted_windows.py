"""Which shifted-window formulation? (issue 14) Forward + backward time of Swin-masked shifted-window
attention on window-major tokens, three ways, alternated pairs on the CPU:

    regions  ours (ptdit/window_attention.py): one gather into region groups, one unmasked fused
             SDPA call per group size, one gather back; no mask
    bias     the grid-order code's way: one gather into rolled windows and ONE SDPA call with a cached
             (B*windows, 1, T, T) float bias (0 / -inf)
    flex     torch.nn.attention.flex_attention over the rolled-window order with a block mask
             (same window and same region), eager; forward only: FlexAttention has no backward on
             the CPU (torch 2.14: "FlexAttention does not support backward on CPU")

Window = grid / 8 per side (64 windows, pt-dit.md), batch 2, fp32; time per call relative to regions,
forward + backward and forward only. On CUDA FlexAttention runs compiled, forward and backward
(bench/gpu_speed.py calls compare() at the S/256 training shape, bf16).

    PYTHONPATH=. python bench/shifted_windows.py [--width 64 --heads 2] [--sizes 32 64] [--threads 1] [--device cuda] [--bf16]
"""

import argparse
import functools
import os
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

from ptdit.layers import merge_heads
from ptdit.window_attention import ShiftedWindowAttention, partition, permute_rows, shifted_regions, window_order

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpu_ratio import alternate  # noqa: E402


def rolled_windows(grid, window):
    """(order of window-major positions in rolled-window order, group id per rolled position)."""
    n = grid[0] * grid[1] * grid[2]
    shifts = tuple(-(w // 2) for w in window)
    rolled = torch.roll(torch.arange(n).view(*grid), shifts, dims=(0, 1, 2)).view(1, n, 1)
    grid_index = partition(rolled, grid, window).flatten()          # grid token at each rolled position
    group = torch.empty(n, dtype=torch.long)
    start = 0
    for size, members in shifted_regions(grid, window):
        for g in members:
            group[g] = start
            start += 1
    position = torch.argsort(window_order(grid, window))
    return position[grid_index], group[grid_index]


@functools.cache
def compiled_flex_attention():
    """FlexAttention's fused kernel (eager, it materialises the scores matrix)."""
    return torch.compile(flex_attention)


class Formulations:
    def __init__(self, module, batch, device, flex=flex_attention):
        self.m, self.b, self.flex = module, batch, flex
        grid, window = module.grid, module.window
        self.t = window[0] * window[1] * window[2]
        order, group = rolled_windows(grid, window)
        n = order.numel()
        flat = (torch.arange(batch).view(-1, 1) * n + order).flatten()
        self.order, self.inverse = flat.to(device), torch.argsort(flat).to(device)
        g = group.view(-1, self.t)
        mask = (g[:, :, None] == g[:, None, :]).unsqueeze(1).repeat(batch, 1, 1, 1)
        self.bias = torch.zeros(mask.shape).masked_fill_(~mask, float("-inf")).to(device)
        same = ((torch.arange(n) // self.t).to(device), group.to(device))

        def mask_mod(b, h, q, kv):
            return (same[0][q] == same[0][kv]) & (same[1][q] == same[1][kv])
        self.block_mask = create_block_mask(mask_mod, None, None, n, n, device=device)

    def qkv(self, x):
        b, n, c = x.shape
        rows = permute_rows(x.reshape(b * n, c), self.order, self.inverse)
        return rows, self.m.qkv(rows)

    def bias_attention(self, x):
        b, n, c = x.shape
        _, qkv = self.qkv(x)
        q, k, v = (t.transpose(1, 2) for t in qkv.view(-1, self.t, 3, self.m.num_heads, c // self.m.num_heads).unbind(2))
        out = self.m.proj(merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=self.bias)).reshape(b * n, c))
        return permute_rows(out, self.inverse, self.order).view(b, n, c)

    def flex_attention(self, x):
        b, n, c = x.shape
        _, qkv = self.qkv(x)
        q, k, v = (t.transpose(1, 2) for t in qkv.view(b, n, 3, self.m.num_heads, c // self.m.num_heads).unbind(2))
        out = self.m.proj(merge_heads(self.flex(q, k, v, block_mask=self.block_mask)).reshape(b * n, c))
        return permute_rows(out, self.inverse, self.order).view(b, n, c)


def compare(width, heads, batch, size, device="cpu", dtype=torch.float32, repeats=7):
    """Time of the three formulations at latent size `size` (windows grid / 8 per side), relative to
    regions: fwd + bwd and forward only. FlexAttention runs compiled on CUDA (its fused kernel; eager
    it materialises the scores) and, with no CPU backward, only forward on the CPU."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    grid, window = (1, size // 2, size // 2), (1, max(1, size // 16), max(1, size // 16))
    module = ShiftedWindowAttention(width, heads, grid, window).to(device)
    ways = Formulations(module, batch, device, compiled_flex_attention() if device == "cuda" else flex_attention)
    x = torch.randn(batch, grid[1] * grid[2], width, device=device, requires_grad=True)
    fns = [module, ways.bias_attention, ways.flex_attention]
    autocast = torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32)
    with torch.no_grad(), autocast:
        diff = max((fn(x).float() - module(x).float()).abs().max().item() for fn in fns[1:])

    def train_step(fn):
        with autocast:
            out = fn(x)
        out.float().sum().backward()
        sync()
    trained = fns if device == "cuda" else fns[:2]
    train = alternate([lambda fn=fn: train_step(fn) for fn in trained], repeats)

    def forward(fn):
        with torch.no_grad(), autocast:
            fn(x)
        sync()
    infer = alternate([lambda fn=fn: forward(fn) for fn in fns], repeats)
    ratio = lambda times, i: statistics.median(t / r for r, t in zip(times[0], times[i])) if i < len(times) else None  # noqa: E731
    return {"px": size * 8, "grid": grid[1:], "tokens_per_window": ways.t, "regions_train_s": statistics.median(train[0]),
            "bias_train": ratio(train, 1), "flex_train": ratio(train, 2), "regions_forward_s": statistics.median(infer[0]),
            "bias_forward": ratio(infer, 1), "flex_forward": ratio(infer, 2), "max_diff": diff}


HEADER = (f"{'px':>5s} {'grid':>10s} {'T':>4s} {'fwd+bwd regions s':>18s} {'bias/regions':>13s} {'flex/regions':>13s} "
          f"{'fwd regions s':>14s} {'bias/regions':>13s} {'flex/regions':>13s} {'max |diff|':>11s}")


def row(r):
    f = lambda v: "-" if v is None else f"{v:.2f}"      # noqa: E731
    return (f"{r['px']:5d} {str(r['grid']):>10s} {r['tokens_per_window']:4d} {r['regions_train_s']:18.4f} "
            f"{f(r['bias_train']):>13s} {f(r['flex_train']):>13s} {r['regions_forward_s']:14.4f} {f(r['bias_forward']):>13s} "
            f"{f(r['flex_forward']):>13s} {r['max_diff']:11.1e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64], help="latent sizes (32 = 256 px)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="under bf16 autocast (as training on a GPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    print(f"width {args.width}, {args.heads} heads, batch {args.batch}, {args.threads} thread(s), "
          f"{'bf16 autocast' if args.bf16 else 'fp32'}, {args.device}; time relative to regions")
    print(HEADER)
    for size in args.sizes:
        print(row(compare(args.width, args.heads, args.batch, size, args.device, dtype, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
