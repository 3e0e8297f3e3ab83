"""DiT's DDPM (ptdit/diffusion) against closed forms.

Formulas are re-derived here independently (Bayes' rule for the posterior, torch.distributions
for the KL, erf for the bin likelihood), and every sampler is driven by the exact eps of a 2-D
Gaussian data distribution N(MEAN, COV): its samples must have that mean and covariance within
sampling error (tolerances from the standard error, fixed seeds).
"""

import math

import numpy as np
import pytest
import torch

from ptdit.diffusion import create_diffusion, space_timesteps
from ptdit.diffusion.guidance import cfg_inputs, drop_null_half
from ptdit.diffusion.losses import discretized_gaussian_log_likelihood, normal_kl

F64 = torch.float64
MEAN = torch.tensor([0.5, -0.3], dtype=F64)
COV = torch.tensor([[0.6, 0.3], [0.3, 0.4]], dtype=F64)
EVALS, EVECS = torch.linalg.eigh(COV)
N_SAMPLES = 6000


pytestmark = pytest.mark.usefixtures("one_thread")   # tiny tensors: one thread is fastest (conftest.py)


def alphas_cumprod_by_loop(betas):
    """abar_t = prod_{s <= t} (1 - beta_s), written as a plain loop (independent of the code)."""
    out, prod = [], 1.0
    for b in betas:
        prod *= 1.0 - b
        out.append(prod)
    return np.array(out)


def assert_gaussian(x, mean, cov, n_se=4.5, bias=0.0):
    """Sample mean / covariance within n_se standard errors (+ a known discretisation bias)."""
    n = x.shape[0]
    var = torch.diagonal(cov)
    mean_err = (x.mean(0) - mean).abs()
    mean_tol = n_se * torch.sqrt(var / n) + bias
    cov_err = (torch.cov(x.T) - cov).abs()
    cov_tol = n_se * torch.sqrt((var[:, None] * var[None, :] + cov ** 2) / n) + bias
    assert torch.isfinite(x).all()
    assert (mean_err <= mean_tol).all(), (mean_err, mean_tol)
    assert (cov_err <= cov_tol).all(), (cov_err, cov_tol)
    return mean_err.max().item(), cov_err.max().item()


