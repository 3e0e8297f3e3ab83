"""Beta schedules of DiT's DDPM.

Follows facebookresearch/DiT diffusion/gaussian_diffusion.py (get_named_beta_schedule,
get_beta_schedule, betas_for_alpha_bar), itself from OpenAI's improved-diffusion.
Only the named schedules are kept: DiT trains with "linear".
"""

import math

import numpy as np


def linear_betas(num_timesteps):
    """Ho et al.'s linear betas 1e-4..0.02, rescaled so any step count keeps the same shape.

    DiT: get_named_beta_schedule("linear", T) scales both ends by 1000 / T.
    """
    scale = 1000 / num_timesteps
    return np.linspace(scale * 0.0001, scale * 0.02, num_timesteps, dtype=np.float64)


def betas_for_alpha_bar(num_timesteps, alpha_bar, max_beta=0.999):
    """Betas that discretise a continuous alpha_bar(t), t in [0, 1] (DiT: betas_for_alpha_bar)."""
    t1 = np.arange(num_timesteps) / num_timesteps
    t2 = (np.arange(num_timesteps) + 1) / num_timesteps
    ratio = np.array([alpha_bar(b) / alpha_bar(a) for a, b in zip(t1, t2)])
    return np.minimum(1 - ratio, max_beta)


def cosine_alpha_bar(t):
    """Nichol & Dhariwal's cosine schedule ("squaredcos_cap_v2")."""
    return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2


def get_named_beta_schedule(name, num_timesteps):
    """Betas for a named schedule; DiT's create_diffusion uses name "linear"."""
    if name == "linear":
        return linear_betas(num_timesteps)
    if name == "squaredcos_cap_v2":
        return betas_for_alpha_bar(num_timesteps, cosine_alpha_bar)
    raise NotImplementedError(f"unknown beta schedule: {name}")
