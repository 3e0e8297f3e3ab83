"""TCM, the Texture Complement Module of PT-DiT (paper Sec. 3.2): window attention and Swin-style
shifted-window attention over a (f, h, w) token grid.

Tokens arrive as (B, N, C) in grid order (frame, row, column). A window is a (pf, ph, pw) block of
the grid, the compression ratio; windows are gathered into the batch dimension as (B * windows,
tokens per window, C), always ordered (batch, window), so every per-sample quantity stays with its
sample (the released code's `.repeat` broke this order; see pt-dit.md).
"""

import torch
import torch.nn.functional as F

from ptdit.layers import Attention, merge_heads


def check_windows(grid, window):
    """A clear error when a compression ratio does not tile the token grid."""
    if len(window) != 3 or any(int(w) < 1 for w in window):
        raise ValueError(f"compression ratio must be three positive ints (pf, ph, pw), got {window}")
    bad = [f"{name}={g} by {w}" for name, g, w in zip("fhw", grid, window) if g % w]
    if bad:
        valid = [[d for d in range(1, g + 1) if g % d == 0] for g in grid]
        raise ValueError(f"compression ratio {tuple(window)} does not tile the token grid {tuple(grid)} "
                         f"({', '.join(bad)} leaves a remainder); valid sizes per axis (f, h, w): {valid}")


def partition(x, grid, window):
    """(B, N, C) -> (B * num_windows, pf*ph*pw, C); windows in grid order within each sample."""
    b, _, c = x.shape
    (f, h, w), (pf, ph, pw) = grid, window
    x = x.view(b, f // pf, pf, h // ph, ph, w // pw, pw, c).permute(0, 1, 3, 5, 2, 4, 6, 7)
    return x.reshape(-1, pf * ph * pw, c)


def unpartition(windows, grid, window):
    """Inverse of partition: (B * num_windows, pf*ph*pw, C) -> (B, N, C)."""
    (f, h, w), (pf, ph, pw) = grid, window
    c = windows.shape[-1]
    x = windows.view(-1, f // pf, h // ph, w // pw, pf, ph, pw, c).permute(0, 1, 4, 2, 5, 3, 6, 7)
    return x.reshape(-1, f * h * w, c)


def shift_sizes(window):
    """Swin shifts the grid by half a window along each axis (pf//2, ph//2, pw//2)."""
    return tuple(p // 2 for p in window)


def roll_grid(x, grid, shifts):
    """Cyclic shift of a (B, N, C) token sequence as a (f, h, w) grid."""
    b, _, c = x.shape
    x = torch.roll(x.view(b, *grid, c), shifts=shifts, dims=(1, 2, 3))
    return x.view(b, -1, c)


def shifted_window_mask(grid, window, device=None):
    """(num_windows, T, T) bool, True where two tokens of a shifted window may attend to each other.

    After the roll, a window at the grid's edge holds tokens from up to 2^3 regions that were not
    neighbours before it; tokens attend only within their own region (Swin, Liu et al. 2021, Sec 3.2).
    """
    shifts = shift_sizes(window)
    region = torch.zeros(*grid, dtype=torch.long, device=device)
    for axis, (size, win, shift) in enumerate(zip(grid, window, shifts)):
        ids = torch.zeros(size, dtype=torch.long, device=device)
        if shift:
            ids[size - win: size - shift] = 1
            ids[size - shift:] = 2
        shape = [1, 1, 1]
        shape[axis] = size
        region = region * 3 + ids.view(shape)
    regions = partition(region.view(1, -1, 1), grid, window).squeeze(-1)   # (windows, T)
    return regions[:, :, None] == regions[:, None, :]


class WindowAttention(Attention):
    """Self-attention inside non-overlapping windows; keys qkv/proj as a DiT attention."""

    def __init__(self, dim, num_heads, grid, window):
        super().__init__(dim, num_heads)
        check_windows(grid, window)
        self.grid, self.window = tuple(grid), tuple(window)

    def attend(self, windows, mask=None):
        return super().forward(windows, attn_mask=mask)

    def forward(self, x):
        out = self.attend(partition(x, self.grid, self.window))
        return unpartition(out, self.grid, self.window)


class _PermuteTokens(torch.autograd.Function):
    """x[:, order] whose backward is the inverse gather g[:, inverse]: autograd's default backward of
    indexing is an accumulating scatter (index_put_), several times slower on CPU, and a permutation
    never needs to accumulate."""

    @staticmethod
    def forward(ctx, x, order, inverse):
        ctx.save_for_backward(inverse)
        return x[:, order]

    @staticmethod
    def backward(ctx, grad):
        (inverse,) = ctx.saved_tensors
        return grad[:, inverse], None, None


def permute_tokens(x, order, inverse):
    """(B, N, C) tokens reordered by a permutation `order` (inverse = argsort(order))."""
    return _PermuteTokens.apply(x, order, inverse)


class ShiftedWindowAttention(WindowAttention):
    """Window attention on the grid rolled by half a window, masked so that tokens from different
    original regions never attend to each other, then rolled back.

    Roll + partition is one fixed permutation of the tokens, precomputed as an index: one gather
    in and one out per call instead of four copies."""

    def __init__(self, dim, num_heads, grid, window):
        super().__init__(dim, num_heads, grid, window)
        self.shifts = shift_sizes(self.window)
        n = self.grid[0] * self.grid[1] * self.grid[2]
        tokens = torch.arange(n).view(1, n, 1)
        order = partition(roll_grid(tokens, self.grid, tuple(-s for s in self.shifts)), self.grid, self.window)
        self.register_buffer("order", order.flatten(), persistent=False)
        self.register_buffer("inverse", torch.argsort(self.order), persistent=False)
        self.register_buffer("mask", shifted_window_mask(self.grid, self.window), persistent=False)
        self._bias_cache = {}

    def attention_bias(self, batch, dtype, device):
        """The mask as SDPA's additive bias (0 / -inf), (B*windows, 1, T, T) in (batch, window) order.

        SDPA would turn a bool mask into exactly this bias at every call (where + two scalars), and
        the batch needs a repeat (a (windows, 1, T, T) mask cannot broadcast over B*windows): built once
        per (batch, dtype, device) and reused, it costs no kernel launch per call."""
        key = (batch, dtype, device)
        if key not in self._bias_cache:
            mask = self.mask.to(device).unsqueeze(1).repeat(batch, 1, 1, 1)
            bias = torch.zeros(mask.shape, dtype=dtype, device=device).masked_fill_(~mask, float("-inf"))
            self._bias_cache = {key: bias}      # keep one: batch, dtype and device rarely change
        return self._bias_cache[key]

    def forward(self, x):
        if not any(self.shifts):
            return super().forward(x)      # a 1x1x1 window has nothing to shift
        b, n, c = x.shape
        windows = permute_tokens(x, self.order, self.inverse).view(-1, self.mask.shape[-1], c)
        q, k, v = self.qkv_heads(windows)
        bias = self.attention_bias(b, q.dtype, q.device)
        out = merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=bias))
        return permute_tokens(self.proj(out).view(b, n, c), self.inverse, self.order)
