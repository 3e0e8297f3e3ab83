"""The GFLOPs counter (evaluation/efficiency/flops.py) against multiply-adds counted by hand on tiny modules."""

import torch
import torch.nn as nn

from evaluation.efficiency.flops import count_flops, model_gflops
from ptdit.embeddings import PatchEmbed
from ptdit.layers import Attention
from ptdit.window_attention import WindowAttention


def test_linear_is_tokens_times_in_times_out():
    n, d_in, d_out = 10, 16, 32
    assert count_flops(nn.Linear(d_in, d_out), (torch.zeros(1, n, d_in),)) == n * d_in * d_out


def test_attention_is_projections_plus_two_matmuls():
    # qkv 3ND^2 + proj ND^2 + QK^T and AV 2N^2D (summed over heads), SDPA included.
    n, d = 16, 32
    macs = count_flops(Attention(d, num_heads=4), (torch.zeros(1, n, d),))
    assert macs == 3 * n * d * d + n * d * d + 2 * n * n * d


def test_window_attention_is_projections_plus_windowed_matmuls():
    # 8x8 grid, 2x2 windows: each token attends to T = 4 tokens, so 2NTD instead of 2N^2D.
    n, d, t = 64, 32, 4
    module = WindowAttention(d, 4, grid=(1, 8, 8), window=(1, 2, 2))
    assert count_flops(module, (torch.zeros(1, n, d),)) == 4 * n * d * d + 2 * n * t * d


def test_conv_patch_embed_is_patches_times_patch_volume_times_width():
    c, d, p, size = 4, 32, 2, 16
    tokens = (size // p) ** 2
    macs = count_flops(PatchEmbed(c, d, p), (torch.zeros(1, c, size, size),))
    assert macs == tokens * d * c * p * p


def test_dit_s2_matches_dit_table_4():
    params, gflops = model_gflops("DiT-S/2")
    assert params == 32_963_360
    assert abs(gflops - 6.06) < 0.01
