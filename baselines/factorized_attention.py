"""Factorised 2-D + 1-D attention over a video token grid (f, h, w): spatial attention among the h*w
tokens of each frame, and temporal attention among the f tokens at each spatial position.

This is the "divided space-time attention" of TimeSformer (Bertasius et al. 2021, Sec. 3) as video
DiTs use it: Latte (Ma et al. 2024) variant 3 (spatial then temporal multi-head attention inside one
block), the STDiT blocks of Open-Sora 1.0 and VDT. PT-DiT's rebuttal compares against "2D + 1D" without
naming one; what the blocks do with the two modules is in baselines/factorized_dit.py.

Tokens arrive as (B, N, C) in grid order (frame, row, column) (ptdit/embeddings.py PatchEmbed), so
frames and positions go into the batch dimension by reshapes, and one SDPA call attends all of them:
    spatial:  (B, f*h*w, C) -> (B*f, h*w, C)
    temporal: (B, f*h*w, C) -> (B, f, h*w, C) -> (B, h*w, f, C) -> (B*h*w, f, C)
Each is an ordinary multi-head attention (qkv/proj Linears with biases, as DiT's), with its own weights.
"""

from ptdit.layers import Attention


class SpatialAttention(Attention):
    """Self-attention within each frame."""

    def __init__(self, dim, num_heads, grid):
        super().__init__(dim, num_heads)
        self.grid = tuple(grid)

    def forward(self, x):
        b, n, c = x.shape
        f, h, w = self.grid
        return super().forward(x.reshape(b * f, h * w, c)).reshape(b, n, c)


class TemporalAttention(Attention):
    """Self-attention across frames at each spatial position."""

    def __init__(self, dim, num_heads, grid):
        super().__init__(dim, num_heads)
        self.grid = tuple(grid)

    def forward(self, x):
        b, n, c = x.shape
        f, h, w = self.grid
        per_position = x.reshape(b, f, h * w, c).transpose(1, 2).reshape(b * h * w, f, c)
        out = super().forward(per_position)
        return out.reshape(b, h * w, f, c).transpose(1, 2).reshape(b, n, c)
