"""Token merging for a trained DiT at inference (ToMe for SD, Bolya & Hoffman 2023), written here from
the paper (Sec. 3-4): training-free, same weights, same state-dict keys as DiT.

In every block, before attention and before the MLP, r = ratio * N of the N tokens are merged into
others by bipartite soft matching; the sub-layer runs on N - r tokens; its output is unmerged (each
merged token's output copied back to every token it absorbed) before the residual add:

    x = x + gate_msa * unmerge(Attn(merge(modulate(LN(x)))))
    x = x + gate_mlp * unmerge(MLP(merge(modulate(LN(x)))))

Matching (ToMeSD Sec. 4.1, "random 2D" partition): the token grid is cut into 2x2 cells; one token of
each cell, drawn at random, is a destination (set B), the other three are sources (set A). Every source
is paired with its most similar destination (cosine similarity of the block's input tokens); the r
sources with the most similar pairs are averaged into their destinations (scatter_reduce "mean"), the
rest stay. As in ToMeSD (tomesd/patch.py), the match is computed once per block from the block's input
and applied to the normed input of each merged sub-layer; the residual stream keeps all N tokens.

The random draw comes from a generator seeded with tome_seed at each forward call: one partition per
(block, call), the same for every sample, resume or shard, so sampling stays reproducible.

ratio = 0 runs DiT's block unchanged (the same operations, bit for bit).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from baselines.dit import DiT, DiTBlock
from ptdit.config import TransformerConfig
from ptdit.layers import modulate


@dataclass(frozen=True)
class ToMeConfig(TransformerConfig):
    """DiT's fields plus the merging: ratio of tokens merged per sub-layer, seed, and whether the MLP
    is merged too (ToMeSD merges self-attention by default; the issue asks for attention and MLP)."""

    tome_ratio: float = 0.5
    tome_seed: int = 0
    tome_mlp: bool = True

    def __post_init__(self):
        super().__post_init__()
        # 3/4 of the tokens are sources: no more than those can be merged.
        if not 0.0 <= self.tome_ratio <= 0.75:
            raise ValueError(f"tome_ratio {self.tome_ratio} is outside [0, 0.75]: with one destination per 2x2 "
                             f"cell, at most 3/4 of the tokens can be merged")
        if self.video:
            raise ValueError("ToMe-DiT is an image model (2x2 cells on one (h, w) grid); use video=False")


def destination_mask(h, w, generator, device):
    """(h*w,) bool, True for the one random destination of each 2x2 cell (cells cut by an odd edge
    have none there: their tokens are all sources, as ToMeSD pads)."""
    hc, wc = h // 2, w // 2
    pick = torch.randint(0, 4, (hc, wc), generator=generator, device=generator.device).to(device)
    cells = F.one_hot(pick, 4).bool().view(hc, wc, 2, 2).permute(0, 2, 1, 3).reshape(2 * hc, 2 * wc)
    mask = torch.zeros(h, w, dtype=torch.bool, device=device)
    mask[:2 * hc, :2 * wc] = cells
    return mask.flatten()


@dataclass
class Merge:
    """One bipartite match: indices into the N tokens, shared by the batch's scores per sample."""

    src_idx: torch.Tensor     # (N_a,) token index of each source
    dst_idx: torch.Tensor     # (N_b,) token index of each destination
    unm: torch.Tensor         # (B, N_a - r) which sources stay (positions in the source set)
    merged: torch.Tensor      # (B, r) which sources are merged
    target: torch.Tensor      # (B, r) the destination (position in the destination set) of each merged source

    def merge(self, x):
        """(B, N, C) -> (B, N - r, C): the unmerged sources, then the destinations averaged with theirs."""
        c = x.shape[-1]
        src, dst = x[:, self.src_idx], x[:, self.dst_idx]
        kept = src.gather(1, self.unm.unsqueeze(-1).expand(-1, -1, c))
        moved = src.gather(1, self.merged.unsqueeze(-1).expand(-1, -1, c))
        dst = dst.scatter_reduce(1, self.target.unsqueeze(-1).expand(-1, -1, c), moved, reduce="mean")
        return torch.cat([kept, dst], dim=1)

    def unmerge(self, y):
        """(B, N - r, C) -> (B, N, C): every token gets the output of the token it was merged into."""
        b, _, c = y.shape
        n_unm = self.unm.shape[1]
        kept, dst = y[:, :n_unm], y[:, n_unm:]
        moved = dst.gather(1, self.target.unsqueeze(-1).expand(-1, -1, c))
        out = y.new_empty(b, len(self.src_idx) + len(self.dst_idx), c)
        out[:, self.dst_idx] = dst
        src_of = self.src_idx.expand(b, -1)
        out.scatter_(1, src_of.gather(1, self.unm).unsqueeze(-1).expand(-1, -1, c), kept)
        out.scatter_(1, src_of.gather(1, self.merged).unsqueeze(-1).expand(-1, -1, c), moved)
        return out


