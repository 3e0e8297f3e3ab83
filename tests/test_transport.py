"""SiT's interpolants (ptdit/transport) against closed forms.

For data x1 ~ N(MEAN, COV) and noise x0 ~ N(0, I), x_t = alpha_t x1 + sigma_t x0 is Gaussian,
so E[x1 | x_t], E[x0 | x_t], the score and the velocity are analytic. That oracle drives
every sampler (ODE Euler / Heun / dopri5, SDE Euler / Heun) for every path and prediction;
the samples must have MEAN and COV within sampling error (fixed seeds, tolerances from the
standard error). alpha_t, sigma_t and their derivatives are written here independently.
"""

import math

import pytest
import torch

from ptdit.transport import Sampler, create_transport

F64 = torch.float64
MEAN = torch.tensor([0.5, -0.3], dtype=F64)
COV = torch.tensor([[0.6, 0.3], [0.3, 0.4]], dtype=F64)
EVALS, EVECS = torch.linalg.eigh(COV)
PATH_TYPES = ["Linear", "GVP", "VP"]
PREDICTIONS = ["velocity", "score", "noise", "data"]   # data: ours (x-prediction, prediction.py)


pytestmark = pytest.mark.usefixtures("one_thread")   # tiny tensors: one thread is fastest (conftest.py)


def coefficients(path, t):
    """alpha_t, d alpha_t, sigma_t, d sigma_t, derived by hand for each path."""
    if path == "Linear":
        return t, torch.ones_like(t), 1 - t, -torch.ones_like(t)
    if path == "GVP":
        h = math.pi / 2
        return torch.sin(h * t), h * torch.cos(h * t), torch.cos(h * t), -h * torch.sin(h * t)
    # VP: beta(s) = 0.1 + 19.9 s with s = 1 - t; alpha = exp(-1/2 int_0^s beta).
    # A network is defined past t = 1 (dopri5 trial steps go there); the oracle holds s >= 1e-4.
    s = (1 - t).clamp(min=1e-4)
    alpha = torch.exp(-0.5 * (0.1 * s + 0.5 * 19.9 * s ** 2))
    d_alpha = alpha * 0.5 * (0.1 + 19.9 * s)
    sigma = torch.sqrt(1 - alpha ** 2)
    return alpha, d_alpha, sigma, -alpha * d_alpha / sigma


def oracle_outputs(path, x, t):
    """Exact velocity, score, noise (= E[x0 | x_t]) and data (= E[x1 | x_t]) for Gaussian data."""
    a, da, s, ds = (c.to(x).view(-1, 1) for c in coefficients(path, t.to(F64)))
    r = (x - a * MEAN.to(x)) @ EVECS.to(x)
    prec_r = (r / (a ** 2 * EVALS.to(x) + s ** 2)) @ EVECS.T.to(x)  # Sigma_t^-1 (x - alpha m)
    noise = s * prec_r
    x1_hat = MEAN.to(x) + a * prec_r @ COV.to(x)
    return {"velocity": da * x1_hat + ds * noise, "score": -prec_r, "noise": noise, "data": x1_hat}


def oracle(path, prediction):
    return lambda x, t, **kw: oracle_outputs(path, x, t)[prediction]


def assert_gaussian(x, n_se=4.5, bias=0.0):
    """Sample mean / covariance within n_se standard errors (+ a known discretisation bias)."""
    n, var = x.shape[0], torch.diagonal(COV)
    mean_err = (x.mean(0) - MEAN).abs()
    cov_err = (torch.cov(x.T) - COV).abs()
    assert torch.isfinite(x).all()
    assert (mean_err <= n_se * torch.sqrt(var / n) + bias).all(), mean_err
    assert (cov_err <= n_se * torch.sqrt((var[:, None] * var[None] + COV ** 2) / n) + bias).all(), cov_err


# ----------------------------------------------------------------------------- paths


@pytest.mark.parametrize("path_type", PATH_TYPES)
def test_plan_matches_closed_form(path_type):
    path = create_transport(path_type).path
    torch.manual_seed(0)
    t = torch.rand(7, dtype=F64) * 0.98 + 0.01
    x0, x1 = torch.randn(7, 2, dtype=F64), torch.randn(7, 2, dtype=F64)
    a, da, s, ds = (c.view(-1, 1) for c in coefficients(path_type, t))
    _, xt, ut = path.plan(t, x0, x1)
    torch.testing.assert_close(xt, a * x1 + s * x0)
    torch.testing.assert_close(ut, da * x1 + ds * x0)
    # Derivatives by autograd of the code's own alpha / sigma agree with the hand derivation.
    tg = t.clone().requires_grad_()
    alpha, _ = path.alpha(tg)
    sigma, _ = path.sigma(tg)
    if path_type != "Linear":
        torch.testing.assert_close(torch.autograd.grad(alpha.sum(), tg)[0], da.view(-1))
        torch.testing.assert_close(torch.autograd.grad(sigma.sum(), tg)[0], ds.view(-1))


