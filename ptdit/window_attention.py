"""TCM, the Texture Complement Module of PT-DiT (paper Sec. 3.2): window attention and Swin-style
shifted-window attention over a (f, h, w) token grid.

Tokens are window-major through the whole PT-DiT network, as the released code keeps its hidden
states "(b p) n c" (pt_dit_diffusers.py): (B, N, C) with N ordered (window, token in window), the
windows in grid order and the tokens of a window in (pf, ph, pw) raster order. The patch embedding
emits this order and unpatchify reads it (ptdit/pt_dit.py), so a window is a contiguous slice:
window attention is a view of the tokens, never a copy, and every per-sample quantity stays with
its sample (the released code's `.repeat` broke this; see pt-dit.md).
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
    """Grid-order (B, N, C) -> (B * num_windows, pf*ph*pw, C); windows in grid order within each sample."""
    b, _, c = x.shape
    (f, h, w), (pf, ph, pw) = grid, window
    x = x.view(b, f // pf, pf, h // ph, ph, w // pw, pw, c).permute(0, 1, 3, 5, 2, 4, 6, 7)
    return x.reshape(-1, pf * ph * pw, c)


def unpartition(windows, grid, window):
    """Inverse of partition: (B * num_windows, pf*ph*pw, C) -> grid-order (B, N, C)."""
    (f, h, w), (pf, ph, pw) = grid, window
    c = windows.shape[-1]
    x = windows.view(-1, f // pf, h // ph, w // pw, pf, ph, pw, c).permute(0, 1, 4, 2, 5, 3, 6, 7)
    return x.reshape(-1, f * h * w, c)


def to_window_major(x, grid, window):
    """Grid-order (B, N, C) tokens -> window-major (B, N, C)."""
    return partition(x, grid, window).view(x.shape)


def to_grid_order(x, grid, window):
    """Window-major (B, N, C) tokens -> grid order (B, N, C)."""
    return unpartition(x.view(-1, window[0] * window[1] * window[2], x.shape[-1]), grid, window)


def window_order(grid, window):
    """(N,) long, on the CPU: the grid index of each window-major token."""
    n = grid[0] * grid[1] * grid[2]
    return partition(torch.arange(n, device="cpu").view(1, n, 1), grid, window).flatten()


def shift_sizes(window):
    """Swin shifts the grid by half a window along each axis (pf//2, ph//2, pw//2)."""
    return tuple(p // 2 for p in window)


def shifted_regions(grid, window):
    """Swin's masked shifted windows as groups of grid tokens that attend only among themselves.

    Rolling the grid by -shift, cutting windows and masking tokens that were not neighbours before
    the roll (Swin, Liu et al. 2021, Sec. 3.2) is, along each axis, attention inside the segments
    [0, s), [s, s + w), [s + w, s + 2w), ..., [g - w + s, g) of the unrolled grid: windows offset by
    half a window, clipped at the grid's border. A group is one segment per axis. Returns a list of
    (group size, (groups, size) long tensor of grid indices), largest groups first, each group's
    tokens in grid order."""
    segment_ids = []
    for size, win, shift in zip(grid, window, shift_sizes(window)):
        c = torch.arange(size, device="cpu")      # index bookkeeping: on the CPU even in a meta-device build
        segment_ids.append(torch.where(c < shift, 0, 1 + (c - shift) // win) if shift else c // win)
    f, h, w = (s.max().item() + 1 for s in segment_ids)
    group = (segment_ids[0].view(-1, 1, 1) * h + segment_ids[1].view(1, -1, 1)) * w + segment_ids[2].view(1, 1, -1)
    group = group.flatten()
    by_group = torch.argsort(group, stable=True)                   # grid indices, group by group
    sizes = torch.bincount(group, minlength=f * h * w)
    classes, start = {}, 0
    for g, count in enumerate(sizes.tolist()):
        classes.setdefault(count, []).append(by_group[start:start + count])
        start += count
    return [(size, torch.stack(members)) for size, members in sorted(classes.items(), reverse=True)]


class WindowAttention(Attention):
    """Self-attention inside non-overlapping windows of window-major tokens; keys qkv/proj as a DiT
    attention."""

    def __init__(self, dim, num_heads, grid, window):
        super().__init__(dim, num_heads)
        check_windows(grid, window)
        self.grid, self.window = tuple(grid), tuple(window)
        self.tokens_per_window = self.window[0] * self.window[1] * self.window[2]

    def set_window(self, window):
        """Attend inside windows of another size from now on: the attention has no parameter that
        depends on the window, so one set of weights serves every ratio (ptdit/dynamic_ratio.py)."""
        check_windows(self.grid, window)
        self.window = tuple(int(w) for w in window)
        self.tokens_per_window = self.window[0] * self.window[1] * self.window[2]

    def forward(self, x):
        b, n, c = x.shape
        return super().forward(x.view(-1, self.tokens_per_window, c)).view(b, n, c)


class _PermuteRows(torch.autograd.Function):
    """x[order] whose backward is the inverse gather g[inverse]: autograd's default backward of
    indexing is an accumulating scatter (index_put_), several times slower on CPU, and a permutation
    never needs to accumulate."""

    @staticmethod
    def forward(ctx, x, order, inverse):
        ctx.save_for_backward(inverse)
        return x[order]

    @staticmethod
    def backward(ctx, grad):
        (inverse,) = ctx.saved_tensors
        return grad[inverse], None, None


def permute_rows(x, order, inverse):
    """Rows of a 2-D tensor reordered by a permutation `order` (inverse = argsort(order))."""
    return _PermuteRows.apply(x, order, inverse)


class ShiftedWindowAttention(WindowAttention):
    """Swin's shifted-window attention without a mask: attention inside the groups of
    shifted_regions, which is what the roll + mask computes (tests/test_pt_dit_window_major.py).

    The groups come in a few sizes (interior windows T; border pieces T/2, T/4, ... for even
    windows). One gather puts the batch's rows in (size class, sample, group, token) order, so each
    class is a contiguous block of rows that SDPA reads as (samples * groups, heads, size, d): one
    fused, unmasked SDPA call per class, the qkv and proj Linears on all tokens at once, and one
    gather back. No (B * windows, 1, T, T) bias is built, and SDPA keeps its fused (flash) kernels,
    which a mask turns off on a GPU."""

    def __init__(self, dim, num_heads, grid, window):
        super().__init__(dim, num_heads, grid, window)
        self.shifts, self.class_shapes, order = self.layout(self.window)
        self.register_buffer("order", order.to(self.qkv.weight.device), persistent=False)
        self._rows_cache = {}
        self._layouts = {}           # (window, device) -> layout(window), for set_window

    def layout(self, window):
        """(shifts, [(group size, groups)] per size class, (N,) window-major row of every group token)."""
        classes = shifted_regions(self.grid, window)
        # window-major position of every grid token: the groups as rows of window-major tokens
        position = torch.argsort(window_order(self.grid, window))
        order = torch.cat([position[members].flatten() for _, members in classes])
        return shift_sizes(window), [(size, members.shape[0]) for size, members in classes], order

    def set_window(self, window):
        """Shifted windows of another size; their layout is computed once per window."""
        window = tuple(int(w) for w in window)
        if window == self.window:
            return
        super().set_window(window)
        key = (window, self.qkv.weight.device)
        if key not in self._layouts:
            shifts, class_shapes, order = self.layout(window)
            self._layouts[key] = (shifts, class_shapes, order.to(key[1]))
        self.shifts, self.class_shapes, self.order = self._layouts[key]

    def rows(self, batch, device):
        """(order, inverse) over the batch's B*N rows, class-major; built once per batch size (and
        window: a dynamic ratio switches between a few)."""
        key = (batch, device, self.window)
        if key not in self._rows_cache:
            n = self.order.numel()
            order, start = [], 0
            for size, groups in self.class_shapes:
                part = self.order[start:start + size * groups].to(device)
                order.append((torch.arange(batch, device=device).view(-1, 1) * n + part).flatten())
                start += size * groups
            order = torch.cat(order)
            if len(self._rows_cache) >= 8:
                self._rows_cache.clear()      # keep a few: the batch size and window rarely change
            self._rows_cache[key] = (order, torch.argsort(order))
        return self._rows_cache[key]

    def forward(self, x):
        if not any(self.shifts):
            return super().forward(x)      # a 1x1x1 window has nothing to shift
        b, n, c = x.shape
        order, inverse = self.rows(b, x.device)
        qkv = self.qkv(permute_rows(x.reshape(b * n, c), order, inverse))
        # split, not slices: its backward is one cat, a slice's a zero-filled copy each
        parts = qkv.split([b * groups * size for size, groups in self.class_shapes])
        outs = []
        for part, (size, groups) in zip(parts, self.class_shapes):
            part = part.view(b * groups, size, 3, self.num_heads, c // self.num_heads)
            q, k, v = (t.transpose(1, 2) for t in part.unbind(2))
            outs.append(merge_heads(F.scaled_dot_product_attention(q, k, v)).reshape(-1, c))
        out = self.proj(torch.cat(outs) if len(outs) > 1 else outs[0])
        return permute_rows(out, inverse, order).view(b, n, c)
