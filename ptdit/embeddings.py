"""Input embeddings shared by every model in the zoo: patches, positions, timesteps, labels.

Parameter names follow facebookresearch/DiT models.py (x_embedder.proj, t_embedder.mlp.{0,2},
y_embedder.embedding_table) so official checkpoints load with strict=True.
"""

import math

import numpy as np
import torch
import torch.nn as nn


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> tokens, as timm's PatchEmbed used by DiT (Conv with kernel = stride).

    Images (N, C, H, W) use a Conv2d, so the key `proj.weight` has the official shape (D, C, p, p).
    Video latents (N, C, F, H, W) use a Conv3d with a temporal patch size. Tokens are ordered
    frame-major, then row, then column (the order of flatten over (f, h, w)).
    """

    def __init__(self, in_channels, hidden_size, patch_size, temporal_patch_size=1, video=False):
        super().__init__()
        self.video = video
        if video:
            kernel = (temporal_patch_size, patch_size, patch_size)
            self.proj = nn.Conv3d(in_channels, hidden_size, kernel, stride=kernel, bias=True)
        else:
            self.proj = nn.Conv2d(in_channels, hidden_size, patch_size, stride=patch_size, bias=True)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


def sincos_1d(embed_dim, positions):
    """MAE/DiT 1-D sin-cos table: [sin(pos * omega), cos(pos * omega)], computed in float64."""
    if embed_dim % 2:
        raise ValueError(f"sin-cos embedding needs an even dimension, got {embed_dim}")
    omega = np.arange(embed_dim // 2, dtype=np.float64) / (embed_dim / 2.0)
    omega = 1.0 / 10000**omega
    out = np.outer(positions.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_2d(embed_dim, grid_h, grid_w):
    """Fixed 2-D table of DiT models.py for a grid_h x grid_w token grid, row-major tokens.

    As in the official code the first half of the channels encodes the column index and the second
    half the row index (DiT builds the grid with np.meshgrid(grid_w, grid_h), "w goes first").
    """
    if embed_dim % 2:
        raise ValueError(f"2-D sin-cos embedding needs an even dimension, got {embed_dim}")
    rows, cols = np.meshgrid(np.arange(grid_h, dtype=np.float32), np.arange(grid_w, dtype=np.float32),
                             indexing="ij")
    return np.concatenate([sincos_1d(embed_dim // 2, cols), sincos_1d(embed_dim // 2, rows)], axis=1)


def sincos_3d(embed_dim, grid_f, grid_h, grid_w):
    """3-D table for video latents (pt-dit.md): a quarter of the channels for time, the rest for 2-D
    space. The channel order [temporal, spatial] is our choice (as diffusers' get_3d_sincos_pos_embed);
    the released PT-DiT code is inference-only for images and does not fix it.
    """
    if embed_dim % 4:
        raise ValueError(f"3-D sin-cos embedding needs a dimension divisible by 4, got {embed_dim}")
    spatial = sincos_2d(embed_dim * 3 // 4, grid_h, grid_w)                     # (h*w, 3D/4)
    temporal = sincos_1d(embed_dim // 4, np.arange(grid_f, dtype=np.float32))   # (f, D/4)
    spatial = np.broadcast_to(spatial[None], (grid_f, *spatial.shape))
    temporal = np.broadcast_to(temporal[:, None], (grid_f, grid_h * grid_w, temporal.shape[1]))
    return np.concatenate([temporal, spatial], axis=-1).reshape(grid_f * grid_h * grid_w, embed_dim)


def sincos_table(embed_dim, grid):
    """Position table for a token grid (f, h, w); f == 1 gives exactly DiT's 2-D table."""
    f, h, w = grid
    table = sincos_2d(embed_dim, h, w) if f == 1 else sincos_3d(embed_dim, f, h, w)
    return torch.from_numpy(np.ascontiguousarray(table)).float()


class TimestepEmbedder(nn.Module):
    """Scalar timesteps -> vectors: 256-d sinusoid [cos, sin] then Linear-SiLU-Linear (DiT models.py).

    Works for DiT's integer t in [0, 1000) and for SiT's continuous t in [0, 1] alike: the official
    SiT code feeds raw t into the same embedder.
    """

    def __init__(self, hidden_size, frequency_embedding_size=256):
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size, bias=True),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size, bias=True),
        )

    @staticmethod
    def timestep_embedding(t, dim, max_period=10000):
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t[:, None].float() * freqs[None]
        embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if dim % 2:
            embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
        return embedding

    def forward(self, t):
        t_freq = self.timestep_embedding(t, self.frequency_embedding_size)
        return self.mlp(t_freq.to(self.mlp[0].weight.dtype))


class LabelEmbedder(nn.Module):
    """Class labels -> vectors, with an extra "null" class (index num_classes) for classifier-free
    guidance; labels are dropped to null with probability dropout_prob in training (DiT models.py).
    """

    def __init__(self, num_classes, hidden_size, dropout_prob):
        super().__init__()
        use_cfg_embedding = dropout_prob > 0
        self.embedding_table = nn.Embedding(num_classes + use_cfg_embedding, hidden_size)
        self.num_classes = num_classes
        self.dropout_prob = dropout_prob

    def token_drop(self, labels, force_drop_ids=None):
        if force_drop_ids is None:
            drop_ids = torch.rand(labels.shape[0], device=labels.device) < self.dropout_prob
        else:
            drop_ids = force_drop_ids == 1
        return torch.where(drop_ids, self.num_classes, labels)

    def forward(self, labels, train, force_drop_ids=None):
        if (train and self.dropout_prob > 0) or force_drop_ids is not None:
            labels = self.token_drop(labels, force_drop_ids)
        return self.embedding_table(labels)
