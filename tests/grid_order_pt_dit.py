"""FROZEN copy of the grid-order PT-DiT (ptdit/ at commit 7fd20e1, before issue 14 made the tokens
window-major): window partition/unpartition in every block, a roll + cached (B*windows, 1, T, T)
float bias for the shifted windows. Kept ONLY as the reference that tests/test_pt_dit_window_major.py
compares the window-major models against (same parameters, same state-dict keys, same outputs).
Do not import it from ptdit/ or bench/, and do not "fix" it: it is the old behaviour, verbatim.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from ptdit.backbone import DiffusionTransformer
from ptdit.layers import Attention, CrossAttention, Mlp, adaln_modulation, layer_norm, merge_heads, modulate, modulate_by
from ptdit.pt_dit import PTDiTConfig
from ptdit.pt_dit_text import PTDiTTextConfig
from ptdit.text_backbone import TextDiffusionTransformer


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


PROXY_MODES = ("mean", "top_left", "random", "similarity")
INJECTION_MODES = ("cross_attention", "interpolation", "linear")


def extract_proxies(x, grid, window, mode="mean"):
    """(B, N, C) tokens -> (B, num_windows, C) proxies, windows in grid order."""
    b, _, c = x.shape
    if mode == "mean":
        # Reduce over the window axes of a strided view: no copy of the tokens.
        (f, h, w), (pf, ph, pw) = grid, window
        return x.reshape(b, f // pf, pf, h // ph, ph, w // pw, pw, c).mean(dim=(2, 4, 6)).reshape(b, -1, c)
    windows = partition(x, grid, window)                       # (B*W, T, C)
    if mode == "top_left":
        proxies = windows[:, 0]
    elif mode == "random":
        # A fresh token per window at every call, as v1 of the paper describes.
        index = torch.randint(windows.shape[1], (windows.shape[0],), device=x.device)
        proxies = windows[torch.arange(windows.shape[0], device=x.device), index]
    elif mode == "similarity":
        unit = F.normalize(windows, dim=-1)
        score = (unit @ unit.transpose(1, 2)).sum(-1) - 1.0    # similarity to the others (self = 1)
        index = score.argmax(dim=1)
        proxies = windows[torch.arange(windows.shape[0], device=x.device), index]
    else:
        raise ValueError(f"unknown proxy mode '{mode}'; choose one of {PROXY_MODES}")
    return proxies.view(b, -1, c)


class GlobalInformationInteraction(nn.Module):
    """GIIM in two layouts (see ptdit/pt_dit_block.py for why there are two):

    released: proxies += SelfAttn(LN(p)); x += Linear_zero(CrossAttn(LN(x), LN(p))) with q, kv and
              proj Linears in the cross-attention (pt_dit_diffusers.py).
    compact:  both sub-layers adaLN-modulated and gated like DiT's (gates start at zero); the
              cross-attention projects only the proxies (kv), so it costs no per-token Linear.
    """

    def __init__(self, dim, num_heads, grid, window, proxy_mode="mean", injection="cross_attention",
                 layout="released"):
        super().__init__()
        check_windows(grid, window)
        if proxy_mode not in PROXY_MODES:
            raise ValueError(f"unknown proxy_mode '{proxy_mode}'; choose one of {PROXY_MODES}")
        if injection not in INJECTION_MODES:
            raise ValueError(f"unknown injection '{injection}'; choose one of {INJECTION_MODES}")
        self.grid, self.window = tuple(grid), tuple(window)
        self.proxy_grid = tuple(g // w for g, w in zip(grid, window))
        self.proxy_mode, self.injection, self.layout = proxy_mode, injection, layout
        compact = layout == "compact"
        num_proxies = self.proxy_grid[0] * self.proxy_grid[1] * self.proxy_grid[2]
        num_tokens = grid[0] * grid[1] * grid[2]

        self.norm_proxy = layer_norm(dim)
        self.proxy_attn = Attention(dim, num_heads)
        self.norm_x = layer_norm(dim)
        self.norm_context = layer_norm(dim)
        if injection == "cross_attention":
            self.cross_attn = CrossAttention(dim, num_heads, project_query=not compact, project_out=not compact)
        elif injection == "linear":
            # Our choice for "linear": a learned token-mixing map from the proxies to every token
            # (MLP-Mixer style), initialised to copy each window's proxy to its tokens.
            self.token_mixer = nn.Linear(num_proxies, num_tokens)
        # Released code: a zero-initialised Linear after the injection, so GIIM starts as identity.
        # The compact cross-attention has none (its adaLN gate starts at zero instead); the other
        # injections have no projection of their own and keep it in both layouts.
        keep = not compact or injection != "cross_attention"
        self.out = nn.Linear(dim, dim) if keep else nn.Identity()

    def zero_init(self):
        if isinstance(self.out, nn.Linear) and self.layout == "released":
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)
        if self.injection == "linear":
            with torch.no_grad():
                self.token_mixer.weight.copy_(self._window_membership())
                self.token_mixer.bias.zero_()

    def _window_membership(self):
        """(num_tokens, num_proxies) 0/1 matrix: token i lies in window j."""
        num_tokens = self.grid[0] * self.grid[1] * self.grid[2]
        window_of = partition(torch.arange(num_tokens, dtype=torch.float32).view(1, -1, 1),
                              self.grid, self.window).view(-1, self.window[0] * self.window[1] * self.window[2])
        member = torch.zeros(num_tokens, window_of.shape[0])
        member[window_of.long(), torch.arange(window_of.shape[0]).unsqueeze(1)] = 1.0
        return member

    def inject(self, queries, proxies):
        """Global information for every token, (B, N, C), from the (B, W, C) proxies."""
        context = self.norm_context(proxies)
        if self.injection == "cross_attention":
            return self.out(self.cross_attn(queries, context))
        if self.injection == "interpolation":
            # Our choice for "interpolation": trilinear upsampling of the proxy grid to the token grid.
            b, _, c = context.shape
            volume = context.transpose(1, 2).reshape(b, c, *self.proxy_grid)
            up = F.interpolate(volume, size=self.grid, mode="trilinear", align_corners=False)
            return self.out(up.flatten(2).transpose(1, 2))
        return self.out(self.token_mixer(context.transpose(1, 2)).transpose(1, 2))

    def forward(self, x, modulation=None):
        """modulation: None (released) or (shift_p, factor_p, gate_p, shift_x, factor_x, gate_x), each
        factor = 1 + scale (the block forms them in one add)."""
        proxies = extract_proxies(x, self.grid, self.window, self.proxy_mode)
        if modulation is None:
            proxies = proxies + self.proxy_attn(self.norm_proxy(proxies))
            return x + self.inject(self.norm_x(x), proxies)
        shift_p, factor_p, gate_p, shift_x, factor_x, gate_x = modulation
        proxies = proxies + gate_p.unsqueeze(1) * self.proxy_attn(modulate_by(self.norm_proxy(proxies), shift_p, factor_p))
        return x + gate_x.unsqueeze(1) * self.inject(modulate_by(self.norm_x(x), shift_x, factor_x), proxies)


MODULES = ("full", "no_giim", "no_swa", "no_tcm")
LAYOUTS = ("released", "compact")


class PTDiTBlock(nn.Module):
    def __init__(self, dim, num_heads, grid, window, mlp_ratio=4.0, proxy_mode="mean",
                 injection="cross_attention", modules="full", layout="released"):
        super().__init__()
        if modules not in MODULES:
            raise ValueError(f"unknown modules '{modules}'; choose one of {MODULES}")
        if layout not in LAYOUTS:
            raise ValueError(f"unknown block layout '{layout}'; choose one of {LAYOUTS}")
        self.compact = layout == "compact"
        self.giim = None if modules == "no_giim" else GlobalInformationInteraction(
            dim, num_heads, grid, window, proxy_mode, injection, layout)
        self.use_wa = modules != "no_tcm"
        self.use_sw = modules not in ("no_tcm", "no_swa")
        self.norm1 = layer_norm(dim)
        self.attn = WindowAttention(dim, num_heads, grid, window) if self.use_wa else None
        self.norm_sw = layer_norm(dim)
        self.sw_attn = ShiftedWindowAttention(dim, num_heads, grid, window) if self.use_sw else None
        self.sw_out = nn.Linear(dim, dim) if (self.use_sw and not self.compact) else None
        self.norm2 = layer_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        # shift/scale/gate for: window attn, MLP (DiT's 6), shifted windows; compact adds proxies
        # self-attention and the global injection.
        self.num_chunks = 15 if self.compact else 9
        self.adaLN_modulation = adaln_modulation(dim, self.num_chunks)
        # Chunks come as (shift, scale, gate) triples: True at every scale entry, so that one add
        # forms all the 1 + scale factors. Bool keeps the sum in the adaLN output's dtype (bf16 under
        # autocast, rounded exactly as `1 + scale` is).
        is_scale = (torch.arange(self.num_chunks) % 3 == 1).repeat_interleave(dim)
        self.register_buffer("scale_offset", is_scale, persistent=False)

    def zero_init(self):
        zero = [self.adaLN_modulation[-1]] + ([self.sw_out] if self.sw_out is not None else [])
        for layer in zero:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        if self.giim is not None:
            self.giim.zero_init()

    def forward(self, x, c):
        chunks = (self.adaLN_modulation(c) + self.scale_offset).chunk(self.num_chunks, dim=1)
        shift_msa, factor_msa, gate_msa, shift_mlp, factor_mlp, gate_mlp, shift_sw, factor_sw, gate_sw = chunks[:9]
        if self.giim is not None:
            x = self.giim(x, chunks[9:] if self.compact else None)
        if self.use_wa:
            x = x + gate_msa.unsqueeze(1) * self.attn(modulate_by(self.norm1(x), shift_msa, factor_msa))
        if self.use_sw:
            out = gate_sw.unsqueeze(1) * self.sw_attn(modulate_by(self.norm_sw(x), shift_sw, factor_sw))
            x = x + (self.sw_out(out) if self.sw_out is not None else out)
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate_by(self.norm2(x), shift_mlp, factor_mlp))


class PTDiTTextBlock(PTDiTBlock):
    def __init__(self, dim, num_heads, grid, window, mlp_ratio=4.0):
        super().__init__(dim, num_heads, grid, window, mlp_ratio, layout="released")
        del self.adaLN_modulation             # adaLN-single: the model's shared t_block replaces it
        self.scale_shift_table = nn.Parameter(torch.randn(9, dim) / dim ** 0.5)
        self.cross_attn = CrossAttention(dim, num_heads)

    def zero_init(self):
        nn.init.zeros_(self.sw_out.weight)
        nn.init.zeros_(self.sw_out.bias)
        self.giim.zero_init()

    def forward(self, x, t_mod, text, text_mask=None):
        chunks = (self.scale_shift_table[None] + t_mod.view(x.shape[0], 9, -1)).unbind(1)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp, shift_sw, scale_sw, gate_sw = chunks
        x = self.giim(x)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + self.sw_out(gate_sw.unsqueeze(1) * self.sw_attn(modulate(self.norm_sw(x), shift_sw, scale_sw)))
        x = x + self.cross_attn(x, text, attn_mask=text_mask)
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class GridOrderPTDiT(DiffusionTransformer):
    """The class-conditional PT-DiT as it was: tokens in grid order through every block."""
    config_class = PTDiTConfig

    def make_block(self, index):
        cfg = self.config
        return PTDiTBlock(cfg.hidden_size, cfg.num_heads, cfg.grid, cfg.window, cfg.mlp_ratio,
                          cfg.proxy_mode, cfg.injection, cfg.modules, cfg.layout)


class GridOrderPTDiTText(TextDiffusionTransformer):
    """The text-conditional PT-DiT as it was."""
    config_class = PTDiTTextConfig
    modulation_chunks = 9

    def make_block(self, index):
        cfg = self.config
        return PTDiTTextBlock(cfg.hidden_size, cfg.num_heads, cfg.grid, cfg.window, cfg.mlp_ratio)
