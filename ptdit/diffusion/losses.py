"""Likelihood terms of the variational bound, in nats.

Follows facebookresearch/DiT diffusion/diffusion_utils.py (normal_kl,
approx_standard_normal_cdf, discretized_gaussian_log_likelihood), from OpenAI's ADM.
"""

import math

import torch


def mean_flat(x):
    """Mean over all dimensions but the batch one (DiT: gaussian_diffusion.mean_flat)."""
    return x.mean(dim=list(range(1, x.ndim)))


def normal_kl(mean1, logvar1, mean2, logvar2):
    """KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))), elementwise; scalars broadcast."""
    ref = next(a for a in (mean1, logvar1, mean2, logvar2) if isinstance(a, torch.Tensor))
    # exp() needs tensors; DiT converts the scalar log-variances the same way.
    logvar1, logvar2 = (torch.as_tensor(v).to(ref) for v in (logvar1, logvar2))
    return 0.5 * (
        -1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
        + (mean1 - mean2) ** 2 * torch.exp(-logvar2)
    )


def approx_standard_normal_cdf(x):
    """The tanh approximation of the standard normal CDF that ADM and DiT use (not erf)."""
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def discretized_gaussian_log_likelihood(x, *, means, log_scales):
    """log P(bin of x) under N(means, exp(log_scales)^2), bins of width 2/255 in [-1, 1].

    x is data rescaled from uint8 to [-1, 1]; the two edge bins extend to +-infinity.
    """
    assert x.shape == means.shape == log_scales.shape
    inv_std = torch.exp(-log_scales)
    centered = x - means
    cdf_plus = approx_standard_normal_cdf(inv_std * (centered + 1.0 / 255.0))
    cdf_min = approx_standard_normal_cdf(inv_std * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(
        x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_delta)
    )
