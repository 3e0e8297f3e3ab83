"""Lumina-Next's Next-DiT (Zhuo et al. 2024), built to count its params and GFLOPs (PT-DiT Fig. 2 / 8
compares PT-DiT/H with "Lumina-Next-1.7B"), written here from the official
Alpha-VLLM/Lumina-T2X lumina_next_t2i/models/model.py. No checkpoint is loaded or tested against.

Per block (TransformerBlock there), with adaLN from t + pooled caption (a 1024-wide conditioning):

    h = Attn(modulate(RMSNorm(x)))                     sandwich norm: RMSNorm before ...
    x = x + RMSNorm(gate_msa * h)                      ... and after the sub-layer
    x = x + RMSNorm(gate_mlp * SwiGLU(modulate(RMSNorm(x))))

Attn: q (n_heads) and k, v (n_kv_heads: grouped-query attention) from the image tokens, LayerNorm on
q and k (qk_norm), 2-D RoPE on q and k (half the rotary pairs follow the row, half the column); plus
a cross-attention of the same q to keys/values projected from the caption features (Gemma-2B,
2048-d), gated per head by tanh(gate) with gate zero-initialised, added before the output projection
wo. SwiGLU hidden = 256 * ceil(int(2/3 * 4D) / 256).

Configuration (NextDiT_2B_patch2 in that file): dim 2304, 24 layers, 32 heads, patch 2. Its n_kv_heads
is a construction argument; 8 KV heads give 1.73B parameters in the transformer, 32 (no GQA) 2.10B.
The "1.7B" that PT-DiT's figure names is the 8-head count, so 8 is used here (derived from the
published size, not read from a released config). Counted: the transformer only (patch and
caption embedders, blocks, final layer), not the Gemma-2B text encoder or the SDXL VAE.
The caption length (text_tokens, 128 here) only moves the cross-attention's small share.
"""

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ptdit.config import TransformerConfig
from ptdit.embeddings import TimestepEmbedder
from ptdit.layers import merge_heads, modulate, split_heads


