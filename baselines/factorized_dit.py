"""The 2-D + 1-D factorised video baseline, class-conditional: DiT's skeleton (ptdit/backbone.py) on
(f, h, w) video latents, with every block attending in space, then in time, then the MLP:

    x = x + gate_s * SpatialAttn(modulate(LN(x), shift_s, scale_s))      within each frame
    x = x + gate_t * TemporalAttn(modulate(LN(x), shift_t, scale_t))     across frames, per position
    x = x + gate_mlp * MLP(modulate(LN(x), shift_mlp, scale_mlp))

Published designs this follows: TimeSformer's divided space-time attention and Latte's variant 3
(both attentions in every block, spatial first; Latte's variant 1 alternates whole spatial and
temporal blocks instead). Our choices, made to keep the skeleton equal to the other two video models
(3-D full attention = DiT with video=True; PT-DiT with video=True): each attention is its own
residual sub-layer with its own adaLN shift/scale/gate, as PT-DiT adds its shifted-window sub-layer
(ptdit/pt_dit_block.py), and DiT's adaLN-Zero init zeroes all nine chunks, so every block starts as
the identity. The nine chunks are ordered as PT-DiT's (DiT's six, then the extra sub-layer's three).
"""

import torch.nn as nn

from baselines.factorized_attention import SpatialAttention, TemporalAttention
from ptdit.backbone import DiffusionTransformer
from ptdit.layers import Mlp, adaln_modulation, layer_norm, modulate


class FactorizedBlock(nn.Module):
    def __init__(self, dim, num_heads, grid, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = layer_norm(dim)
        self.attn = SpatialAttention(dim, num_heads, grid)
        self.norm_t = layer_norm(dim)
        self.temporal_attn = TemporalAttention(dim, num_heads, grid)
        self.norm2 = layer_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.adaLN_modulation = adaln_modulation(dim, 9)

    def zero_init(self):
        nn.init.zeros_(self.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.adaLN_modulation[-1].bias)

    def forward(self, x, c):
        chunks = self.adaLN_modulation(c).chunk(9, dim=1)
        shift_s, scale_s, gate_s, shift_mlp, scale_mlp, gate_mlp, shift_t, scale_t, gate_t = chunks
        x = x + gate_s.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_s, scale_s))
        x = x + gate_t.unsqueeze(1) * self.temporal_attn(modulate(self.norm_t(x), shift_t, scale_t))
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


def check_video(config, name):
    if not config.video:
        raise ValueError(f"{name} is a video model: build it with video=True and num_frames "
                         f"(e.g. create_model(..., video=True, num_frames=16))")


class FactorizedDiT(DiffusionTransformer):
    def __init__(self, config):
        check_video(config, type(self).__name__)
        super().__init__(config)

    def make_block(self, index):
        cfg = self.config
        return FactorizedBlock(cfg.hidden_size, cfg.num_heads, cfg.grid, cfg.mlp_ratio)
