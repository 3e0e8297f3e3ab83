"""Eager PT-DiT is launch-bound on a GPU (bench/pt_dit_launches.py): the number of aten ops of one
block's forward + backward is bounded here, and the block still computes what the plain formulation
(roll, partition, 1 + scale, mask per call) computes, in values and gradients."""

import math

import pytest
import torch
import torch.nn.functional as F

import ptdit
from bench.pt_dit_launches import OpCounter
from ptdit.window_attention import partition, to_window_major, unpartition
from tests.conftest import randomize
from tests.grid_order_pt_dit import roll_grid, shifted_window_mask
from tests.tolerance import assert_close_scaled

GRID, WINDOW = (1, 8, 8), (1, 2, 2)

# Kernel launches (aten ops that are not views) of one block forward + backward at these sizes,
# measured 2026-11-26 with torch 2.14.1 CPU: compact 147 (161 before the launch work), released 143
# (155 before). Window-major tokens (issue 14) keep these counts while the block copies nothing: the
# partition / unpartition copies are gone and the shifted windows' per-region SDPA calls (no mask)
# take their place. A margin of 2 leaves room for a torch upgrade, not for a new op per sub-layer.
MAX_LAUNCHES = {"compact": 149, "released": 145}


def block_and_inputs(layout, seed=0):
    torch.manual_seed(seed)
    model = ptdit.create_model("PT-DiT/S-Class", depth=1, hidden_size=32, num_heads=2, input_size=16,
                               num_classes=10, layout=layout, compression_ratio=WINDOW)
    block = randomize(model.blocks[0], seed=seed, std=0.1)
    x = torch.randn(2, 64, 32, requires_grad=True)
    c = torch.randn(2, 32, requires_grad=True)
    return block, x, c


