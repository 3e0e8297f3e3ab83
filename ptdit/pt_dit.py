"""PT-DiT, the Proxy-Tokenized Diffusion Transformer (arXiv 2409.04005), class-conditional.

The DiT skeleton (ptdit/backbone.py) with PT-DiT blocks (ptdit/pt_dit_block.py). Works on image
latents (h, w) and video latents (f, h, w); the compression ratio (pf, ph, pw) is both the proxy
pooling size and the window size.

Tokens are window-major from the patch embedding to unpatchify (WindowMajorTokens, and
ptdit/window_attention.py for why); parameters and state-dict keys are DiT's, pos_embed included
(stored in grid order, read in window order).
"""

from dataclasses import dataclass

import torch

from ptdit.backbone import DiffusionTransformer
from ptdit.config import TransformerConfig
from ptdit.pt_dit_block import PTDiTBlock
from ptdit.window_attention import check_windows, window_order

# pt-dit.md: the ratio grows with resolution so that there are always 64 windows per frame group:
# (1,2,2) at 256 px ... (1,16,16) at 2048 px; pf = 4 for video.
WINDOWS_PER_SIDE = 8
VIDEO_PF = 4


def default_compression_ratio(grid, video):
    f, h, w = grid
    if h % WINDOWS_PER_SIDE or w % WINDOWS_PER_SIDE:
        raise ValueError(f"token grid {h}x{w} is not divisible into {WINDOWS_PER_SIDE}x{WINDOWS_PER_SIDE} "
                         f"windows; pass compression_ratio=(pf, ph, pw) that tiles ({f}, {h}, {w})")
    pf = min(VIDEO_PF, f) if video else 1
    return (pf, h // WINDOWS_PER_SIDE, w // WINDOWS_PER_SIDE)


class WindowedConfig:
    """compression_ratio -> window, checked against the token grid; shared by the class- and
    text-conditional PT-DiT configs (each declares the compression_ratio field itself)."""

    @property
    def window(self):
        if self.compression_ratio is None:
            return default_compression_ratio(self.grid, self.video)
        return tuple(int(r) for r in self.compression_ratio)

    def __post_init__(self):
        super().__post_init__()
        check_windows(self.grid, self.window)


@dataclass(frozen=True)
class PTDiTConfig(WindowedConfig, TransformerConfig):
    compression_ratio: tuple | None = None   # (pf, ph, pw); None: 64 windows per frame group
    proxy_mode: str = "mean"                 # mean | top_left | random | similarity   (Table 2b)
    injection: str = "cross_attention"       # cross_attention | interpolation | linear (Table 2c)
    modules: str = "full"                    # full | no_giim | no_swa | no_tcm          (Table 2a)
    layout: str = "released"                 # released | compact (ptdit/pt_dit_block.py)


class WindowMajorTokens:
    """Patch embedding and unpatchify of a DiffusionTransformer in window-major token order.

    The patch embedding's (N, D, f, h, w) output is read as windows, the positional table is the
    stored grid-order pos_embed permuted once (a non-persistent buffer, refreshed whenever a state
    dict is loaded), and the two become one add; unpatchify reads window order back. Both cost the
    same one copy as DiT's grid-order versions."""

    def setup_window_major(self):
        self.register_buffer("window_pos_embed", torch.empty_like(self.pos_embed), persistent=False)
        self.register_load_state_dict_post_hook(lambda module, keys: module.refresh_window_pos_embed())
        self.refresh_window_pos_embed()

    @torch.no_grad()
    def refresh_window_pos_embed(self):
        order = window_order(self.grid, self.config.window).to(self.pos_embed.device)
        self.window_pos_embed.copy_(self.pos_embed[:, order])

    def window_shape(self):
        """(f/pf, h/ph, w/pw, pf, ph, pw): the window-major token axis unflattened."""
        (f, h, w), (pf, ph, pw) = self.grid, self.config.window
        return (f // pf, h // ph, w // pw, pf, ph, pw)

    def embed_tokens(self, x):
        tokens = self.x_embedder.proj(x)
        n, d = tokens.shape[:2]
        ff, hh, ww, pf, ph, pw = self.window_shape()
        tokens = tokens.view(n, d, ff, pf, hh, ph, ww, pw).permute(0, 2, 4, 6, 3, 5, 7, 1)
        # positions first: the sum then takes their (contiguous) layout, one kernel, no extra copy
        return (self.window_pos_embed.view(1, ff, hh, ww, pf, ph, pw, d) + tokens).reshape(n, -1, d)

    def unpatchify(self, x):
        """(N, T, pt*p*p*C) window-major -> (N, C, H, W), or (N, C, F, H, W) for video."""
        n = x.shape[0]
        ff, hh, ww, pf, ph, pw = self.window_shape()
        pt, p, c = self.config.temporal_patch_size, self.patch_size, self.out_channels
        f, h, w = self.grid
        x = x.reshape(n, ff, hh, ww, pf, ph, pw, pt, p, p, c).permute(0, 10, 1, 4, 7, 2, 5, 8, 3, 6, 9)
        x = x.reshape(n, c, f * pt, h * p, w * p)
        return x if self.config.video else x.squeeze(2)


class PTDiT(WindowMajorTokens, DiffusionTransformer):
    config_class = PTDiTConfig

    def __init__(self, config):
        super().__init__(config)
        self.setup_window_major()

    def make_block(self, index):
        cfg = self.config
        return PTDiTBlock(cfg.hidden_size, cfg.num_heads, cfg.grid, cfg.window, cfg.mlp_ratio,
                          cfg.proxy_mode, cfg.injection, cfg.modules, cfg.layout)
