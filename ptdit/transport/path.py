"""Interpolation paths x_t = alpha_t * x1 + sigma_t * x0 (x0 noise, x1 data, t = 1 is data).

Follows willisma/SiT transport/path.py (ICPlan, GVPCPlan, VPCPlan). Each path gives alpha_t,
sigma_t and their time derivatives; from them follow the probability-flow drift written in
score form, the SDE diffusion coefficient, and the velocity <-> score <-> noise conversions.
Shapes: t is [B] and is broadcast over the remaining dimensions of x.
"""

import math

import torch


def expand_t_like_x(t, x):
    """Reshape t [B] to [B, 1, ..., 1] so that it broadcasts against x."""
    return t.view(t.size(0), *([1] * (x.ndim - 1)))


class LinearPath:
    """alpha_t = t, sigma_t = 1 - t; the target velocity is x1 - x0 (SiT: ICPlan)."""

    def alpha(self, t):
        """alpha_t and d alpha_t / dt."""
        return t, 1

    def sigma(self, t):
        """sigma_t and d sigma_t / dt."""
        return 1 - t, -1

    def d_alpha_alpha_ratio(self, t):
        """(d alpha_t / dt) / alpha_t, written per path to stay stable (SiT does the same)."""
        return 1 / t

    def drift(self, x, t):
        """Probability-flow ODE in score form: velocity = -drift_mean + drift_var * score.

        Returns (drift_mean, drift_var) = (-(alpha'/alpha) x, (alpha'/alpha) sigma^2 - sigma sigma')
        (SiT: compute_drift).
        """
        t = expand_t_like_x(t, x)
        ratio = self.d_alpha_alpha_ratio(t)
        sigma_t, d_sigma_t = self.sigma(t)
        return -ratio * x, ratio * sigma_t ** 2 - sigma_t * d_sigma_t

    def diffusion(self, x, t, form="constant", norm=1.0):
        """The SDE's diffusion coefficient w(t) (SiT: compute_diffusion); the noise is sqrt(2 w).

        SiT evaluates with form "sigma": w(t) = norm * sigma_t.
        """
        t = expand_t_like_x(t, x)
        if form == "constant":
            return norm
        if form == "SBDM":
            return norm * self.drift(x, t)[1]
        if form == "sigma":
            return norm * self.sigma(t)[0]
        if form == "linear":
            return norm * (1 - t)
        if form == "decreasing":
            return 0.25 * (norm * torch.cos(math.pi * t) + 1) ** 2
        if form in ("increasing-decreasing", "inccreasing-decreasing"):  # SiT spells it both ways
            return norm * torch.sin(math.pi * t) ** 2
        raise NotImplementedError(f"Diffusion form {form} not implemented")

    def score_from_velocity(self, velocity, x, t):
        """Score grad log p_t(x) from a velocity (SiT: get_score_from_velocity)."""
        t = expand_t_like_x(t, x)
        alpha_t, d_alpha_t = self.alpha(t)
        sigma_t, d_sigma_t = self.sigma(t)
        reverse_ratio = alpha_t / d_alpha_t
        var = sigma_t ** 2 - reverse_ratio * d_sigma_t * sigma_t
        return (reverse_ratio * velocity - x) / var

    def noise_from_velocity(self, velocity, x, t):
        """E[x0 | x_t] from a velocity (SiT: get_noise_from_velocity)."""
        t = expand_t_like_x(t, x)
        alpha_t, d_alpha_t = self.alpha(t)
        sigma_t, d_sigma_t = self.sigma(t)
        reverse_ratio = alpha_t / d_alpha_t
        var = reverse_ratio * d_sigma_t - sigma_t
        return (reverse_ratio * velocity - x) / var

    def velocity_from_score(self, score, x, t):
        """Velocity from a score (SiT: get_velocity_from_score)."""
        drift_mean, drift_var = self.drift(x, t)
        return drift_var * score - drift_mean

    def plan(self, t, x0, x1):
        """(t, x_t, u_t): the interpolant and its target velocity d x_t / dt (SiT: plan)."""
        te = expand_t_like_x(t, x1)
        alpha_t, d_alpha_t = self.alpha(te)
        sigma_t, d_sigma_t = self.sigma(te)
        return t, alpha_t * x1 + sigma_t * x0, d_alpha_t * x1 + d_sigma_t * x0


class GVPPath(LinearPath):
    """Generalised variance preserving: alpha_t = sin(pi t / 2), sigma_t = cos(pi t / 2)."""

    def alpha(self, t):
        return torch.sin(t * math.pi / 2), math.pi / 2 * torch.cos(t * math.pi / 2)

    def sigma(self, t):
        return torch.cos(t * math.pi / 2), -math.pi / 2 * torch.sin(t * math.pi / 2)

    def d_alpha_alpha_ratio(self, t):
        return math.pi / (2 * torch.tan(t * math.pi / 2))


class VPPath(LinearPath):
    """Score-SDE's VP path in SiT's time direction (SiT: VPCPlan).

    beta(s) = beta_min + s (beta_max - beta_min) with s = 1 - t; alpha_t = exp(log_mean_coeff),
    sigma_t = sqrt(1 - alpha_t^2). SiT names beta_min / beta_max sigma_min = 0.1 / sigma_max = 20.
    """

    def __init__(self, sigma_min=0.1, sigma_max=20.0):
        self.sigma_min, self.sigma_max = sigma_min, sigma_max

    def log_mean_coeff(self, t):
        return -0.25 * (1 - t) ** 2 * (self.sigma_max - self.sigma_min) - 0.5 * (1 - t) * self.sigma_min

    def d_log_mean_coeff(self, t):
        return 0.5 * (1 - t) * (self.sigma_max - self.sigma_min) + 0.5 * self.sigma_min

    def alpha(self, t):
        alpha_t = torch.exp(self.log_mean_coeff(t))
        return alpha_t, alpha_t * self.d_log_mean_coeff(t)

    def sigma(self, t):
        alpha_sq = torch.exp(2 * self.log_mean_coeff(t))
        sigma_t = torch.sqrt(1 - alpha_sq)
        return sigma_t, alpha_sq * (2 * self.d_log_mean_coeff(t)) / (-2 * sigma_t)

    def d_alpha_alpha_ratio(self, t):
        return self.d_log_mean_coeff(t)

    def drift(self, x, t):
        """The VP SDE's own drift: (-beta_t x / 2, beta_t / 2) (same value as the generic form)."""
        t = expand_t_like_x(t, x)
        beta_t = self.sigma_min + (1 - t) * (self.sigma_max - self.sigma_min)
        return -0.5 * beta_t * x, beta_t / 2


PATHS = {"Linear": LinearPath, "GVP": GVPPath, "VP": VPPath}
