"""Agent attention and Agent-DiT: behaviour against a naive implementation (uneven adaptive pooling
and non-square grids included), key layout after agent_deit.py, counts, DiT conventions.

Official code: LeapLabTHU/Agent-Attention agent_transformer/models/agent_deit.py, AgentAttention.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from baselines.agent_attention import AgentAttention
from baselines.agent_dit import AgentDiT, AgentDiTConfig
from evaluation.efficiency.flops import model_gflops
from ptdit import create_model


def tiny_agent_dit(**overrides):
    fields = dict(input_size=16, patch_size=2, hidden_size=24, depth=2, num_heads=3, num_classes=10, agent_num=16)
    fields.update(overrides)
    return AgentDiT(AgentDiTConfig(**fields))


def adaptive_bins(size, out):
    """PyTorch's adaptive pooling windows: [floor(i*size/out), ceil((i+1)*size/out))."""
    return [range(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def naive_agent_attention(attn, x):
    """softmax(Q A^T/sqrt(d) + B2) softmax(A K^T/sqrt(d) + B1) V + DWC(V), per sample and per head."""
    b, n_tok, c = x.shape
    (gh, gw), heads, n = attn.grid, attn.num_heads, attn.agent_num
    d, pool = c // heads, math.isqrt(n)
    qkv = x @ attn.qkv.weight.T + attn.qkv.bias
    q, k, v = qkv[..., :c], qkv[..., c:2 * c], qkv[..., 2 * c:]
    agents = torch.zeros(b, n, c)
    for i, rows in enumerate(adaptive_bins(gh, pool)):
        for j, cols in enumerate(adaptive_bins(gw, pool)):
            agents[:, i * pool + j] = q[:, [y * gw + xx for y in rows for xx in cols]].mean(dim=1)
    up_an = F.interpolate(attn.an_bias, size=(gh, gw), mode="bilinear")
    up_na = F.interpolate(attn.na_bias, size=(gh, gw), mode="bilinear")
    out = torch.zeros(b, n_tok, c)
    for bi in range(b):
        for h in range(heads):
            s = slice(h * d, (h + 1) * d)
            a_h, q_h, k_h, v_h = agents[bi, :, s], q[bi, :, s], k[bi, :, s], v[bi, :, s]
            b1, b2 = torch.zeros(n, n_tok), torch.zeros(n_tok, n)
            for y in range(gh):
                for xx in range(gw):
                    p = y * gw + xx
                    b1[:, p] = up_an[h, :, y, xx] + attn.ah_bias[0, h, :, y, 0] + attn.aw_bias[0, h, :, 0, xx]
                    b2[p, :] = up_na[h, :, y, xx] + attn.ha_bias[0, h, y, 0, :] + attn.wa_bias[0, h, 0, xx, :]
            agent_v = torch.softmax(a_h @ k_h.T / math.sqrt(d) + b1, dim=-1) @ v_h
            out[bi, :, s] = torch.softmax(q_h @ a_h.T / math.sqrt(d) + b2, dim=-1) @ agent_v
    v_img = F.pad(v.reshape(b, gh, gw, c), (0, 0, 1, 1, 1, 1))
    w = attn.dwc.weight[:, 0]
    local = sum(v_img[:, dy:dy + gh, dx:dx + gw] * w[:, dy, dx] for dy in range(3) for dx in range(3))
    out = out + (local + attn.dwc.bias).reshape(b, n_tok, c)
    return out @ attn.proj.weight.T + attn.proj.bias


@pytest.mark.parametrize("grid, agents", [((8, 8), 16), ((8, 8), 9), ((6, 10), 4), ((7, 7), 49)])
def test_agent_attention_equals_naive(grid, agents):
    """(8, 8) with 9 agents and (6, 10) exercise uneven, overlapping pooling windows; (7, 7) with 49
    gives one agent per token."""
    torch.manual_seed(0)
    attn = AgentAttention(24, 3, grid, agent_num=agents)
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(std=0.5)
        x = torch.randn(2, grid[0] * grid[1], 24)
        torch.testing.assert_close(attn(x), naive_agent_attention(attn, x), rtol=1e-4, atol=1e-4)


def test_wrong_token_count_is_refused():
    attn = AgentAttention(24, 3, (8, 8), agent_num=16)
    with pytest.raises(ValueError, match="8x8"):
        attn(torch.randn(1, 63, 24))


def test_keys_are_agent_deit_names_without_class_token_biases():
    """agent_deit.py AgentAttention minus ac_bias / ca_bias (DiT has no class token)."""
    attn = AgentAttention(24, 3, (8, 8), agent_num=16)
    shapes = {k: tuple(v.shape) for k, v in attn.state_dict().items()}
    assert shapes == {
        "qkv.weight": (72, 24), "qkv.bias": (72,), "proj.weight": (24, 24), "proj.bias": (24,),
        "dwc.weight": (24, 1, 3, 3), "dwc.bias": (24,),
        "an_bias": (3, 16, 7, 7), "na_bias": (3, 16, 7, 7),
        "ah_bias": (1, 3, 16, 8, 1), "aw_bias": (1, 3, 16, 1, 8),
        "ha_bias": (1, 3, 8, 1, 16), "wa_bias": (1, 3, 1, 8, 16),
    }


@pytest.mark.parametrize("size", ["S", "B"])
def test_params_and_gflops_follow_from_dit(size):
    """Agent-DiT = DiT + per-layer (10 C + 2 h n 49 + 4 h n 16) params; GFLOPs = DiT - 2 N^2 C + 4 n N C
    + 9 N C per layer (DiT convention)."""
    depth, d, h, n, n_tok = 12, {"S": 384, "B": 768}[size], {"S": 6, "B": 12}[size], 64, 256
    params, gflops = model_gflops(f"Agent-DiT-{size}/2")
    dit_params, dit_gflops = model_gflops(f"DiT-{size}/2")
    assert params == dit_params + depth * (10 * d + 2 * h * n * 49 + 4 * h * n * 16)
    expected = dit_gflops * 1e9 + depth * (4 * n * n_tok * d + 9 * n_tok * d - 2 * n_tok ** 2 * d)
    assert gflops * 1e9 == pytest.approx(expected, rel=1e-12)


def test_default_agent_count_is_8x8():
    with torch.device("meta"):
        model = create_model("Agent-DiT-S/2")
    assert model.blocks[0].attn.agent_num == 64 and model.blocks[0].attn.pool_size == 8


def test_every_block_is_identity_at_init():
    model = tiny_agent_dit()
    torch.manual_seed(0)
    x, c = torch.randn(2, 64, 24), torch.randn(2, 24)
    with torch.no_grad():
        for block in model.blocks:
            assert torch.equal(block(x, c), x)


def test_forward_follows_dit_conventions():
    """DiT returns all 2C learn_sigma channels (eps and variance), unlike SiT/DAM."""
    model = tiny_agent_dit().eval()
    x = torch.randn(2, 4, 16, 16)
    with torch.no_grad():
        out = model(x, torch.tensor([10, 900]), torch.tensor([1, 10]))
        cfg = model.forward_with_cfg(x, torch.tensor([10, 10]), torch.tensor([1, 10]), 4.0)
    assert out.shape == (2, 8, 16, 16) and cfg.shape == (2, 8, 16, 16)


def test_video_is_refused():
    with pytest.raises(ValueError, match="image model"):
        tiny_agent_dit(video=True, num_frames=2)
