"""Respacing: sample (or train) with a subset of the 1000 DDPM timesteps.

Follows facebookresearch/DiT diffusion/respace.py (space_timesteps, SpacedDiffusion,
_WrappedModel), from OpenAI's guided-diffusion. The kept steps get new betas chosen so that
their alphas_cumprod equal the original ones; the model still sees the ORIGINAL timestep
index (the wrapper maps respaced index i -> timestep_map[i]).
"""

import numpy as np
import torch

from .gaussian_diffusion import GaussianDiffusion


def space_timesteps(num_timesteps, section_counts):
    """Which of the original timesteps to keep, as a set of ints.

    section_counts: a list of ints or a comma-separated string ("250", "10,15,20"): the
    original steps are cut into equal sections and each is strided to its count, the
    fractional stride rounded. "ddimN" instead takes DDIM's integer stride
    range(0, T, k) with exactly N steps (an error if no integer stride gives N).
    """
    if isinstance(section_counts, str):
        if section_counts.startswith("ddim"):
            desired = int(section_counts[len("ddim"):])
            for stride in range(1, num_timesteps):
                if len(range(0, num_timesteps, stride)) == desired:
                    return set(range(0, num_timesteps, stride))
            raise ValueError(f"cannot create exactly {desired} steps with an integer stride")
        section_counts = [int(x) for x in section_counts.split(",")]
    size_per, extra = divmod(num_timesteps, len(section_counts))
    start, kept = 0, []
    for i, count in enumerate(section_counts):
        size = size_per + (1 if i < extra else 0)
        if size < count:
            raise ValueError(f"cannot divide section of {size} steps into {count}")
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        # A running float index rounded with Python's round(), exactly as DiT (summing the
        # stride, not multiplying it, so float rounding picks the same steps).
        index = 0.0
        for _ in range(count):
            kept.append(start + round(index))
            index += stride
        start += size
    return set(kept)


class TimestepMappedModel:
    """Calls `model` with original timesteps in place of respaced indices (DiT: _WrappedModel)."""

    def __init__(self, model, timestep_map):
        self.model = model
        self.timestep_map = timestep_map

    def __call__(self, x, ts, **kwargs):
        table = torch.tensor(self.timestep_map, device=ts.device, dtype=ts.dtype)
        return self.model(x, table[ts], **kwargs)


class SpacedDiffusion(GaussianDiffusion):
    """A GaussianDiffusion over the kept timesteps `use_timesteps` of a base schedule `betas`."""

    def __init__(self, use_timesteps, *, betas, **kwargs):
        self.use_timesteps = set(use_timesteps)
        self.original_num_steps = len(betas)
        base_alphas_cumprod = np.cumprod(1.0 - np.array(betas, dtype=np.float64))
        self.timestep_map = sorted(self.use_timesteps)
        kept = base_alphas_cumprod[self.timestep_map]
        # beta_i = 1 - abar_i / abar_{i-1} over kept steps, so the kept abar are unchanged.
        new_betas = 1 - kept / np.append(1.0, kept[:-1])
        super().__init__(betas=new_betas, **kwargs)

    def _wrap_model(self, model):
        if isinstance(model, TimestepMappedModel):
            return model
        return TimestepMappedModel(model, self.timestep_map)

    def p_mean_variance(self, model, *args, **kwargs):
        return super().p_mean_variance(self._wrap_model(model), *args, **kwargs)

    def training_losses(self, model, *args, **kwargs):
        return super().training_losses(self._wrap_model(model), *args, **kwargs)
