"""PixArt-alpha-style text-to-image DiT (Chen et al. 2023; PixArt.py PixArtBlock), the full-attention
baseline of PT-DiT's Fig. 2: per block

    x += gate_msa * SelfAttn(modulate(LN(x), shift_msa, scale_msa))       full attention
    x += CrossAttn(q = x, kv = text)                                      no norm, no gate
    x += gate_mlp * MLP(modulate(LN(x), shift_mlp, scale_mlp))

with adaLN-single modulation (ptdit/text_backbone.py). PixArt-alpha-0.6B: 28 x 1152, 16 heads, patch 2.
"""

import torch
import torch.nn as nn

from ptdit.layers import Attention, CrossAttention, Mlp, layer_norm, modulate
from ptdit.text_backbone import TextDiffusionTransformer


class PixArtBlock(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = layer_norm(dim)
        self.attn = Attention(dim, num_heads)
        self.cross_attn = CrossAttention(dim, num_heads)
        self.norm2 = layer_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim ** 0.5)

    def forward(self, x, t_mod, text, text_mask=None):
        chunks = (self.scale_shift_table[None] + t_mod.view(x.shape[0], 6, -1)).unbind(1)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = chunks
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + self.cross_attn(x, text, attn_mask=text_mask)     # text_mask: T5 padding, as PixArt
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class PixArt(TextDiffusionTransformer):
    modulation_chunks = 6

    def make_block(self, index):
        cfg = self.config
        return PixArtBlock(cfg.hidden_size, cfg.num_heads, cfg.mlp_ratio)