@pytest.mark.parametrize("path_type", PATH_TYPES)
def test_conversions_between_predictions(path_type):
    path = create_transport(path_type).path
    torch.manual_seed(1)
    x, t = torch.randn(9, 2, dtype=F64), torch.rand(9, dtype=F64) * 0.9 + 0.05
    true = oracle_outputs(path_type, x, t)
    torch.testing.assert_close(path.score_from_velocity(true["velocity"], x, t), true["score"])
    torch.testing.assert_close(path.noise_from_velocity(true["velocity"], x, t), true["noise"])
    torch.testing.assert_close(path.velocity_from_score(true["score"], x, t), true["velocity"])
    for prediction in PREDICTIONS:  # every prediction gives the same ODE drift and score
        tr = create_transport(path_type, prediction)
        model = oracle(path_type, prediction)
        torch.testing.assert_close(tr.drift(x, t, model), true["velocity"])
        torch.testing.assert_close(tr.score(x, t, model), true["score"])


def test_sde_diffusion_forms():
    path = create_transport("Linear").path
    x, t = torch.zeros(3, 2), torch.tensor([0.1, 0.5, 0.9])
    torch.testing.assert_close(path.diffusion(x, t, form="sigma", norm=2.0), 2 * (1 - t).view(-1, 1))
    sbdm = path.diffusion(x, t, form="SBDM")  # (alpha'/alpha) sigma^2 - sigma sigma' = (1 - t) / t
    torch.testing.assert_close(sbdm, ((1 - t) / t).view(-1, 1))


# ----------------------------------------------------------------------------- training loss


@pytest.mark.parametrize("path_type, prediction, train_eps, sample_eps", [
    ("Linear", "velocity", 0, 0), ("GVP", "velocity", 0, 0),
    ("Linear", "noise", 1e-3, 1e-3), ("GVP", "score", 1e-3, 1e-3),
    ("VP", "velocity", 1e-5, 1e-3), ("VP", "noise", 1e-5, 1e-3),
])
def test_create_transport_eps_rules(path_type, prediction, train_eps, sample_eps):
    tr = create_transport(path_type, prediction)
    assert (tr.train_eps, tr.sample_eps) == (train_eps, sample_eps)


@pytest.mark.parametrize("path_type", PATH_TYPES)
@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_training_loss_formula(path_type, prediction):
    """Same draws as SiT (x0 = randn_like(x1), then t = rand on the CPU in [t0, t1])."""
    tr = create_transport(path_type, prediction)
    torch.manual_seed(2)
    x1 = torch.randn(64, 2, dtype=F64) * 0.5 + MEAN
    model = oracle(path_type, prediction)
    loss = tr.training_losses(model, x1)["loss"]

    torch.manual_seed(2)
    x1 = torch.randn(64, 2, dtype=F64) * 0.5 + MEAN
    x0 = torch.randn_like(x1)
    t0, t1 = (0.0, 1.0) if path_type != "VP" else (0.0, 1 - 1e-5)
    if prediction != "velocity" and path_type != "VP":
        t0, t1 = 1e-3, 1 - 1e-3
    t = (torch.rand(64) * (t1 - t0) + t0).to(F64)
    assert t.min() >= t0 and t.max() <= t1
    a, da, s, ds = (c.view(-1, 1) for c in coefficients(path_type, t))
    xt = a * x1 + s * x0
    pred = oracle_outputs(path_type, xt, t)[prediction]
    target = {"velocity": da * x1 + ds * x0, "noise": x0, "score": -x0 / s, "data": x1}[prediction]
    weight = s ** 2 if prediction == "score" else 1  # SiT's score loss: (s_hat sigma + x0)^2
    torch.testing.assert_close(loss, (weight * (pred - target) ** 2).mean(1))


def test_velocity_loss_is_minimised_by_the_oracle():
    """E||v - u||^2 is smallest at v = E[u | x_t]: perturbing the oracle raises the loss."""
    tr = create_transport("Linear")
    x1 = MEAN + torch.randn(20000, 2, dtype=F64) @ torch.linalg.cholesky(COV).T
    torch.manual_seed(3)
    best = tr.training_losses(oracle("Linear", "velocity"), x1)["loss"].mean()
    torch.manual_seed(3)
    shifted = lambda x, t: oracle_outputs("Linear", x, t)["velocity"] + 0.1
    increase = tr.training_losses(shifted, x1)["loss"].mean() - best
    assert abs(increase - 0.1 ** 2) < 0.003  # + 0.1^2, the cross term vanishes in expectation


