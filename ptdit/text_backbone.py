"""The text-to-image skeleton of PixArt-alpha (PixArt-alpha/PixArt-alpha diffusion/model/nets/PixArt.py),
shared by the PixArt-alpha baseline (baselines/pixart.py) and PT-DiT's text models (ptdit/pt_dit_text.py):

    tokens = PatchEmbed(x) + fixed sin-cos positions         2-D, or 3-D for video (f, h, w)
    t      = TimestepEmbedder(t);  t_mod = t_block(t)        adaLN-single: ONE Linear(D, chunks*D)
    text   = CaptionEmbedder(T5 tokens)                      Mlp(4096 -> D -> D), GELU(tanh)
    tokens = blocks(tokens, t_mod, text)                     each block adds its own (chunks, D) table
    out    = unpatchify(T2IFinalLayer(tokens, t))

Built for efficiency counting: parameter names follow PixArt's where they exist, but no released
checkpoint is loaded or tested against.
"""

from dataclasses import dataclass

import torch
import torch.nn as nn

from ptdit.backbone import DiffusionTransformer
from ptdit.config import TransformerConfig
from ptdit.embeddings import PatchEmbed, TimestepEmbedder, sincos_table
from ptdit.layers import Mlp, layer_norm, modulate


@dataclass(frozen=True)
class TextTransformerConfig(TransformerConfig):
    caption_channels: int = 4096      # T5-XXL hidden size
    text_tokens: int = 120            # PixArt-alpha's max caption length
    num_classes: int = 0              # no class labels


class CaptionEmbedder(nn.Module):
    """PixArt's y_embedder: an MLP from T5 features to the model width, and the learned null
    caption (y_embedding) used for unconditional calls (classifier-free guidance)."""

    def __init__(self, caption_channels, hidden_size, text_tokens):
        super().__init__()
        self.y_proj = Mlp(caption_channels, hidden_size)
        self.y_proj.fc2 = nn.Linear(hidden_size, hidden_size)
        self.y_embedding = nn.Parameter(torch.randn(text_tokens, caption_channels) / caption_channels ** 0.5)

    def forward(self, text, batch):
        # Anything but (B, tokens, channels) T5 features means "no caption": the generic zoo tools
        # (evaluation/efficiency/flops.py, `ptdit models`) call every model with DiT's (x, t, y), and this
        # keeps their count right (the null caption costs what a caption does).
        if text is None or text.dim() != 3:
            text = self.y_embedding.unsqueeze(0).repeat(batch, 1, 1)
        return self.y_proj(text)


def caption_key_mask(mask, text, batch):
    """(N, L) bool caption mask -> (N, 1, 1, L), the attn_mask of the cross-attention's SDPA call
    (True = attend), as PixArt-alpha masks T5 padding. None stays None (every token attended)."""
    if mask is None:
        return None
    if text is None or text.dim() != 3:
        raise ValueError("a caption mask was given without (N, tokens, channels) text features; "
                         "pass text with the mask, or neither for the null caption")
    if mask.shape != text.shape[:2] or mask.shape[0] != batch:
        raise ValueError(f"caption mask of shape {tuple(mask.shape)} does not match the text features "
                         f"{tuple(text.shape)} (expected ({batch}, {text.shape[1]}))")
    mask = mask.bool()
    if not mask.any(dim=1).all():
        raise ValueError("a caption mask row is all False (no token to attend to); keep at least one "
                         "token per caption (T5 and MiniLM always give an end/CLS token)")
    return mask[:, None, None, :]


class T2IFinalLayer(nn.Module):
    """LayerNorm, shift/scale from a learned (2, D) table plus the timestep embedding, Linear."""

    def __init__(self, hidden_size, patch_volume, out_channels):
        super().__init__()
        self.norm_final = layer_norm(hidden_size)
        self.linear = nn.Linear(hidden_size, patch_volume * out_channels)
        self.scale_shift_table = nn.Parameter(torch.randn(2, hidden_size) / hidden_size ** 0.5)

    def forward(self, x, t):
        shift, scale = (self.scale_shift_table[None] + t[:, None]).unbind(1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class TextDiffusionTransformer(DiffusionTransformer):
    """Subclasses provide make_block(index) -> a module forward(x, t_mod, text[, text_mask]) and set
    `modulation_chunks` (how many D-sized chunks the shared t_block produces). Blocks get text_mask
    (an SDPA key mask, see caption_key_mask) only when the caller passes a caption mask.

    Images (N, C, H, W) and, with video=True, video latents (N, C, F, H, W): the patch embedding,
    positions (3-D sin-cos) and final layer follow config.video / temporal_patch_size."""

    config_class = TextTransformerConfig
    modulation_chunks = 6

    def __init__(self, config):
        # The class-conditional parts of DiffusionTransformer (label embedder, per-block adaLN)
        # do not exist here, so its __init__ is replaced, not extended; unpatchify and
        # check_input are inherited as they are.
        nn.Module.__init__(self)
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config
        self.out_channels, self.patch_size, self.grid = config.out_channels, config.patch_size, config.grid
        hidden = config.hidden_size
        self.x_embedder = PatchEmbed(config.in_channels, hidden, config.patch_size,
                                     config.temporal_patch_size, config.video)
        self.t_embedder = TimestepEmbedder(hidden)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(hidden, self.modulation_chunks * hidden))
        self.y_embedder = CaptionEmbedder(config.caption_channels, hidden, config.text_tokens)
        num_tokens = self.grid[0] * self.grid[1] * self.grid[2]
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, hidden), requires_grad=False)
        self.blocks = nn.ModuleList([self.make_block(i) for i in range(config.depth)])
        patch_volume = config.temporal_patch_size * config.patch_size ** 2
        self.final_layer = T2IFinalLayer(hidden, patch_volume, self.out_channels)
        if self.pos_embed.device.type != "meta":
            self.pos_embed.data.copy_(sincos_table(hidden, self.grid).unsqueeze(0))

    def example_inputs(self, batch, device):
        """(x, t, text): latents, timesteps, T5 features (evaluation/efficiency/profile.py uses this)."""
        cfg = self.config
        x = torch.randn(batch, *cfg.input_shape, device=device)
        t = torch.randint(0, 1000, (batch,), device=device).float()
        text = torch.randn(batch, cfg.text_tokens, cfg.caption_channels, device=device)
        return x, t, text

    def forward(self, x, t, text=None, mask=None):
        """x: (N, C, H, W) latents or (N, C, F, H, W) video latents, t: (N,) timesteps, text:
        (N, tokens, caption_channels) text-encoder features or None (the learned null caption);
        mask: optional (N, tokens) bool, True for real caption tokens (padding is not attended)."""
        self.check_input(x)
        x = self.x_embedder(x) + self.pos_embed
        t = self.t_embedder(t)
        t_mod = self.t_block(t)
        key_mask = caption_key_mask(mask, text, x.shape[0])
        text = self.y_embedder(text, x.shape[0])
        extra = {} if key_mask is None else {"text_mask": key_mask}
        for block in self.blocks:
            x = block(x, t_mod, text, **extra)
        return self.unpatchify(self.final_layer(x, t))
