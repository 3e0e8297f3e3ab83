"""The authors' PT-DiT block beside ours (issue 14): time of one block forward + backward at equal
shapes, CPU now, GPU with --device cuda.

`ReleasedBlock` is written from reading ProxyTokensTransformerBlock.forward in the released
Ascend/MindSpeed-MM mindspeed_mm/models/predictor/dits/pt_dit_diffusers.py, keeping its data
movement as written: hidden states "(b p) n c"; adaLN-single chunks `.repeat(window_number)`-ed to
(p b) rows; the proxies a mean of a reshaped copy; the proxy-visual cross-attention rearranging to
"b (w n) c" and back; the shifted windows as rearrange, torch.roll, rearrange (and the inverse) with
the (windows, T, T) mask of get_shift_window_attention_mask (0 / -1.0, as written) expanded to
the batch; diffusers-style Attention (separate to_q / to_k / to_v without bias, to_out with bias);
the text cross-attention rearranging to "b (p n) c" and back; a GELU(tanh) FeedForward. It is
timed, not trained: the `.repeat` order defect (pt-dit.md) does not change the cost. Parameters are
random; compress ratio = proxy compress ratio (one proxy per window, as in our block).

`ours` is ptdit/pt_dit_text.py's PTDiTTextBlock (the released layout, window-major tokens).

    PYTHONPATH=. python bench/released_block.py [--device cuda] [--points S:256 S:512 B:256] [--repeats 5]
"""

import argparse
import os
import statistics
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from ptdit.pt_dit_text import PTDiTTextBlock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpu_ratio import alternate  # noqa: E402

WIDTHS = {"S": (384, 6), "B": (768, 12), "XL": (1152, 16)}
TEXT_TOKENS = 120


