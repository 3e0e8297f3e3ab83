"""PT-DiT, the Proxy-Tokenized Diffusion Transformer (arXiv 2409.04005), class-conditional.

The DiT skeleton (ptdit/backbone.py) with PT-DiT blocks (ptdit/pt_dit_block.py). Works on image
latents (h, w) and video latents (f, h, w); the compression ratio (pf, ph, pw) is both the proxy
pooling size and the window size.
"""

from dataclasses import dataclass

from ptdit.backbone import DiffusionTransformer
from ptdit.config import TransformerConfig
from ptdit.pt_dit_block import PTDiTBlock
from ptdit.window_attention import check_windows

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


class PTDiT(DiffusionTransformer):
    config_class = PTDiTConfig

    def make_block(self, index):
        cfg = self.config
        return PTDiTBlock(cfg.hidden_size, cfg.num_heads, cfg.grid, cfg.window, cfg.mlp_ratio,
                          cfg.proxy_mode, cfg.injection, cfg.modules, cfg.layout)
