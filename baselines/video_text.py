"""Text-conditional video baselines on PixArt-alpha's skeleton (ptdit/text_backbone.py with video=True),
the MSR-VTT counterparts of PT-DiT/<size>-T2V (ptdit/pt_dit_text.py):

Full3DText, 3-D full attention: PixArt's block over all f*h*w tokens (baselines/pixart.py), which also
    takes the caption key mask (PixArt-alpha masks T5 padding in its cross-attention).
FactorizedText, 2-D + 1-D: spatial attention, temporal attention (baselines/factorized_attention.py),
    then PixArt's text cross-attention and the MLP:

    x += gate_s * SpatialAttn(modulate(LN(x), shift_s, scale_s))
    x += gate_t * TemporalAttn(modulate(LN(x), shift_t, scale_t))
    x += CrossAttn(q = x, kv = text)                                      no norm, no gate (PixArt)
    x += gate_mlp * MLP(modulate(LN(x), shift_mlp, scale_mlp))

The cross-attention comes after all self-attention, as in PT-DiT's text block (pt-dit.md, step 6), so
the three T2V models differ only in their token mixing. (Open-Sora 1.0's STDiT puts it between the
spatial and the temporal attention; Latte's T2V adds the text to the timestep embedding instead.)
adaLN-single: the shared t_block gives 9 chunks (PixArt's 6 + the temporal sub-layer's 3), each block
adds its own learned (9, D) table; initialised as PixArt's blocks (not the identity at step 0).
"""

import torch
import torch.nn as nn

from baselines.factorized_attention import SpatialAttention, TemporalAttention
from baselines.factorized_dit import check_video
from baselines.pixart import PixArt
from ptdit.layers import CrossAttention, Mlp, layer_norm, modulate
from ptdit.text_backbone import TextDiffusionTransformer


class Full3DText(PixArt):
    def __init__(self, config):
        check_video(config, type(self).__name__)
        super().__init__(config)


class FactorizedTextBlock(nn.Module):
    def __init__(self, dim, num_heads, grid, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = layer_norm(dim)
        self.attn = SpatialAttention(dim, num_heads, grid)
        self.norm_t = layer_norm(dim)
        self.temporal_attn = TemporalAttention(dim, num_heads, grid)
        self.cross_attn = CrossAttention(dim, num_heads)
        self.norm2 = layer_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.scale_shift_table = nn.Parameter(torch.randn(9, dim) / dim ** 0.5)

    def forward(self, x, t_mod, text, text_mask=None):
        chunks = (self.scale_shift_table[None] + t_mod.view(x.shape[0], 9, -1)).unbind(1)
        shift_s, scale_s, gate_s, shift_mlp, scale_mlp, gate_mlp, shift_t, scale_t, gate_t = chunks
        x = x + gate_s.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_s, scale_s))
        x = x + gate_t.unsqueeze(1) * self.temporal_attn(modulate(self.norm_t(x), shift_t, scale_t))
        x = x + self.cross_attn(x, text, attn_mask=text_mask)
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class FactorizedText(TextDiffusionTransformer):
    modulation_chunks = 9

    def __init__(self, config):
        check_video(config, type(self).__name__)
        super().__init__(config)

    def make_block(self, index):
        cfg = self.config
        return FactorizedTextBlock(cfg.hidden_size, cfg.num_heads, cfg.grid, cfg.mlp_ratio)
