"""Lumina-Next's Next-DiT (baselines/lumina_next.py), built on the meta device for counting: its
transformer has the published 1.7B parameters (within 3 %), every block matches the closed form of
the official layer list, its GFLOPs are the closed form of its projections and attentions, and the
zero-initialised gate keeps the caption out until it opens."""

import pytest
import torch

from evaluation.efficiency.flops import count_flops, count_params, example_inputs
from ptdit import create_model

D, LAYERS, HEADS, KV_HEADS, CAPTION, COND = 2304, 24, 32, 8, 2048, 1024


def meta_model(px=256, **overrides):
    with torch.device("meta"):
        return create_model("Lumina-Next-1.7B", input_size=px // 8, **overrides)


def test_transformer_has_the_published_1_7b_parameters():
    # Counted: patch and caption embedders, the 24 blocks, the final layer. Not counted: the Gemma-2B
    # text encoder and the SDXL VAE, which PT-DiT's "1.7B" does not include either.
    assert count_params(meta_model()) == pytest.approx(1.7e9, rel=0.03)


def test_a_block_is_the_closed_form_of_the_official_layers():
    kv = KV_HEADS * D // HEADS
    ffn = 256 * -(-int(2 * 4 * D / 3) // 256)                       # SwiGLU hidden: 6144
    closed = (2 * D * D + 2 * D * kv                                # wq, wo; wk, wv (grouped-query)
              + 2 * CAPTION * kv + HEADS                            # wk_y, wv_y; the per-head gate
              + 3 * D * ffn                                         # w1, w2, w3
              + COND * 6 * D + 6 * D                                # adaLN
              + 2 * D + 2 * kv + 2 * kv                             # LayerNorms on q, k, k_y (qk_norm)
              + 4 * D + CAPTION)                                    # sandwich RMSNorms, caption RMSNorm
    assert count_params(meta_model().layers[0]) == closed
    # Without grouped-query attention (32 KV heads) the same shape would be 2.10B, not 1.7B.
    assert count_params(meta_model(n_kv_heads=HEADS)) == pytest.approx(2.10e9, rel=0.01)


@pytest.mark.parametrize("px", [256, 512])
def test_gflops_are_the_closed_form(px):
    n, t = (px // 16) ** 2, 128                                     # tokens (patch 2 on px/8 latents), caption
    kv = KV_HEADS * D // HEADS
    per_layer = (n * (2 * D * D + 2 * D * kv + 3 * D * 6144)        # projections and SwiGLU on the image tokens
                 + 2 * n * n * D + 2 * n * t * D                    # self- and cross-attention matmuls
                 + t * 2 * CAPTION * kv + COND * 6 * D)             # caption keys/values, adaLN
    model = meta_model(px)
    assert count_flops(model, example_inputs(model)) == pytest.approx(LAYERS * per_layer, rel=0.01)


def test_gate_keeps_the_caption_out_at_initialisation():
    from baselines.lumina_next import NextDiTAttention, rope_2d

    torch.manual_seed(0)
    attn = NextDiTAttention(dim=64, num_heads=4, n_kv_heads=2, caption_channels=16)
    x, angles = torch.randn(2, 16, 64), rope_2d(4, 4, 16, torch.device("cpu"))
    text_a, text_b = torch.randn(2, 5, 16), torch.randn(2, 5, 16)
    with torch.no_grad():
        assert torch.equal(attn(x, angles, text_a), attn(x, angles, text_b))      # tanh(0) = 0: no text yet
        attn.gate.fill_(1.0)
        assert not torch.allclose(attn(x, angles, text_a), attn(x, angles, text_b))
    model = create_model("Lumina-Next-1.7B", depth=1, hidden_size=64, num_heads=4, n_kv_heads=2, caption_channels=16,
                         text_tokens=5, input_size=8)
    assert model(torch.randn(2, 4, 8, 8), torch.rand(2) * 999).shape == (2, 8, 8, 8)   # learn_sigma: 2 x 4 channels
