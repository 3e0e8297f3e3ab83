"""PT-DiT for text-to-image (the released model, pt_dit_diffusers.py): the released block
(ptdit/pt_dit_block.py, layout "released") with adaLN-single modulation and a text cross-attention
between TCM and the MLP (pt-dit.md, "Block order", step 6):

    x = GIIM(x)                                                        proxies, no modulation
    x += gate_msa * WindowAttn(modulate(LN(x), shift_msa, scale_msa))
    x += Linear_zero(gate_sw * ShiftedWindowAttn(modulate(LN(x), shift_sw, scale_sw)))
    x += CrossAttn(q = x, kv = text)                                   no norm, no gate (PixArt)
    x += gate_mlp * MLP(modulate(LN(x), shift_mlp, scale_mlp))

Video (video=True): the same block on (f, h, w) latents with (pf, ph, pw) = (4, h/8, w/8) windows,
3-D shifted windows and one proxy per 3-D window (ptdit/pt_dit.py default_compression_ratio), the
text-conditional video model of the paper (Qihoo-T2V), registered as PT-DiT/<size>-T2V.

Modulation: the shared t_block gives 9 chunks (DiT's 6 + the shifted windows' 3), each block adds
its own learned (9, D) table, as PixArt's adaLN-single does with 6.
"""

from dataclasses import dataclass

import torch
import torch.nn as nn

from ptdit.layers import CrossAttention, modulate
from ptdit.pt_dit import WindowedConfig, WindowMajorTokens
from ptdit.pt_dit_block import PTDiTBlock
from ptdit.text_backbone import TextDiffusionTransformer, TextTransformerConfig


@dataclass(frozen=True)
class PTDiTTextConfig(WindowedConfig, TextTransformerConfig):
    compression_ratio: tuple | None = None     # None: 64 windows (ptdit/pt_dit.py)


class PTDiTTextBlock(PTDiTBlock):
    def __init__(self, dim, num_heads, grid, window, mlp_ratio=4.0):
        super().__init__(dim, num_heads, grid, window, mlp_ratio, layout="released")
        del self.adaLN_modulation             # adaLN-single: the model's shared t_block replaces it
        self.scale_shift_table = nn.Parameter(torch.randn(9, dim) / dim ** 0.5)
        self.cross_attn = CrossAttention(dim, num_heads)

    def zero_init(self):
        nn.init.zeros_(self.sw_out.weight)
        nn.init.zeros_(self.sw_out.bias)
        self.giim.zero_init()

    def forward(self, x, t_mod, text, text_mask=None):
        chunks = (self.scale_shift_table[None] + t_mod.view(x.shape[0], 9, -1)).unbind(1)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp, shift_sw, scale_sw, gate_sw = chunks
        x = self.giim(x)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + self.sw_out(gate_sw.unsqueeze(1) * self.sw_attn(modulate(self.norm_sw(x), shift_sw, scale_sw)))
        x = x + self.cross_attn(x, text, attn_mask=text_mask)
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class PTDiTText(WindowMajorTokens, TextDiffusionTransformer):
    """Tokens window-major from the patch embedding to unpatchify, as PTDiT (ptdit/pt_dit.py)."""
    config_class = PTDiTTextConfig
    modulation_chunks = 9

    def __init__(self, config):
        super().__init__(config)
        self.setup_window_major()

    def make_block(self, index):
        cfg = self.config
        return PTDiTTextBlock(cfg.hidden_size, cfg.num_heads, cfg.grid, cfg.window, cfg.mlp_ratio)