def attention(attn, x, context=None, mask=None):
    """Multi-head attention written out: softmax(q k^T / sqrt(d)) v, masked where mask is False."""
    b, n, d = x.shape
    heads = attn.num_heads
    split = lambda t: t.reshape(b, -1, heads, d // heads).transpose(1, 2)    # noqa: E731
    if context is None:
        q, k, v = F.linear(x, attn.qkv.weight, attn.qkv.bias).chunk(3, dim=-1)
    else:
        q = attn.q(x)
        k, v = F.linear(context, attn.kv.weight, attn.kv.bias).chunk(2, dim=-1)
    score = split(q) @ split(k).transpose(-1, -2) / math.sqrt(d // heads)
    if mask is not None:
        score = score.masked_fill(~mask, float("-inf"))
    out = (score.softmax(-1) @ split(v)).transpose(1, 2).reshape(b, n, d)
    return attn.proj(out) if context is not None else F.linear(out, attn.proj.weight, attn.proj.bias)


def reference_block(block, x, c):
    """The block of ptdit/pt_dit_block.py, recomputed the plain way from its parameters, on
    grid-order tokens (roll, partition, mask; the roll and mask of the grid-order code)."""
    chunks = block.adaLN_modulation(c).chunk(block.num_chunks, dim=1)
    norm = lambda t: F.layer_norm(t, t.shape[-1:], eps=1e-6)                         # noqa: E731
    mod = lambda t, shift, scale: t * (1 + scale[:, None]) + shift[:, None]          # noqa: E731
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp, shift_sw, scale_sw, gate_sw = chunks[:9]
    b, _, d = x.shape
    giim = block.giim
    proxies = partition(x, GRID, WINDOW).mean(1).view(b, -1, d)
    if block.compact:
        shift_p, scale_p, gate_p, shift_x, scale_x, gate_x = chunks[9:]
        proxies = proxies + gate_p[:, None] * attention(giim.proxy_attn, mod(norm(proxies), shift_p, scale_p))
        x = x + gate_x[:, None] * attention(giim.cross_attn, mod(norm(x), shift_x, scale_x), norm(proxies))
    else:
        proxies = proxies + attention(giim.proxy_attn, norm(proxies))
        x = x + giim.out(attention(giim.cross_attn, norm(x), norm(proxies)))
    windows = partition(mod(norm(x), shift_msa, scale_msa), GRID, WINDOW)
    x = x + gate_msa[:, None] * unpartition(attention(block.attn, windows), GRID, WINDOW)
    shifts = tuple(w // 2 for w in WINDOW)
    rolled = partition(roll_grid(mod(norm(x), shift_sw, scale_sw), GRID, tuple(-s for s in shifts)), GRID, WINDOW)
    mask = shifted_window_mask(GRID, WINDOW).unsqueeze(1).repeat(b, 1, 1, 1)
    out = roll_grid(unpartition(attention(block.sw_attn, rolled, mask=mask), GRID, WINDOW), GRID, shifts)
    out = gate_sw[:, None] * out
    x = x + (block.sw_out(out) if block.sw_out is not None else out)
    hidden = F.gelu(block.mlp.fc1(mod(norm(x), shift_mlp, scale_mlp)), approximate="tanh")
    return x + gate_mlp[:, None] * block.mlp.fc2(hidden)


@pytest.mark.parametrize("layout", ["compact", "released"])
def test_block_equals_plain_formulation_in_values_and_gradients(layout):
    block, x, c = block_and_inputs(layout)
    out = block(to_window_major(x, GRID, WINDOW), c)
    ref = to_window_major(reference_block(block, x, c), GRID, WINDOW)
    # Not bit-identical, and not meant to be: SDPA's fused kernel (blocked online softmax) against
    # softmax(q k^T) v, extract_proxies' mean against partition().mean(1), and weight gradients
    # summed over tokens in window order against raster order round differently (1-3 eps * max).
    assert_close_scaled(out, ref, what="block output")
    assert (out - to_window_major(x, GRID, WINDOW)).abs().amax() > 1e-2     # the sub-layers really contribute
    g = torch.randn_like(out)
    names = ["x", "c"] + [name for name, _ in block.named_parameters()]
    inputs = [x, c] + list(block.parameters())
    grads = torch.autograd.grad(out, inputs, g)
    ref_grads = torch.autograd.grad(ref, inputs, g)
    for name, grad, ref_grad in zip(names, grads, ref_grads):
        assert_close_scaled(grad, ref_grad, what=f"gradient of {name}")
    # Twice: the second call runs on the cached row order of the shifted windows. Exact: the same
    # kernels on the same inputs in the same order (one process, fixed thread count).
    torch.testing.assert_close(block(to_window_major(x, GRID, WINDOW), c), out, rtol=0, atol=0)


@pytest.mark.parametrize("layout", ["compact", "released"])
def test_block_forward_backward_launch_count_is_bounded(layout):
    block, x, c = block_and_inputs(layout)
    for _ in range(2):                                # warm-up: caches built
        block(x, c).sum().backward()
    block.zero_grad(set_to_none=True)
    x.grad = c.grad = None
    with OpCounter() as counter:
        block(x, c).sum().backward()
    launches = counter.summary()["launches"]
    assert launches <= MAX_LAUNCHES[layout], (
        f"one PT-DiT {layout} block forward + backward issues {launches} aten ops (bound "
        f"{MAX_LAUNCHES[layout]}): top ops {counter.ops.most_common(8)}")
    assert counter.ops["where"] == 0 and counter.ops["repeat"] == 0     # no mask is built or converted
    assert counter.summary()["copies"] == 0, counter.ops                 # window-major: no partition copies


def test_state_dict_holds_only_parameters():
    """The launch work adds non-persistent buffers only: checkpoints keep DiT-style keys."""
    block, _, _ = block_and_inputs("compact")
    assert set(block.state_dict()) == {name for name, _ in block.named_parameters()}


@pytest.mark.parametrize("name", ["DiT-B/2", "PT-DiT/B-Class", "PT-DiT/B-Class-released"])
def test_sublayer_launches_account_for_the_block(name):
    """bench/pt_dit_launches.py --sublayers splits a block's launches into its sub-layers and their
    LayerNorm / modulation / gate / residual wrappers (the README's launch floor rests on it). The parts
    must fit inside the block's count (no part counted twice) and leave little out (adaLN, the
    proxies' mean, the backward's gradient accumulation)."""
    from bench.pt_dit_launches import SMALL, sublayer_ops

    torch.manual_seed(0)
    parts = sublayer_ops(ptdit.create_model(name, **dict(SMALL, depth=1, input_size=32)))
    wrapped = {"DiT-B/2": 2}.get(name, 3)            # GIIM's two wrappers are inside its own count
    explained = sum(v for k, v in parts.items() if k not in ("block", "LN + modulate + gate + residual"))
    explained += wrapped * parts["LN + modulate + gate + residual"]
    assert explained <= parts["block"] <= explained + 16, parts