def test_learned_sigma_channels_are_dropped():
    tr = create_transport("Linear")
    model = lambda x, t: torch.cat([oracle_outputs("Linear", x, t)["velocity"], 7 + x], 1)
    x = torch.randn(5, 2, dtype=F64)
    t = torch.full((5,), 0.3, dtype=F64)
    torch.testing.assert_close(tr.drift(x, t, model), oracle_outputs("Linear", x, t)["velocity"])


# ----------------------------------------------------------------------------- samplers vs oracle

ODE_SETTINGS = [("euler", 100, 0.015), ("heun2", 30, 0.0), ("dopri5", 2, 0.0)]


@pytest.mark.parametrize("path_type", PATH_TYPES)
@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("method, num_steps, bias", ODE_SETTINGS)
def test_ode_sampler_reaches_gaussian(path_type, prediction, method, num_steps, bias):
    if path_type == "VP" and prediction in ("noise", "data") and method == "dopri5":
        pytest.xfail("as in SiT: VP sigma_t is NaN past t = 1, where dopri5's trial steps land")
    tr = create_transport(path_type, prediction)
    torch.manual_seed(4)
    z = torch.randn(6000, 2, dtype=F64)
    xs = Sampler(tr).sample_ode(sampling_method=method, num_steps=num_steps)(z, oracle(path_type, prediction))
    assert xs.shape == (num_steps, 6000, 2)
    assert_gaussian(xs[-1], bias=bias)


@pytest.mark.parametrize("path_type", PATH_TYPES)
@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("method", ["Euler", "Heun"])
def test_sde_sampler_reaches_gaussian(path_type, prediction, method):
    """SiT's evaluation sampler: diffusion "sigma", last step "Mean" of 0.04, 250 steps."""
    tr = create_transport(path_type, prediction)
    sample = Sampler(tr).sample_sde(sampling_method=method, diffusion_form="sigma",
                                    last_step="Mean", last_step_size=0.04, num_steps=250)
    torch.manual_seed(5)
    z = torch.randn(4000, 2, dtype=F64)
    xs = sample(z, oracle(path_type, prediction))
    assert len(xs) == 250
    assert_gaussian(xs[-1], bias=0.01)


def test_sde_step_callback_and_noise_fn():
    """The hooks see every SDE step; a zero noise_fn with the sigma form gives a deterministic run."""
    tr = create_transport("Linear")
    sample = Sampler(tr).sample_sde(diffusion_form="sigma", num_steps=11)
    seen = []
    z = torch.randn(4, 2, dtype=F64)
    zero = lambda x: torch.zeros_like(x)
    a = sample(z, oracle("Linear", "velocity"), noise_fn=zero, step_callback=lambda i, x: seen.append(i))
    b = sample(z, oracle("Linear", "velocity"), noise_fn=zero)
    assert seen == list(range(10))
    torch.testing.assert_close(a[-1], b[-1])


def test_cfg_scale_one_equals_conditional():
    """forward_with_cfg at scale 1 equals the conditional model (ODE, same start)."""
    means = torch.tensor([[0.0, 0.0], [1.0, -1.0]], dtype=F64)

    class Model:
        def __call__(self, x, t, y):
            # velocity of the Linear path for N(means[y], I): E[x1|x] = m + t (x - t m) / (t^2 + (1-t)^2)
            tt, m = t.view(-1, 1), means[y]
            r = (x - tt * m) / (tt ** 2 + (1 - tt) ** 2)
            return (m + tt * r) - (1 - tt) * r

        def forward_with_cfg(self, x, t, y, cfg_scale):
            half = x[: len(x) // 2]
            out = self(torch.cat([half, half]), t, y)
            cond, uncond = out.chunk(2)
            guided = uncond + cfg_scale * (cond - uncond)
            return torch.cat([guided, guided])

    model = Model()
    sample = Sampler(create_transport("Linear")).sample_ode(sampling_method="euler", num_steps=20)
    z, y = torch.randn(8, 2, dtype=F64), torch.ones(8, dtype=torch.long)
    cond = sample(z, model, y=y)[-1]
    guided = sample(torch.cat([z, z]), model.forward_with_cfg, y=torch.cat([y, 0 * y]), cfg_scale=1.0)[-1]
    torch.testing.assert_close(guided[:8], cond, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(cond.mean(0), means[1], rtol=0, atol=1.5)  # sanity: moves to the class
