"""DiT (Peebles & Xie, 2023), state-dict compatible with facebookresearch/DiT models.py.

The official DiT-XL-2-256x256.pt (a raw state dict) and train.py checkpoints ({model, ema, opt,
args}) load with strict=True: the key names below are the official ones. Parameter counts equal the
official ones (tests/test_dit.py); forward and forward_with_cfg compute what models.py computes.
"""

import torch.nn as nn

from ptdit.backbone import DiffusionTransformer
from ptdit.layers import Attention, Mlp, adaln_modulation, layer_norm, modulate


class DiTBlock(nn.Module):
    """adaLN-Zero block: x += gate * Attn(modulate(LN(x))); x += gate * MLP(modulate(LN(x))).

    `attention` is the token mixer; DiT uses full self-attention, the DAM and agent-attention
    baselines swap in their own module with the same qkv/proj keys.
    """

    def __init__(self, hidden_size, num_heads, mlp_ratio=4.0, attention=None):
        super().__init__()
        self.norm1 = layer_norm(hidden_size)
        self.attn = attention if attention is not None else Attention(hidden_size, num_heads, qkv_bias=True)
        self.norm2 = layer_norm(hidden_size)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))
        self.adaLN_modulation = adaln_modulation(hidden_size, 6)

    def zero_init(self):
        nn.init.zeros_(self.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.adaLN_modulation[-1].bias)

    def forward(self, x, c):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class DiT(DiffusionTransformer):
    def make_attention(self, index):
        """Full multi-head self-attention; subclasses (DAM, agent attention) override this."""
        return None

    def make_block(self, index):
        cfg = self.config
        return DiTBlock(cfg.hidden_size, cfg.num_heads, cfg.mlp_ratio, self.make_attention(index))


