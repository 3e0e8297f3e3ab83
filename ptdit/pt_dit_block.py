"""The PT-DiT block, in the order of the released code (pt-dit.md, "Block order"), with DiT's
per-block adaLN for class conditioning (the rebuttal's class models: "AdaLN instead of AdaLN-single").

layout="released" keeps every layer of pt_dit_diffusers.py:
    x = x + Linear_zero(CrossAttn(q = LN(x), kv = LN(proxies + SelfAttn(LN(proxies)))))      GIIM
    x = x + gate_msa * WindowAttn(modulate(LN(x), shift_msa, scale_msa))                     TCM
    x = x + Linear_zero(gate_sw * ShiftedWindowAttn(modulate(LN(x), shift_sw, scale_sw)))    TCM
    x = x + gate_mlp * MLP(modulate(LN(x), shift_mlp, scale_mlp))
It costs ~20 D^2 multiply-adds per token and 35 D^2 params per block. No (depth, width) of it
reaches the rebuttal's class-model params and GFLOPs together (bench/search_class_configs.py).

layout="compact" is our reconstruction of the published class models (~16 D^2 per token,
~38 D^2 params per block): every sub-layer is adaLN-modulated and gated as in DiT, the
cross-attention projects only the proxies (keys/values), and the shifted windows have no extra
output Linear. It drops the released block's four per-token Linears (cross-attention q and proj,
and the two zero-initialised Linears), the difference pt-dit.md infers from the published numbers.

Modulation is computed per sample and broadcast over the sample's (window-major, see
ptdit/window_attention.py) tokens, so samples with different timesteps in one batch never share
modulation (the released code's `.repeat` defect).
`modules` drops parts for the paper's Table 2a: no_giim, no_swa (no shifted windows), no_tcm (no
window and no shifted-window attention).
"""

import torch
import torch.nn as nn

from ptdit.layers import Mlp, adaln_modulation, layer_norm, modulate_by
from ptdit.proxy_tokens import GlobalInformationInteraction
from ptdit.window_attention import ShiftedWindowAttention, WindowAttention

MODULES = ("full", "no_giim", "no_swa", "no_tcm")
LAYOUTS = ("released", "compact")


class PTDiTBlock(nn.Module):
    def __init__(self, dim, num_heads, grid, window, mlp_ratio=4.0, proxy_mode="mean",
                 injection="cross_attention", modules="full", layout="released"):
        super().__init__()
        if modules not in MODULES:
            raise ValueError(f"unknown modules '{modules}'; choose one of {MODULES}")
        if layout not in LAYOUTS:
            raise ValueError(f"unknown block layout '{layout}'; choose one of {LAYOUTS}")
        self.compact = layout == "compact"
        self.giim = None if modules == "no_giim" else GlobalInformationInteraction(
            dim, num_heads, grid, window, proxy_mode, injection, layout)
        self.use_wa = modules != "no_tcm"
        self.use_sw = modules not in ("no_tcm", "no_swa")
        self.norm1 = layer_norm(dim)
        self.attn = WindowAttention(dim, num_heads, grid, window) if self.use_wa else None
        self.norm_sw = layer_norm(dim)
        self.sw_attn = ShiftedWindowAttention(dim, num_heads, grid, window) if self.use_sw else None
        self.sw_out = nn.Linear(dim, dim) if (self.use_sw and not self.compact) else None
        self.norm2 = layer_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        # shift/scale/gate for: window attn, MLP (DiT's 6), shifted windows; compact adds proxies
        # self-attention and the global injection.
        self.num_chunks = 15 if self.compact else 9
        self.adaLN_modulation = adaln_modulation(dim, self.num_chunks)
        # Chunks come as (shift, scale, gate) triples: True at every scale entry, so that one add
        # forms all the 1 + scale factors. Bool keeps the sum in the adaLN output's dtype (bf16 under
        # autocast, rounded exactly as `1 + scale` is).
        is_scale = (torch.arange(self.num_chunks) % 3 == 1).repeat_interleave(dim)
        self.register_buffer("scale_offset", is_scale, persistent=False)

    def zero_init(self):
        zero = [self.adaLN_modulation[-1]] + ([self.sw_out] if self.sw_out is not None else [])
        for layer in zero:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        if self.giim is not None:
            self.giim.zero_init()

    def forward(self, x, c):
        chunks = (self.adaLN_modulation(c) + self.scale_offset).chunk(self.num_chunks, dim=1)
        shift_msa, factor_msa, gate_msa, shift_mlp, factor_mlp, gate_mlp, shift_sw, factor_sw, gate_sw = chunks[:9]
        if self.giim is not None:
            x = self.giim(x, chunks[9:] if self.compact else None)
        if self.use_wa:
            x = x + gate_msa.unsqueeze(1) * self.attn(modulate_by(self.norm1(x), shift_msa, factor_msa))
        if self.use_sw:
            out = gate_sw.unsqueeze(1) * self.sw_attn(modulate_by(self.norm_sw(x), shift_sw, factor_sw))
            x = x + (self.sw_out(out) if self.sw_out is not None else out)
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate_by(self.norm2(x), shift_mlp, factor_mlp))