class GaussianEpsOracle:
    """The exact eps-prediction for data N(mean, COV), plus a constant learned-range channel.

    x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps  =>  E[eps | x_t] = sqrt(1 - abar) Sigma_t^-1
    (x_t - sqrt(abar) mean), Sigma_t = abar COV + (1 - abar) I. Called with ORIGINAL timesteps.
    """

    def __init__(self, var_value=1.0, means=None):
        self.abar = torch.from_numpy(alphas_cumprod_by_loop(np.linspace(1e-4, 0.02, 1000)))
        self.var_value = var_value
        self.means = means  # optional per-class means, indexed by y
        self.seen_t = []

    def eps(self, x, t, mean):
        a = self.abar[t].to(x).view(-1, 1)
        r = (x - a.sqrt() * mean) @ EVECS.to(x)
        prec_r = (r / (a * EVALS.to(x) + 1 - a)) @ EVECS.T.to(x)
        return (1 - a).sqrt() * prec_r

    def __call__(self, x, t, y=None):
        self.seen_t.append(t.clone())
        mean = MEAN.to(x) if y is None else self.means[y].to(x)
        eps = self.eps(x, t, mean)
        return torch.cat([eps, torch.full_like(eps, self.var_value)], dim=1)

    def forward_with_cfg(self, x, t, y, cfg_scale):
        """DiT's forward_with_cfg: first half conditional, second half the null class."""
        half = x[: len(x) // 2]
        out = self(torch.cat([half, half]), t, y)
        eps, rest = out[:, :2], out[:, 2:]
        cond, uncond = eps.chunk(2)
        guided = uncond + cfg_scale * (cond - uncond)
        return torch.cat([torch.cat([guided, guided]), rest], dim=1)


# ----------------------------------------------------------------------------- schedule, q


def test_linear_schedule_is_dits():
    d = create_diffusion("")
    assert d.num_timesteps == 1000
    np.testing.assert_allclose(d.betas, np.linspace(1e-4, 0.02, 1000), rtol=1e-12)
    np.testing.assert_allclose(d.alphas_cumprod, alphas_cumprod_by_loop(np.linspace(1e-4, 0.02, 1000)))


def test_q_sample_formula():
    d = create_diffusion("")
    torch.manual_seed(0)
    x0, noise = torch.randn(6, 3, 4, 4, dtype=F64), torch.randn(6, 3, 4, 4, dtype=F64)
    t = torch.tensor([0, 1, 10, 500, 998, 999])
    abar = torch.from_numpy(alphas_cumprod_by_loop(d.betas))[t].view(-1, 1, 1, 1)
    expected = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
    torch.testing.assert_close(d.q_sample(x0, t, noise=noise), expected, rtol=1e-6, atol=1e-6)


def test_q_posterior_by_bayes_rule():
    """q(x_{t-1} | x_t, x_0) from the product of q(x_{t-1} | x_0) and q(x_t | x_{t-1})."""
    d = create_diffusion("")
    torch.manual_seed(1)
    x0, xt = torch.randn(5, 2, dtype=F64), torch.randn(5, 2, dtype=F64)
    t = torch.tensor([1, 2, 100, 600, 999])
    betas = torch.from_numpy(d.betas)[t].view(-1, 1)
    abar_prev = torch.from_numpy(alphas_cumprod_by_loop(d.betas))[t - 1].view(-1, 1)
    precision = 1 / (1 - abar_prev) + (1 - betas) / betas
    var = 1 / precision
    mean = var * (abar_prev.sqrt() * x0 / (1 - abar_prev) + (1 - betas).sqrt() * xt / betas)
    got_mean, got_var, got_logvar = d.q_posterior_mean_variance(x0, xt, t)
    torch.testing.assert_close(got_mean, mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got_var.double(), var.expand(5, 2), rtol=1e-5, atol=0)
    torch.testing.assert_close(got_logvar.double(), var.log().expand(5, 2), rtol=1e-5, atol=1e-5)
    # t = 0 has zero posterior variance; DiT clips its log to the t = 1 value.
    _, var0, logvar0 = d.q_posterior_mean_variance(x0, xt, torch.zeros(5, dtype=torch.long))
    assert (var0 == 0).all()
    torch.testing.assert_close(logvar0, torch.full((5, 2), math.log(d.posterior_variance[1])))


# ----------------------------------------------------------------------------- VB term


def test_normal_kl_matches_torch_distributions():
    torch.manual_seed(2)
    m1, m2, lv1, lv2 = torch.randn(4, 10, dtype=F64)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(m1, (0.5 * lv1).exp()), torch.distributions.Normal(m2, (0.5 * lv2).exp()))
    torch.testing.assert_close(normal_kl(m1, lv1, m2, lv2), expected)
    torch.testing.assert_close(normal_kl(m1, lv1, 0.0, 0.0), 0.5 * (-1 - lv1 + lv1.exp() + m1 ** 2))


def test_discretized_likelihood_against_erf():
    """log P(bin) with exact erf CDFs; the code's tanh CDF approximation is good to ~1e-3."""
    x = torch.tensor([-1.0, -0.5, 0.0, 0.3, 1.0], dtype=F64)
    means = torch.tensor([-0.9, -0.45, 0.02, 0.2, 0.95], dtype=F64)
    log_scales = torch.log(torch.tensor([0.1, 0.05, 0.02, 0.3, 0.1], dtype=F64))
    normal = torch.distributions.Normal(means, log_scales.exp())
    upper, lower = normal.cdf(x + 1 / 255), normal.cdf(x - 1 / 255)
    exact = torch.log(torch.stack([upper[0], *(upper - lower)[1:4], 1 - lower[4]]))
    got = discretized_gaussian_log_likelihood(x, means=means, log_scales=log_scales)
    torch.testing.assert_close(got, exact, rtol=0, atol=2e-3 * 255 * 0.02 + 0.05)
    assert (got.exp() <= 1).all()


