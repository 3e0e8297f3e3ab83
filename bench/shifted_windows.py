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
forward + backward and forward only.

    PYTHONPATH=. python bench/shifted_windows.py [--width 64 --heads 2] [--sizes 32 64] [--threads 1] [--device cuda]
"""

import argparse
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


class Formulations:
    def __init__(self, module, batch, device):
        self.m, self.b = module, batch
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
        out = self.m.proj(merge_heads(flex_attention(q, k, v, block_mask=self.block_mask)).reshape(b * n, c))
        return permute_rows(out, self.inverse, self.order).view(b, n, c)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64], help="latent sizes (32 = 256 px)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    torch.manual_seed(0)
    print(f"width {args.width}, {args.heads} heads, batch {args.batch}, {args.threads} thread(s), fp32, fwd+bwd")
    print(f"{'px':>5s} {'grid':>10s} {'T':>4s} {'fwd+bwd regions s':>18s} {'bias/regions':>13s} "
          f"{'fwd regions s':>14s} {'bias/regions':>13s} {'flex/regions':>13s} {'max |diff|':>11s}")
    for size in args.sizes:
        grid, window = (1, size // 2, size // 2), (1, size // 16, size // 16)
        module = ShiftedWindowAttention(args.width, args.heads, grid, window).to(args.device)
        ways = Formulations(module, args.batch, args.device)
        x = torch.randn(args.batch, grid[1] * grid[2], args.width, device=args.device, requires_grad=True)
        fns = [module, ways.bias_attention, ways.flex_attention]
        with torch.no_grad():
            diff = max((fn(x) - module(x)).abs().max().item() for fn in fns[1:])
        def train_step(fn):
            fn(x).sum().backward()
            sync()
        train = alternate([lambda fn=fn: train_step(fn) for fn in fns[:2]], args.repeats)

        def forward(fn):
            with torch.no_grad():
                fn(x)
            sync()
        infer = alternate([lambda fn=fn: forward(fn) for fn in fns], args.repeats)
        ratio = lambda times, i: statistics.median(t / r for r, t in zip(times[0], times[i]))   # noqa: E731
        print(f"{size * 8:5d} {str(grid[1:]):>10s} {ways.t:4d} {statistics.median(train[0]):18.4f} {ratio(train, 1):13.2f} "
              f"{statistics.median(infer[0]):14.4f} {ratio(infer, 1):13.2f} {ratio(infer, 2):13.2f} {diff:11.1e}", flush=True)


if __name__ == "__main__":
    main()
