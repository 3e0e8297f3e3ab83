"""The diffusion-transformer skeleton every model in the zoo shares (DiT models.py, top to bottom):

    tokens = PatchEmbed(x) + fixed sin-cos positions
    c      = TimestepEmbedder(t) + LabelEmbedder(y)
    tokens = blocks(tokens, c)            <- the only part the model families change
    out    = unpatchify(FinalLayer(tokens, c))

Subclasses provide `make_block(index)`. A block is a module `forward(x, c)` with an optional
`zero_init()` that zeroes its adaLN and output layers (DiT's initialisation makes every block the
identity at step 0).
"""

import torch
import torch.nn as nn

from ptdit.config import TransformerConfig
from ptdit.embeddings import LabelEmbedder, PatchEmbed, TimestepEmbedder, sincos_table
from ptdit.layers import FinalLayer


class DiffusionTransformer(nn.Module):
    config_class = TransformerConfig

    def __init__(self, config):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config
        self.in_channels = config.in_channels
        self.out_channels = config.out_channels
        self.learn_sigma = config.learn_sigma
        self.patch_size = config.patch_size
        self.num_heads = config.num_heads
        self.grid = config.grid
        hidden = config.hidden_size

        self.x_embedder = PatchEmbed(config.in_channels, hidden, config.patch_size,
                                     config.temporal_patch_size, config.video)
        self.t_embedder = TimestepEmbedder(hidden)
        self.y_embedder = LabelEmbedder(config.num_classes, hidden, config.class_dropout_prob)
        num_tokens = self.grid[0] * self.grid[1] * self.grid[2]
        # Fixed, but stored as a parameter because it is in the official state dicts.
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, hidden), requires_grad=False)
        self.blocks = nn.ModuleList([self.make_block(i) for i in range(config.depth)])
        patch_volume = config.temporal_patch_size * config.patch_size ** 2
        self.final_layer = FinalLayer(hidden, patch_volume, self.out_channels)
        self.initialize_weights()

    def make_block(self, index):
        raise NotImplementedError

    def initialize_weights(self):
        """DiT's initialisation: xavier-uniform Linears, patch embedding like a Linear, N(0, 0.02)
        embeddings, zeroed adaLN and output layers."""
        def basic_init(module):
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        self.apply(basic_init)
        if self.pos_embed.device.type != "meta":
            self.pos_embed.data.copy_(sincos_table(self.config.hidden_size, self.grid).unsqueeze(0))
        w = self.x_embedder.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.proj.bias)
        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for block in self.blocks:
            if hasattr(block, "zero_init"):
                block.zero_init()
        for layer in (self.final_layer.adaLN_modulation[-1], self.final_layer.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def check_input(self, x):
        expected = tuple(self.config.input_shape)
        if tuple(x.shape[1:]) != expected:
            raise ValueError(f"{type(self).__name__} was built for inputs of shape (N, {', '.join(map(str, expected))}), "
                             f"got {tuple(x.shape)}; rebuild it with input_size/num_frames/in_channels to match")

    def embed_tokens(self, x):
        """(N, C, H, W) latents -> (N, T, D) tokens with positions, in the order the blocks use."""
        return self.x_embedder(x) + self.pos_embed

    def unpatchify(self, x):
        """(N, T, pt*p*p*C) -> (N, C, H, W), or (N, C, F, H, W) for video. Same element order as DiT's
        einsum 'nhwpqc->nchpwq'."""
        n = x.shape[0]
        f, h, w = self.grid
        pt, p, c = self.config.temporal_patch_size, self.patch_size, self.out_channels
        x = x.reshape(n, f, h, w, pt, p, p, c).permute(0, 7, 1, 4, 2, 5, 3, 6)
        x = x.reshape(n, c, f * pt, h * p, w * p)
        return x if self.config.video else x.squeeze(2)

    def forward(self, x, t, y):
        """x: (N, C, H, W) latents, t: (N,) timesteps, y: (N,) class labels (num_classes = null)."""
        self.check_input(x)
        x = self.embed_tokens(x)
        c = self.t_embedder(t) + self.y_embedder(y, self.training)
        for block in self.blocks:
            x = block(x, c)
        return self.unpatchify(self.final_layer(x, c))

    def forward_with_cfg(self, x, t, y, cfg_scale):
        """Classifier-free guidance as the official DiT/SiT code: the first half of the batch is
        conditional, the second half unconditional (null labels); guidance is applied to the first
        three channels only, kept "for exact reproducibility" in DiT models.py."""
        half = x[: len(x) // 2]
        model_out = self.forward(torch.cat([half, half], dim=0), t, y)
        eps, rest = model_out[:, :3], model_out[:, 3:]
        cond_eps, uncond_eps = torch.split(eps, len(eps) // 2, dim=0)
        half_eps = uncond_eps + cfg_scale * (cond_eps - uncond_eps)
        return torch.cat([torch.cat([half_eps, half_eps], dim=0), rest], dim=1)