def test_training_losses_mse_plus_vb():
    """loss = mean((eps - noise)^2) + VB term in bits; the VB term trains the variance only."""
    d = create_diffusion("")
    torch.manual_seed(3)
    x0 = torch.rand(4, 2, 3, 3, dtype=F64) * 2 - 1
    noise = torch.randn_like(x0)
    t = torch.tensor([0, 5, 300, 999])
    eps_param = torch.randn(4, 2, 3, 3, dtype=F64, requires_grad=True)
    var_param = (torch.rand(4, 2, 3, 3, dtype=F64) * 2 - 1).requires_grad_()
    model = lambda x, ts: torch.cat([eps_param, var_param], dim=1)
    terms = d.training_losses(model, x0, t, noise=noise)

    mse = ((eps_param - noise) ** 2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(terms["mse"], mse)

    betas = torch.from_numpy(d.betas)[t].view(-1, 1, 1, 1)
    abar = torch.from_numpy(alphas_cumprod_by_loop(d.betas))
    abar_t = abar[t].view(-1, 1, 1, 1)
    abar_prev = torch.cat([torch.ones(1, dtype=F64), abar])[t].view(-1, 1, 1, 1)
    xt = abar_t.sqrt() * x0 + (1 - abar_t).sqrt() * noise
    x0_hat = (xt - (1 - abar_t).sqrt() * eps_param.detach()) / abar_t.sqrt()
    post_var = betas * (1 - abar_prev) / (1 - abar_t)
    post_var_clipped = torch.where(t.view(-1, 1, 1, 1) == 0, torch.tensor(d.posterior_variance[1], dtype=F64), post_var)
    coef1 = betas * abar_prev.sqrt() / (1 - abar_t)
    coef2 = (1 - abar_prev) * (1 - betas).sqrt() / (1 - abar_t)
    model_mean = coef1 * x0_hat + coef2 * xt
    true_mean = coef1 * x0 + coef2 * xt
    frac = (var_param + 1) / 2
    model_logvar = frac * betas.log() + (1 - frac) * post_var_clipped.log()
    kl = 0.5 * (-1 + model_logvar - post_var_clipped.log() + (post_var_clipped.log() - model_logvar).exp()
                + (true_mean - model_mean) ** 2 * (-model_logvar).exp())
    kl_bits = kl.mean(dim=(1, 2, 3)) / math.log(2)
    nll_bits = -discretized_gaussian_log_likelihood(
        x0, means=model_mean, log_scales=0.5 * model_logvar).mean(dim=(1, 2, 3)) / math.log(2)
    vb = torch.where(t == 0, nll_bits, kl_bits)
    torch.testing.assert_close(terms["vb"], vb, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(terms["loss"], mse + vb, rtol=1e-4, atol=1e-5)

    # The VB term sends no gradient to the eps channels.
    terms["vb"].sum().backward()
    assert eps_param.grad is None or (eps_param.grad == 0).all()
    assert var_param.grad.abs().sum() > 0


def test_learned_range_ends():
    """Variance channel -1 gives the posterior variance, +1 gives beta."""
    d = create_diffusion("")
    x = torch.zeros(3, 2, dtype=F64)
    t = torch.tensor([0, 10, 999])
    for v, expected in [(-1.0, np.log(np.append(d.posterior_variance[1], d.posterior_variance[1:]))),
                        (1.0, np.log(d.betas))]:
        out = d.p_mean_variance(lambda x, ts: torch.cat([x, torch.full_like(x, v)], 1), x, t)
        torch.testing.assert_close(out["log_variance"][:, 0].double(), torch.from_numpy(expected[t.numpy()]),
                                   rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- respacing


def test_space_timesteps():
    assert space_timesteps(1000, "ddim50") == set(range(0, 1000, 20))
    assert space_timesteps(300, "10,15,20") == space_timesteps(300, [10, 15, 20])
    steps = sorted(space_timesteps(300, [10, 15, 20]))
    assert len(steps) == 45 and steps[0] == 0 and steps[9] == 99 and steps[10] == 100 and steps[-1] == 299
    steps = sorted(space_timesteps(1000, "250"))
    assert len(steps) == 250 and steps[0] == 0 and steps[-1] == 999
    assert sorted(space_timesteps(1000, "1000")) == list(range(1000))
    with pytest.raises(ValueError):
        space_timesteps(1000, "ddim999")


@pytest.mark.parametrize("respacing", ["250", "ddim50", "25"])
def test_respaced_diffusion_keeps_alphas_cumprod_and_maps_t(respacing):
    base = create_diffusion("")
    d = create_diffusion(respacing)
    kept = sorted(space_timesteps(1000, respacing))
    assert d.timestep_map == kept and d.num_timesteps == len(kept)
    np.testing.assert_allclose(d.alphas_cumprod, base.alphas_cumprod[kept], rtol=1e-12)
    oracle = GaussianEpsOracle()
    d.ddim_sample_loop(oracle, (2, 2), noise=torch.zeros(2, 2, dtype=F64))
    seen = [int(t[0]) for t in oracle.seen_t]
    assert seen == kept[::-1]  # the model sees ORIGINAL timesteps, from noisy to clean


# ----------------------------------------------------------------------------- samplers vs oracle


@pytest.mark.parametrize("respacing, var_value, bias", [
    ("250", 1.0, 0.0),    # DiT's sampler; variance at the beta end
    ("250", -1.0, 0.02),  # posterior-variance end: known O(1/steps) underdispersion (~0.02)
    ("50", 1.0, 0.01),
])
def test_ddpm_sampler_reaches_gaussian(respacing, var_value, bias):
    d = create_diffusion(respacing)
    torch.manual_seed(10)
    noise = torch.randn(N_SAMPLES, 2, dtype=F64)
    x = d.p_sample_loop(GaussianEpsOracle(var_value), noise.shape, noise=noise, clip_denoised=False)
    assert_gaussian(x, MEAN, COV, bias=bias)


@pytest.mark.parametrize("respacing, bias", [("ddim250", 0.0), ("ddim100", 0.02)])
def test_ddim_sampler_reaches_gaussian(respacing, bias):
    d = create_diffusion(respacing)
    torch.manual_seed(11)
    noise = torch.randn(N_SAMPLES, 2, dtype=F64)
    x = d.ddim_sample_loop(GaussianEpsOracle(), noise.shape, noise=noise, clip_denoised=False)
    assert_gaussian(x, MEAN, COV, bias=bias)


# ----------------------------------------------------------------------------- guidance


def test_cfg_scale_one_equals_conditional():
    """forward_with_cfg at scale 1 reproduces the conditional model exactly (DDIM, same noise)."""
    d = create_diffusion("ddim25")
    means = torch.tensor([[0.0, 0.0], [1.0, -1.0], [-0.5, 0.5]], dtype=F64)  # class 0 = null
    oracle = GaussianEpsOracle(means=means)
    torch.manual_seed(12)
    z = torch.randn(16, 2, dtype=F64)
    y = torch.randint(1, 3, (16,))
    cond = d.ddim_sample_loop(oracle, z.shape, noise=z, model_kwargs=dict(y=y))
    kwargs = dict(y=torch.cat([y, torch.zeros_like(y)]), cfg_scale=1.0)
    guided = d.ddim_sample_loop(oracle.forward_with_cfg, (32, 2), noise=torch.cat([z, z]), model_kwargs=kwargs)
    torch.testing.assert_close(guided[:16], cond, rtol=1e-12, atol=1e-12)


def test_cfg_inputs_apply_guidance_formula():
    """With scale s the sampler follows eps_null + s (eps_y - eps_null), for the first half only."""
    d = create_diffusion("ddim25")
    means = torch.tensor([[0.0, 0.0], [1.0, -1.0]], dtype=F64)
    oracle = GaussianEpsOracle(means=means)
    scale = 3.0

    def guided_eps(x, t, y):
        cond = oracle.eps(x, t, means[y])
        null = oracle.eps(x, t, means[torch.zeros_like(y)])
        eps = null + scale * (cond - null)
        return torch.cat([eps, torch.ones_like(eps)], 1)

    torch.manual_seed(13)
    z = torch.randn(8, 2, dtype=F64)
    y = torch.ones(8, dtype=torch.long)
    expected = d.ddim_sample_loop(guided_eps, z.shape, noise=z, model_kwargs=dict(y=y))
    model_fn, z2, kwargs = cfg_inputs(oracle, z, y, scale, null_label=0)
    out = drop_null_half(d.ddim_sample_loop(model_fn, z2.shape, noise=z2, model_kwargs=kwargs), scale)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)
    model_fn, z1, kwargs = cfg_inputs(oracle, z, y, 1.0, null_label=0)
    assert model_fn is oracle and z1 is z and set(kwargs) == {"y"}


def test_noise_fn_replaces_the_step_noise():
    """A noise_fn hook gives the same run as the global RNG drawing the same numbers."""
    d = create_diffusion("10")
    oracle = GaussianEpsOracle()
    z = torch.randn(5, 2, dtype=F64)
    torch.manual_seed(14)
    plain = d.p_sample_loop(oracle, z.shape, noise=z, clip_denoised=False)
    gen = torch.Generator().manual_seed(14)
    hooked = d.p_sample_loop(oracle, z.shape, noise=z, clip_denoised=False,
                             noise_fn=lambda x: torch.randn(x.shape, generator=gen, dtype=x.dtype))
    torch.testing.assert_close(hooked, plain, rtol=0, atol=0)