def bipartite_match(x, grid, r, generator):
    """The Merge of r tokens of x (B, N, C) on an (h, w) grid; r is clipped to the number of sources."""
    h, w = grid
    if x.device.type == "meta":
        # Counting FLOPs: no random numbers and no nonzero() on the meta device; only the set sizes
        # matter (one destination per full 2x2 cell), and any partition costs the same.
        n_dst = (h // 2) * (w // 2)
        dst_idx = torch.empty(n_dst, dtype=torch.long, device=x.device)
        src_idx = torch.empty(h * w - n_dst, dtype=torch.long, device=x.device)
    else:
        is_dst = destination_mask(h, w, generator, x.device)
        dst_idx, src_idx = is_dst.nonzero().squeeze(1), (~is_dst).nonzero().squeeze(1)
    r = min(r, len(src_idx))
    metric = x / x.norm(dim=-1, keepdim=True)
    scores = metric[:, src_idx] @ metric[:, dst_idx].transpose(1, 2)        # (B, N_a, N_b) cosine
    best, best_dst = scores.max(dim=-1)
    order = best.argsort(dim=-1, descending=True)
    merged, unm = order[:, :r], order[:, r:]
    return Merge(src_idx, dst_idx, unm, merged, best_dst.gather(1, merged))


class ToMeDiTBlock(DiTBlock):
    """DiT's block (same parameters and keys) with merging around attention and MLP."""

    def __init__(self, hidden_size, num_heads, mlp_ratio, grid, ratio, merge_mlp):
        super().__init__(hidden_size, num_heads, mlp_ratio)
        self.grid, self.ratio, self.merge_mlp = grid, ratio, merge_mlp
        self.generator = None    # set by ToMeDiT.forward

    def forward(self, x, c):
        r = int(x.shape[1] * self.ratio)
        if r == 0:
            return super().forward(x, c)
        m = bipartite_match(x, self.grid, r, self.generator)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        attn_in = m.merge(modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + gate_msa.unsqueeze(1) * m.unmerge(self.attn(attn_in))
        mlp_in = modulate(self.norm2(x), shift_mlp, scale_mlp)
        if not self.merge_mlp:
            return x + gate_mlp.unsqueeze(1) * self.mlp(mlp_in)
        return x + gate_mlp.unsqueeze(1) * m.unmerge(self.mlp(m.merge(mlp_in)))


class ToMeDiT(DiT):
    """A DiT whose blocks merge tokens; loads any DiT checkpoint of the same shape (strict=True)."""

    config_class = ToMeConfig

    def make_block(self, index):
        cfg = self.config
        return ToMeDiTBlock(cfg.hidden_size, cfg.num_heads, cfg.mlp_ratio, self.grid[1:], cfg.tome_ratio, cfg.tome_mlp)

    def forward(self, x, t, y):
        generator = None
        if x.device.type != "meta":
            generator = torch.Generator(device=x.device).manual_seed(self.config.tome_seed)
        for block in self.blocks:
            block.generator = generator
        return super().forward(x, t, y)
