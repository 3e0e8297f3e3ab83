"""DiT's DDPM objective and samplers (facebookresearch/DiT diffusion/)."""

from .gaussian_diffusion import GaussianDiffusion
from .guidance import cfg_inputs, drop_null_half
from .respace import SpacedDiffusion, space_timesteps
from .schedule import get_named_beta_schedule


def create_diffusion(timestep_respacing="", noise_schedule="linear", use_kl=False,
                     sigma_small=False, predict_xstart=False, learn_sigma=True,
                     rescale_learned_sigmas=False, diffusion_steps=1000):
    """DiT's create_diffusion (diffusion/__init__.py): same arguments, same defaults.

    Training: create_diffusion("") (all 1000 steps). Sampling: create_diffusion("250"), or
    "ddim50" etc. for DDIM strides. Defaults give eps prediction, learned-range variance and
    the MSE + VB loss.
    """
    betas = get_named_beta_schedule(noise_schedule, diffusion_steps)
    if use_kl:
        loss_type = "rescaled_kl"
    elif rescale_learned_sigmas:
        loss_type = "rescaled_mse"
    else:
        loss_type = "mse"
    if timestep_respacing is None or timestep_respacing == "":
        timestep_respacing = [diffusion_steps]
    if learn_sigma:
        var_type = "learned_range"
    else:
        var_type = "fixed_small" if sigma_small else "fixed_large"
    return SpacedDiffusion(
        use_timesteps=space_timesteps(diffusion_steps, timestep_respacing),
        betas=betas,
        mean_type="start_x" if predict_xstart else "epsilon",
        var_type=var_type,
        loss_type=loss_type,
    )


__all__ = ["create_diffusion", "GaussianDiffusion", "SpacedDiffusion", "space_timesteps",
           "get_named_beta_schedule", "cfg_inputs", "drop_null_half"]
