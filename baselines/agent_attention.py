"""Agent attention (Han et al., 2024), after LeapLabTHU/Agent-Attention
agent_transformer/models/agent_deit.py, class AgentAttention.

A small set of agent tokens A, average-pooled from the queries on the token grid, mediates between
queries and keys. Per head (d = head dim, N tokens, n agents):

    V_A = softmax(A K^T / sqrt(d) + B1) V        agents gather from all tokens      (n x N)
    O   = softmax(Q A^T / sqrt(d) + B2) V_A      every token reads the agents       (N x n)
    O  += DWConv3x3(V)                           depthwise conv over all C channels
    out = proj(O)

B1 and B2 are position biases (agent_deit.py AgentAttention.forward):
    B1[head, a, (y, x)] = bilinear(an_bias, 7x7 -> HxW)[head, a, y, x] + ah_bias[a, y] + aw_bias[a, x]
    B2[head, (y, x), a] = bilinear(na_bias, 7x7 -> HxW)[head, a, y, x] + ha_bias[y, a] + wa_bias[x, a]
so the cost is linear in N. Both stages run through scaled_dot_product_attention with the biases as a
float attn_mask (no loops over heads or tokens).

Choice made here: agent_deit.py also has ac_bias / ca_bias for DeiT's class token, and skips that token
in the pooling and the depthwise conv. DiT has no class token (the class enters through adaLN), so
those two parameters and the special cases are left out; what remains is exactly DAM's
AttentionWithMediators (see baselines/mediator_attention.py).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ptdit.layers import merge_heads, split_heads

# agent_deit.py stores the "agent <-> token" biases at a fixed 7x7 resolution and interpolates them to
# the token grid; DAM's models.py keeps the same 7x7 size.
BIAS_TABLE_SIZE = 7


def square_side(count, what):
    """Agents are pooled on a sqrt(n) x sqrt(n) grid, so n must be a perfect square."""
    side = math.isqrt(count)
    if side * side != count or count < 1:
        raise ValueError(f"{what} must be a perfect square (4, 16, 49, 64, ...), got {count}")
    return side


class AgentAttention(nn.Module):
    """Agent attention on an (h, w) token grid, tokens in row-major order.

    Parameter names and shapes are those of agent_deit.py AgentAttention (qkv, proj, dwc, an_bias,
    na_bias, ah_bias, aw_bias, ha_bias, wa_bias), minus the class-token ac_bias / ca_bias.
    """

    def __init__(self, dim, num_heads, grid, agent_num=64, qkv_bias=True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"hidden size {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.grid = tuple(grid)
        self.agent_num = agent_num
        self.pool_size = square_side(agent_num, "the number of agents / mediators")
        h, w = self.grid
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        # Depthwise 3x3 conv on V restores the local diversity that low-rank agent attention loses.
        self.dwc = nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim)
        t = BIAS_TABLE_SIZE
        self.an_bias = nn.Parameter(torch.zeros(num_heads, agent_num, t, t))   # agent -> token
        self.na_bias = nn.Parameter(torch.zeros(num_heads, agent_num, t, t))   # token -> agent
        self.ah_bias = nn.Parameter(torch.zeros(1, num_heads, agent_num, h, 1))
        self.aw_bias = nn.Parameter(torch.zeros(1, num_heads, agent_num, 1, w))
        self.ha_bias = nn.Parameter(torch.zeros(1, num_heads, h, 1, agent_num))
        self.wa_bias = nn.Parameter(torch.zeros(1, num_heads, 1, w, agent_num))
        for bias in (self.an_bias, self.na_bias, self.ah_bias, self.aw_bias, self.ha_bias, self.wa_bias):
            nn.init.trunc_normal_(bias, std=0.02)   # timm trunc_normal_(std=.02), as the official code

    def position_biases(self):
        """(agent->token (1, heads, n, N), token->agent (1, heads, N, n)), as agent_deit.py builds them.

        F.interpolate with mode='bilinear' and no align_corners is the official call."""
        h, w = self.grid
        heads, n = self.num_heads, self.agent_num
        agent_to_token = F.interpolate(self.an_bias, size=(h, w), mode="bilinear")
        agent_to_token = agent_to_token + self.ah_bias[0] + self.aw_bias[0]          # (heads, n, h, w)
        token_to_agent = F.interpolate(self.na_bias, size=(h, w), mode="bilinear")
        token_to_agent = token_to_agent.permute(0, 2, 3, 1) + self.ha_bias[0] + self.wa_bias[0]  # (heads, h, w, n)
        return agent_to_token.reshape(1, heads, n, h * w), token_to_agent.reshape(1, heads, h * w, n)

    def to_image(self, x):
        """(B, N, C) row-major tokens -> (B, C, h, w)."""
        b, _, c = x.shape
        return x.transpose(1, 2).reshape(b, c, *self.grid)

    def forward(self, x):
        b, n, c = x.shape
        h, w = self.grid
        if n != h * w:
            raise ValueError(f"{type(self).__name__} was built for a {h}x{w} token grid ({h * w} tokens), got {n}")
        # qkv layout (B, N, 3, C) with heads contiguous inside C, as the official reshape(b, n, 3, c).
        q, k, v = self.qkv(x).reshape(b, n, 3, c).unbind(2)
        # Agents: average-pool the full C-channel queries on the grid, then split heads (official order).
        agents = F.adaptive_avg_pool2d(self.to_image(q), self.pool_size).flatten(2).transpose(1, 2)
        # Local term: depthwise conv on V laid out on the grid, added before proj (official order).
        local = self.dwc(self.to_image(v)).flatten(2).transpose(1, 2)
        agents, q, k, v = (split_heads(t, self.num_heads) for t in (agents, q, k, v))
        agent_to_token, token_to_agent = (bias.to(q.dtype) for bias in self.position_biases())
        # SDPA's default scale is head_dim ** -0.5, the official self.scale in both stages.
        agent_v = F.scaled_dot_product_attention(agents, k, v, attn_mask=agent_to_token)
        out = F.scaled_dot_product_attention(q, agents, agent_v, attn_mask=token_to_agent)
        return self.proj(merge_heads(out) + local)
