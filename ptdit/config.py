"""Model configurations as data.

Every model in the zoo is described by a frozen dataclass; `ptdit.create_model(name, **overrides)`
takes a registered config and replaces fields by name, so a typo in an override names itself.
"""

import dataclasses
import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class TransformerConfig:
    """Fields shared by every diffusion transformer (defaults: DiT-XL/2 on 256 px SD-VAE latents)."""

    input_size: int = 32           # latent height = width (256 px / 8x VAE)
    patch_size: int = 2
    in_channels: int = 4
    hidden_size: int = 1152
    depth: int = 28
    num_heads: int = 16
    mlp_ratio: float = 4.0
    class_dropout_prob: float = 0.1
    num_classes: int = 1000
    learn_sigma: bool = True
    video: bool = False            # True: inputs are (N, C, F, H, W) video latents
    num_frames: int = 1            # latent frames when video
    temporal_patch_size: int = 1

    @property
    def out_channels(self):
        return self.in_channels * 2 if self.learn_sigma else self.in_channels

    @property
    def grid(self):
        """Token grid (f, h, w) after patch embedding."""
        return (self.num_frames // self.temporal_patch_size, self.input_size // self.patch_size,
                self.input_size // self.patch_size)

    @property
    def input_shape(self):
        """Shape of one input sample, without the batch dimension."""
        if self.video:
            return (self.in_channels, self.num_frames, self.input_size, self.input_size)
        return (self.in_channels, self.input_size, self.input_size)

    def __post_init__(self):
        if self.input_size % self.patch_size:
            raise ValueError(f"input_size {self.input_size} is not divisible by patch_size "
                             f"{self.patch_size}; use a multiple of {self.patch_size}")
        if self.video and self.num_frames % self.temporal_patch_size:
            raise ValueError(f"num_frames {self.num_frames} is not divisible by temporal_patch_size "
                             f"{self.temporal_patch_size}")
        if not self.video and self.num_frames != 1:
            raise ValueError(f"num_frames={self.num_frames} needs video=True (image models have 1 frame)")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")


def replace(config, **overrides):
    """dataclasses.replace with an error that names an unknown key and the close valid ones."""
    names = [f.name for f in dataclasses.fields(config)]
    for key in overrides:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise TypeError(f"unknown config key '{key}' for {type(config).__name__}.{hint} "
                            f"Valid keys: {', '.join(names)}")
    return dataclasses.replace(config, **overrides)


def plain(value):
    """Tuples to lists, recursively: config values as YAML and JSON write them."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
