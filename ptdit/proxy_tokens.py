"""GIIM, the Global Information Interaction Module of PT-DiT (paper Sec. 3.1; released code
pt_dit_diffusers.py): one proxy token per window, self-attention among the proxies, and injection of
the proxies' global information back into every token.

    proxies = extract(x)                                  one per (pf, ph, pw) window
    proxies = proxies + SelfAttn(LN(proxies))             plain LN, no modulation, no gate
    x       = x + Linear_zero(inject(LN(x), LN(proxies)))

Extraction modes (paper Table 2b and the rebuttal): "mean" (released code, v2), "top_left",
"random" (v1 of the paper), "similarity" (rebuttal: the token with the largest summed cosine
similarity to the others in its window). Injection modes (Table 2c): "cross_attention" (released),
"interpolation" and "linear"; the paper does not define the last two, our choices are documented
on the functions below.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from ptdit.layers import Attention, CrossAttention, layer_norm, modulate_by
from ptdit.window_attention import check_windows, partition, to_window_major, window_order

PROXY_MODES = ("mean", "top_left", "random", "similarity")
INJECTION_MODES = ("cross_attention", "interpolation", "linear")


def extract_proxies(x, tokens_per_window, mode="mean"):
    """Window-major (B, N, C) tokens -> (B, num_windows, C) proxies, windows in grid order."""
    b, n, c = x.shape
    windows = x.view(b * n // tokens_per_window, tokens_per_window, c)      # a view: tokens are window-major
    if mode == "mean":
        proxies = windows.mean(dim=1)
    elif mode == "top_left":
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
        self.tokens_per_window = self.window[0] * self.window[1] * self.window[2]
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
            # Its rows stay in grid order (the checkpoint's layout); they are read in window order.
            self.token_mixer = nn.Linear(num_proxies, num_tokens)
            order = window_order(self.grid, self.window).to(self.token_mixer.weight.device)
            self.register_buffer("token_order", order, persistent=False)
        # Released code: a zero-initialised Linear after the injection, so GIIM starts as identity.
        # The compact cross-attention has none (its adaLN gate starts at zero instead); the other
        # injections have no projection of their own and keep it in both layouts.
        keep = not compact or injection != "cross_attention"
        self.out = nn.Linear(dim, dim) if keep else nn.Identity()

    def set_window(self, window):
        """One proxy per window of another size from now on (ptdit/dynamic_ratio.py). Only the "linear"
        injection has a parameter whose shape depends on the window (its token mixer), so it cannot."""
        window = tuple(int(w) for w in window)
        if window == self.window:
            return
        if self.injection == "linear":
            raise ValueError(f"injection 'linear' learns a proxies-to-tokens map for windows {self.window}; it cannot "
                             f"switch to {window}: use cross_attention or interpolation with a dynamic ratio")
        check_windows(self.grid, window)
        self.window = window
        self.proxy_grid = tuple(g // w for g, w in zip(self.grid, window))
        self.tokens_per_window = window[0] * window[1] * window[2]

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
        """Global information for every window-major token, (B, N, C), from the (B, W, C) proxies."""
        context = self.norm_context(proxies)
        if self.injection == "cross_attention":
            return self.out(self.cross_attn(queries, context))
        if self.injection == "interpolation":
            # Our choice for "interpolation": trilinear upsampling of the proxy grid to the token grid.
            b, _, c = context.shape
            volume = context.transpose(1, 2).reshape(b, c, *self.proxy_grid)
            up = F.interpolate(volume, size=self.grid, mode="trilinear", align_corners=False)
            return self.out(to_window_major(up.flatten(2).transpose(1, 2), self.grid, self.window))
        mixer = self.token_mixer
        mixed = F.linear(context.transpose(1, 2), mixer.weight[self.token_order], mixer.bias[self.token_order])
        return self.out(mixed.transpose(1, 2))

    def forward(self, x, modulation=None):
        """modulation: None (released) or (shift_p, factor_p, gate_p, shift_x, factor_x, gate_x), each
        factor = 1 + scale (the block forms them in one add)."""
        proxies = extract_proxies(x, self.tokens_per_window, self.proxy_mode)
        if modulation is None:
            proxies = proxies + self.proxy_attn(self.norm_proxy(proxies))
            return x + self.inject(self.norm_x(x), proxies)
        shift_p, factor_p, gate_p, shift_x, factor_x, gate_x = modulation
        proxies = proxies + gate_p.unsqueeze(1) * self.proxy_attn(modulate_by(self.norm_proxy(proxies), shift_p, factor_p))
        return x + gate_x.unsqueeze(1) * self.inject(modulate_by(self.norm_x(x), shift_x, factor_x), proxies)