class DiffusersAttention(nn.Module):
    """diffusers Attention + AttnProcessor2_0 as PT-DiT builds it (bias=False for q/k/v)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x, context=None, mask=None):
        context = x if context is None else context
        b, _, c = x.shape
        split = lambda t: t.view(b, -1, self.heads, c // self.heads).transpose(1, 2)    # noqa: E731
        out = F.scaled_dot_product_attention(split(self.to_q(x)), split(self.to_k(context)), split(self.to_v(context)),
                                             attn_mask=mask)
        return self.to_out(out.transpose(1, 2).reshape(b, -1, c))


class ReleasedBlock(nn.Module):
    def __init__(self, dim, heads, grid, window):
        super().__init__()
        self.grid, self.window = grid, window
        ln = lambda: nn.LayerNorm(dim, eps=1e-6)        # noqa: E731
        self.proxy_norm1, self.norm1, self.proxy_cross_norm, self.norm2, self.norm_before = ln(), ln(), ln(), ln(), ln()
        self.shift_window_norm = ln()
        self.proxy_attn1, self.attn1, self.pvisual_attn2, self.attn2, self.attn3 = (DiffusersAttention(dim, heads) for _ in range(5))
        self.linear_2, self.linear_1_visual = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim))
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim ** 0.5)
        self.proxy_scale_shift_table = nn.Parameter(torch.randn(3, dim) / dim ** 0.5)
        self.register_buffer("sw_mask", self.shift_window_mask(), persistent=False)

    def shift_window_mask(self):
        """get_shift_window_attention_mask: region ids by slices, 0 within a region, -1.0 across."""
        (f, h, w), (cf, ch, cw) = self.grid, self.window
        ids = torch.zeros(f, h, w)
        slices = [(slice(0, -c), slice(-c, -(c // 2)), slice(-(c // 2), None)) for c in (cf, ch, cw)]
        count = 0
        for sf in slices[0]:
            for sh in slices[1]:
                for sw in slices[2]:
                    ids[sf, sh, sw] = count
                    count += 1
        ids = ids.view(f // cf, cf, h // ch, ch, w // cw, cw).permute(0, 2, 4, 1, 3, 5).reshape(-1, cf * ch * cw)
        diff = ids.unsqueeze(1) - ids.unsqueeze(2)
        return diff.masked_fill(diff != 0, -1.0)

    def to_grid(self, x):
        """window_shift's first rearranges: (b p) n c -> b (f x) (h y) (w z) c."""
        (f, h, w), (cf, ch, cw) = self.grid, self.window
        c = x.shape[-1]
        x = x.reshape(-1, f // cf, h // ch, w // cw, cf, ch, cw, c).permute(0, 1, 4, 2, 5, 3, 6, 7)
        return x.reshape(-1, f, h, w, c)

    def to_windows(self, x):
        """b (f x) (h y) (w z) c -> (b f h w) (x y z) c."""
        (f, h, w), (cf, ch, cw) = self.grid, self.window
        c = x.shape[-1]
        x = x.reshape(-1, f // cf, cf, h // ch, ch, w // cw, cw, c).permute(0, 1, 3, 5, 2, 4, 6, 7)
        return x.reshape(-1, cf * ch * cw, c)

    def forward(self, hidden, timestep, text):
        (f, h, w), (cf, ch, cw) = self.grid, self.window
        p = (f // cf) * (h // ch) * (w // cw)
        b, c = hidden.shape[0] // p, hidden.shape[-1]
        t6 = timestep.reshape(b, 6, -1)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
            self.scale_shift_table[None] + t6.repeat(p, 1, 1)).chunk(6, dim=1)
        shift_sw, scale_sw, gate_sw = (self.proxy_scale_shift_table[None] + t6[:, :3, :].repeat(p, 1, 1)).chunk(3, dim=1)
        # 1. proxies: get_proxy_token(mode="mean") with scale_ratio 1, then "(b p) n c -> b (p n) c"
        proxy = hidden.reshape(hidden.shape[0], cf, 1, ch, 1, cw, 1, c).reshape(hidden.shape[0], -1, 1, c).mean(1)
        proxy = proxy.reshape(b, p, c)
        proxy = self.proxy_attn1(self.proxy_norm1(proxy)) + proxy
        # 2. proxy-visual cross-attention
        a = self.norm_before(hidden.reshape(b, p * hidden.shape[1], c))
        out = self.pvisual_attn2(a, self.proxy_cross_norm(proxy)).reshape(b * p, -1, c)
        hidden = hidden + self.linear_1_visual(out)
        # 3. window attention
        norm = self.norm1(hidden) * (1 + scale_msa) + shift_msa
        hidden = gate_msa * self.attn1(norm) + hidden
        # 4. shifted windows: rearrange, roll, rearrange; attention with the mask; the inverse
        shifts = (cf // 2, ch // 2, cw // 2)
        rolled = self.to_windows(torch.roll(self.to_grid(hidden), tuple(-s for s in shifts), dims=(1, 2, 3)))
        norm = self.shift_window_norm(rolled) * (1 + scale_sw) + shift_sw
        mask = self.sw_mask.to(norm.dtype).repeat(b, 1, 1).unsqueeze(1)
        out = self.attn3(norm, mask=mask)
        out = self.to_windows(torch.roll(self.to_grid(out), shifts, dims=(1, 2, 3)))
        hidden = self.linear_2(gate_sw * out) + hidden
        # 5. text cross-attention on "b (p n) c"
        flat = hidden.reshape(b, -1, c)
        hidden = (self.attn2(flat, text) + flat).reshape(b * p, -1, c)
        # 6. MLP
        norm = self.norm2(hidden) * (1 + scale_mlp) + shift_mlp
        return gate_mlp * self.ff(norm) + hidden


def point(size, px, device, batch):
    dim, heads = WIDTHS[size]
    side = px // 16
    grid, window = (1, side, side), (1, side // 8, side // 8)
    n = side * side
    ours = PTDiTTextBlock(dim, heads, grid, window).to(device)
    theirs = ReleasedBlock(dim, heads, grid, window).to(device)
    x = torch.randn(batch, n, dim, device=device, requires_grad=True)
    t_mod = torch.randn(batch, 9 * dim, device=device)
    text = torch.randn(batch, TEXT_TOKENS, dim, device=device)
    hidden = x.detach().reshape(batch * 64, -1, dim).requires_grad_()

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def run_ours():
        ours(x, t_mod, text).sum().backward()
        sync()

    def run_theirs():
        theirs(hidden, t_mod[:, :6 * dim], text).sum().backward()
        sync()
    return run_ours, run_theirs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--points", nargs="+", default=["S:256", "S:512", "B:256"],
                        help="SIZE:PX; on a GPU e.g. S:256 S:512 S:1024 B:256 B:512 B:1024")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"device {args.device}, batch {args.batch}, fp32, one block forward + backward, alternated pairs")
    print(f"{'size':>4s} {'px':>5s} {'tokens':>7s} {'ours s':>9s} {'released s':>11s} {'released / ours':>16s}")
    for spec in args.points:
        size, px = spec.split(":")
        ours, theirs = point(size, int(px), args.device, args.batch)
        t_ours, t_theirs = alternate([ours, theirs], args.repeats)
        ratio = statistics.median(r / o for o, r in zip(t_ours, t_theirs))
        print(f"{size:>4s} {px:>5s} {(int(px) // 16) ** 2:7d} {statistics.median(t_ours):9.4f} "
              f"{statistics.median(t_theirs):11.4f} {ratio:16.2f}", flush=True)


if __name__ == "__main__":
    main()
