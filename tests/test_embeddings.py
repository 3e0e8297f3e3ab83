"""The shared skeleton's embeddings against closed forms: 3-D positions, 3-D patches, timesteps."""

import math

import numpy as np
import torch

import ptdit
from ptdit.embeddings import PatchEmbed, TimestepEmbedder, sincos_2d, sincos_3d
from ptdit.window_attention import to_window_major


def test_3d_table_is_time_quarter_plus_2d_space():
    d, f, h, w = 32, 3, 2, 4
    table = sincos_3d(d, f, h, w).reshape(f, h * w, d)
    space = sincos_2d(3 * d // 4, h, w)
    for frame in range(f):
        np.testing.assert_allclose(table[frame, :, d // 4:], space)      # space does not depend on time
        omega = 1.0 / 10000 ** (np.arange(d // 8) / (d / 8))
        expect = np.concatenate([np.sin(frame * omega), np.cos(frame * omega)])
        np.testing.assert_allclose(table[frame, :, :d // 4], np.broadcast_to(expect, (h * w, d // 4)), atol=1e-7)


def test_3d_patch_embed_orders_tokens_frame_row_column():
    embed = PatchEmbed(1, 1, patch_size=2, temporal_patch_size=2, video=True)
    with torch.no_grad():
        embed.proj.weight.fill_(1.0)
        embed.proj.bias.zero_()
    x = torch.zeros(1, 1, 4, 4, 6)
    x[0, 0, 2, 2, 4] = 1.0                          # frame patch 1, row patch 1, column patch 2
    tokens = embed(x)[0, :, 0]
    assert tokens.shape[0] == 2 * 2 * 3
    assert torch.nonzero(tokens).flatten().tolist() == [1 * 6 + 1 * 3 + 2]


def test_timestep_frequencies_closed_form():
    emb = TimestepEmbedder.timestep_embedding(torch.tensor([0.0, 7.0]), 8)
    freqs = [math.exp(-math.log(10000) * i / 4) for i in range(4)]
    expect = [math.cos(7 * f) for f in freqs] + [math.sin(7 * f) for f in freqs]
    torch.testing.assert_close(emb[1], torch.tensor(expect))
    torch.testing.assert_close(emb[0], torch.tensor([1.0] * 4 + [0.0] * 4))


def test_video_model_unpatchify_round_trip():
    model = ptdit.create_model("PT-DiT/S-Class", depth=1, hidden_size=32, num_heads=2, video=True,
                               num_frames=8, temporal_patch_size=2, input_size=16, num_classes=5,
                               learn_sigma=False)
    n, (f, h, w) = 2, model.grid
    x = torch.randn(n, 4, 8, 16, 16)
    # patchify by hand into the token layout the final layer emits: (f, h, w) tokens of (pt, p, p, c),
    # which PT-DiT then orders window-major
    tokens = x.view(n, 4, f, 2, h, 2, w, 2).permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(n, f * h * w, -1)
    torch.testing.assert_close(model.unpatchify(to_window_major(tokens, model.grid, model.config.window)), x)
