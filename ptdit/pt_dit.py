"""PT-DiT, the Proxy-Tokenized Diffusion Transformer (arXiv 2409.04005), class-conditional.

The DiT skeleton (ptdit/backbone.py) with PT-DiT blocks (ptdit/pt_dit_block.py). Works on image
latents (h, w) and video latents (f, h, w); the compression ratio (pf, ph, pw) is both the proxy
pooling size and the window size.

Tokens are window-major from the patch embedding to unpatchify (WindowMajorTokens, and
ptdit/window_attention.py for why); parameters and state-dict keys are DiT's, pos_embed included
(stored in grid order, read in window order).

`dynamic_ratio` (issue 16, ptdit/dynamic_ratio.py) picks the ratio of each forward call from t. No
parameter depends on the ratio (window attention, GIIM's proxies and their attention are the same
Linears at any window; only the "linear" injection is excluded), so one set of weights serves every
ratio: a call switches the windows of every module, positions and unpatchify included, and back.
"""

from dataclasses import dataclass

import torch

from ptdit.backbone import DiffusionTransformer
from ptdit.config import TransformerConfig
from ptdit.dynamic_ratio import TIME_KINDS, bucket_of, parse_schedule
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
    dynamic_ratio: tuple | None = None       # ((noise-fraction bound, (pf, ph, pw)), ...): ptdit/dynamic_ratio.py
    dynamic_ratio_time: str = "ddpm"         # how t reads as a noise level: ddpm | sit (ptdit train: the objective's)

    def __post_init__(self):
        super().__post_init__()
        if self.dynamic_ratio is None:
            return
        for _, ratio in parse_schedule(self.dynamic_ratio):
            check_windows(self.grid, ratio)
        if self.dynamic_ratio_time not in TIME_KINDS:
            raise ValueError(f"dynamic_ratio_time '{self.dynamic_ratio_time}' is not one of {TIME_KINDS}")
        if self.injection == "linear":
            raise ValueError("dynamic_ratio needs parameters shared by every ratio, and injection 'linear' has a "
                             "proxies-to-tokens map per ratio; use injection cross_attention or interpolation")


class WindowMajorTokens:
    """Patch embedding and unpatchify of a DiffusionTransformer in window-major token order.

    The patch embedding's (N, D, f, h, w) output is read as windows, the positional table is the
    stored grid-order pos_embed permuted once (a non-persistent buffer, refreshed whenever a state
    dict is loaded), and the two become one add; unpatchify reads window order back. Both cost the
    same one copy as DiT's grid-order versions."""

    def setup_window_major(self):
        self.window = tuple(self.config.window)
        self.register_buffer("window_pos_embed", torch.empty_like(self.pos_embed), persistent=False)
        self.register_load_state_dict_post_hook(lambda module, keys: module.refresh_window_pos_embed())
        self.refresh_window_pos_embed()

    @torch.no_grad()
    def refresh_window_pos_embed(self):
        order = window_order(self.grid, self.window).to(self.pos_embed.device)
        self.window_pos_embed.copy_(self.pos_embed[:, order])

    @torch.no_grad()
    def set_window(self, window):
        """Patch order, positions and unpatchify for windows of another size (a dynamic ratio)."""
        window = tuple(int(w) for w in window)
        if window == self.window:
            return
        check_windows(self.grid, window)
        self.window = window
        self.window_pos_embed = self.pos_embed[:, window_order(self.grid, window).to(self.pos_embed.device)]

    def window_shape(self):
        """(f/pf, h/ph, w/pw, pf, ph, pw): the window-major token axis unflattened."""
        (f, h, w), (pf, ph, pw) = self.grid, self.window
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
        self.ratio_schedule = parse_schedule(config.dynamic_ratio) if config.dynamic_ratio is not None else None

    def use_window(self, window):
        """Every window-dependent module (tokens, window and shifted-window attention, GIIM) at `window`."""
        for module in self.modules():
            if hasattr(module, "set_window"):
                module.set_window(window)

    def forward_at(self, window, x, t, y):
        """One forward call at `window`; the model is back at its built window afterwards, so its
        buffers are the same on every process between calls (DDP broadcasts buffers before a forward)."""
        self.use_window(window)
        try:
            return super().forward(x, t, y)
        finally:
            self.use_window(self.config.window)

    def forward(self, x, t, y):
        if self.ratio_schedule is None:
            return super().forward(x, t, y)
        if t.device.type == "meta":
            raise ValueError("a dynamic-ratio PT-DiT's cost depends on t: count it per ratio "
                             "(evaluation/efficiency/dynamic_ratio_cost.py)")
        # Training draws t per sample, so a batch may span buckets: it is split by bucket and each part
        # runs at its ratio (rather than one bucket drawn per batch and t drawn inside it). That keeps
        # every sample's t a function of (seed, step, position) as all draws are (ptdit/data/order.py),
        # so one process equals DDP and a resumed run is bit-exact with no new RNG state, and the t
        # distribution is the objective's own. A sample's output never depends on its batch-mates
        # (per-sample modulation, attention within a sample), so the split changes no value; it costs
        # one smaller forward per bucket present. Samplers call with one t for the whole batch: one part.
        buckets = bucket_of(t, self.ratio_schedule, self.config.dynamic_ratio_time)
        present = torch.unique(buckets).tolist()
        if len(present) == 1:
            return self.forward_at(self.ratio_schedule[present[0]][1], x, t, y)
        parts, rows = [], []
        for b in present:
            index = torch.nonzero(buckets == b).squeeze(1)
            parts.append(self.forward_at(self.ratio_schedule[b][1], x[index], t[index], y[index]))
            rows.append(index)
        return torch.cat(parts)[torch.argsort(torch.cat(rows))]

    def make_block(self, index):
        cfg = self.config
        return PTDiTBlock(cfg.hidden_size, cfg.num_heads, cfg.grid, cfg.window, cfg.mlp_ratio,
                          cfg.proxy_mode, cfg.injection, cfg.modules, cfg.layout)