@dataclass(frozen=True)
class LuminaNextConfig(TransformerConfig):
    n_kv_heads: int = 8
    caption_channels: int = 2048      # Gemma-2B hidden size
    text_tokens: int = 128
    cond_size: int = 1024             # min(dim, 1024): the width of t and caption embeddings
    multiple_of: int = 256
    num_classes: int = 0

    def __post_init__(self):
        super().__post_init__()
        if self.num_heads % self.n_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} is not a multiple of n_kv_heads {self.n_kv_heads}")
        if (self.hidden_size // self.num_heads) % 4:
            raise ValueError("2-D RoPE needs a head dim divisible by 4")


def rope_2d(h, w, head_dim, device, theta=10000.0):
    """(h*w, head_dim // 2) angles: the first half of the rotary pairs turn with the row index, the
    second half with the column index (Lumina-Next's precompute_freqs_cis)."""
    freqs = 1.0 / theta ** (torch.arange(0, head_dim, 4, device=device)[: head_dim // 4].float() / head_dim)
    rows = torch.arange(h, device=device).float()[:, None, None] * freqs
    cols = torch.arange(w, device=device).float()[None, :, None] * freqs
    return torch.cat([rows.expand(h, w, -1), cols.expand(h, w, -1)], dim=-1).reshape(h * w, -1)


def apply_rope(x, angles):
    """x: (B, heads, N, d), rotated pairwise (x[2i], x[2i+1]) by angles (N, d/2): elementwise only."""
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    cos, sin = angles.cos(), angles.sin()
    a, b = pairs.unbind(-1)
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2).type_as(x)


class NextDiTAttention(nn.Module):
    def __init__(self, dim, num_heads, n_kv_heads, caption_channels):
        super().__init__()
        self.num_heads, self.n_kv_heads = num_heads, n_kv_heads
        head_dim = dim // num_heads
        kv = n_kv_heads * head_dim
        self.wq = nn.Linear(dim, dim, bias=False)
        self.wk = nn.Linear(dim, kv, bias=False)
        self.wv = nn.Linear(dim, kv, bias=False)
        self.wk_y = nn.Linear(caption_channels, kv, bias=False)
        self.wv_y = nn.Linear(caption_channels, kv, bias=False)
        self.gate = nn.Parameter(torch.zeros(num_heads))     # zero-init: no text at step 0
        self.wo = nn.Linear(dim, dim, bias=False)
        self.q_norm, self.k_norm, self.ky_norm = nn.LayerNorm(dim), nn.LayerNorm(kv), nn.LayerNorm(kv)

    def kv_heads(self, x):
        """(B, N, kv) -> (B, heads, N, d): each KV head serves num_heads / n_kv_heads query heads."""
        return split_heads(x, self.n_kv_heads).repeat_interleave(self.num_heads // self.n_kv_heads, dim=1)

    def forward(self, x, angles, text):
        q = apply_rope(split_heads(self.q_norm(self.wq(x)), self.num_heads), angles)
        k = apply_rope(self.kv_heads(self.k_norm(self.wk(x))), angles)
        out = F.scaled_dot_product_attention(q, k, self.kv_heads(self.wv(x)))
        ky, vy = self.kv_heads(self.ky_norm(self.wk_y(text))), self.kv_heads(self.wv_y(text))
        out_y = F.scaled_dot_product_attention(q, ky, vy)
        out = out + out_y * self.gate.tanh().view(1, -1, 1, 1)
        return self.wo(merge_heads(out))


class SwiGLU(nn.Module):
    def __init__(self, dim, multiple_of):
        super().__init__()
        hidden = int(2 * 4 * dim / 3)
        hidden = multiple_of * ((hidden + multiple_of - 1) // multiple_of)
        self.w1, self.w3 = nn.Linear(dim, hidden, bias=False), nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class NextDiTBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        dim = cfg.hidden_size
        self.attention = NextDiTAttention(dim, cfg.num_heads, cfg.n_kv_heads, cfg.caption_channels)
        self.feed_forward = SwiGLU(dim, cfg.multiple_of)
        self.attention_norm, self.attention_norm1 = nn.RMSNorm(dim, eps=1e-5), nn.RMSNorm(dim, eps=1e-5)
        self.ffn_norm, self.ffn_norm1 = nn.RMSNorm(dim, eps=1e-5), nn.RMSNorm(dim, eps=1e-5)
        self.attention_y_norm = nn.RMSNorm(cfg.caption_channels, eps=1e-5)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cfg.cond_size, 6 * dim))

    def forward(self, x, cond, angles, text):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(cond).chunk(6, dim=1)
        h = self.attention(modulate(self.attention_norm(x), shift_msa, scale_msa), angles, self.attention_y_norm(text))
        x = x + self.attention_norm1(gate_msa.unsqueeze(1) * h)
        h = self.feed_forward(modulate(self.ffn_norm(x), shift_mlp, scale_mlp))
        return x + self.ffn_norm1(gate_mlp.unsqueeze(1) * h)


class LuminaNext(nn.Module):
    """Next-DiT. forward(x, t, y=None, text=None): the zoo's tools call every model with DiT's (x, t, y);
    without caption features a zero caption of text_tokens tokens is used (it costs what a caption does)."""

    config_class = LuminaNextConfig

    def __init__(self, config):
        super().__init__()
        if not isinstance(config, LuminaNextConfig):
            raise TypeError(f"LuminaNext needs a LuminaNextConfig, got {type(config).__name__}")
        self.config = cfg = config
        dim, p = cfg.hidden_size, cfg.patch_size
        self.x_embedder = nn.Linear(p * p * cfg.in_channels, dim)
        self.t_embedder = TimestepEmbedder(cfg.cond_size)
        self.cap_embedder = nn.Sequential(nn.LayerNorm(cfg.caption_channels), nn.Linear(cfg.caption_channels, cfg.cond_size))
        self.layers = nn.ModuleList([NextDiTBlock(cfg) for _ in range(cfg.depth)])
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.final_adaLN = nn.Sequential(nn.SiLU(), nn.Linear(cfg.cond_size, 2 * dim))
        self.final_linear = nn.Linear(dim, p * p * cfg.out_channels)
        self.pad_token = nn.Parameter(torch.zeros(dim))      # pads variable-size batches in the official code

    def example_inputs(self, batch, device):
        """Random inputs of one call (evaluation/efficiency/profile.py): latents, t in [0, 1] (Lumina's
        flow time), caption features."""
        cfg = self.config
        return (torch.randn(batch, *cfg.input_shape, device=device), torch.rand(batch, device=device), None,
                torch.randn(batch, cfg.text_tokens, cfg.caption_channels, device=device))

    def forward(self, x, t, y=None, text=None):
        cfg = self.config
        b, c, hh, ww = x.shape
        p = cfg.patch_size
        h, w = hh // p, ww // p
        tokens = self.x_embedder(x.reshape(b, c, h, p, w, p).permute(0, 2, 4, 3, 5, 1).reshape(b, h * w, p * p * c))
        if text is None or text.dim() != 3:
            text = torch.zeros(b, cfg.text_tokens, cfg.caption_channels, device=x.device, dtype=x.dtype)
        cond = self.t_embedder(t) + self.cap_embedder(text.mean(dim=1))
        angles = rope_2d(h, w, cfg.hidden_size // cfg.num_heads, x.device)
        for layer in self.layers:
            tokens = layer(tokens, cond, angles, text)
        shift, scale = self.final_adaLN(cond).chunk(2, dim=1)
        out = self.final_linear(modulate(self.norm_final(tokens), shift, scale))
        out = out.reshape(b, h, w, p, p, cfg.out_channels).permute(0, 5, 1, 3, 2, 4)
        return out.reshape(b, cfg.out_channels, hh, ww)
