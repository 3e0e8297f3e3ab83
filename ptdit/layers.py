"""Small layers of the shared skeleton: adaLN modulation, multi-head attention, MLP, final layer.

Key names match timm's Attention/Mlp as used by DiT (attn.qkv, attn.proj, mlp.fc1, mlp.fc2) and DiT's
FinalLayer (final_layer.linear, final_layer.adaLN_modulation.1).
"""

import torch.nn as nn
import torch.nn.functional as F


def modulate(x, shift, scale):
    """adaLN: x * (1 + scale) + shift, with per-sample (N, D) shift/scale broadcast over tokens."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def modulate_by(x, shift, factor):
    """modulate() with factor = 1 + scale already formed, so a block adds the 1 to all its scales in
    one kernel (ptdit/pt_dit_block.py); the same two kernels per call, the same values."""
    return x * factor.unsqueeze(1) + shift.unsqueeze(1)


def layer_norm(hidden_size):
    """DiT's LayerNorm: no affine parameters (adaLN provides scale and shift), eps 1e-6."""
    return nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)


def adaln_modulation(hidden_size, chunks):
    """SiLU + Linear(D, chunks*D): the key of the Linear is `adaLN_modulation.1` as in DiT."""
    return nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, chunks * hidden_size, bias=True))


def split_heads(x, num_heads):
    """(B, N, C) -> (B, heads, N, C/heads)."""
    b, n, c = x.shape
    return x.reshape(b, n, num_heads, c // num_heads).transpose(1, 2)


def merge_heads(x):
    """(B, heads, N, d) -> (B, N, heads*d)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv Linear (bias) and an output proj, as timm's
    Attention in DiT; computed by scaled_dot_product_attention (scale 1/sqrt(head_dim)).
    """

    def __init__(self, dim, num_heads, qkv_bias=True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"hidden size {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def qkv_heads(self, x):
        """(B, N, C) -> q, k, v each (B, heads, N, d)."""
        b, n, c = x.shape
        # Split q/k/v along their own axis and transpose each: the same strided views as permuting
        # the packed tensor, but autograd then stacks the three gradients straight into the qkv
        # Linear's (B, N, 3, heads, d) layout; unbinding a permuted tensor made it stack, then copy.
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).unbind(2)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def forward(self, x, attn_mask=None):
        q, k, v = self.qkv_heads(x)
        return self.proj(merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)))


class Mlp(nn.Module):
    """Linear -> GELU(tanh) -> Linear, DiT's feed-forward (timm Mlp with approximate GELU)."""

    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class FinalLayer(nn.Module):
    """adaLN-modulated LayerNorm then a Linear to patch pixels (DiT models.py FinalLayer)."""

    def __init__(self, hidden_size, patch_volume, out_channels):
        super().__init__()
        self.norm_final = layer_norm(hidden_size)
        self.linear = nn.Linear(hidden_size, patch_volume * out_channels, bias=True)
        self.adaLN_modulation = adaln_modulation(hidden_size, 2)

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class CrossAttention(nn.Module):
    """Multi-head attention of (B, Nq, C) queries on (B, Nk, C) context tokens: q, kv and proj
    Linears with biases (the layout of PixArt's / the released PT-DiT's cross-attention).

    project_query / project_out = False drop the per-query Linears (PT-DiT's compact class block):
    queries are split into heads as they come, and the heads' outputs are returned as they are.
    """

    def __init__(self, dim, num_heads, context_dim=None, project_query=True, project_out=True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"hidden size {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim) if project_query else nn.Identity()
        self.kv = nn.Linear(context_dim or dim, 2 * dim)
        self.proj = nn.Linear(dim, dim) if project_out else nn.Identity()

    def forward(self, x, context, attn_mask=None):
        q = split_heads(self.q(x), self.num_heads)
        k, v = (split_heads(t, self.num_heads) for t in self.kv(context).chunk(2, dim=-1))
        return self.proj(merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)))
