"""Fixed-step SDE solvers and torchdiffeq ODE solvers, forward in time (noise t0 -> data t1).

Follows willisma/SiT transport/integrators.py (classes sde and ode). Same time grid
(linspace(t0, t1, num_steps): num_steps - 1 steps), same step formulas, same noise draws
(randn on the CPU generator, then moved to x's device and dtype), so seeded runs match SiT.
Additions, both optional and off by default: `noise_fn` replaces the per-step noise draw
(for per-sample seeding), and `step_callback(i, x)` is called after step i (DAM's
step-wise switching hooks in there, see ptdit/dynamic_mediators.py).
"""

import torch

# SiT passes the name straight to torchdiffeq; "Euler"/"Heun" are accepted as aliases.
ODE_METHOD_ALIASES = {"Euler": "euler", "Heun": "heun2"}


def sit_randn(x):
    """SiT's per-step noise: th.randn(x.size()).to(x)."""
    return torch.randn(x.size()).to(x)


class SDE:
    """Integrates dx = drift dt + sqrt(2 w(t)) dW with Euler-Maruyama or SiT's stochastic Heun."""

    def __init__(self, drift, diffusion, *, t0, t1, num_steps, sampler_type):
        assert t0 < t1, "SDE sampler has to be in forward time"
        self.t = torch.linspace(t0, t1, num_steps)
        self.dt = self.t[1] - self.t[0]
        self.drift, self.diffusion = drift, diffusion
        steps = {"Euler": self.euler_maruyama_step, "Heun": self.heun_step}
        if sampler_type not in steps:
            raise NotImplementedError(f"SDE sampler type {sampler_type} not implemented")
        self.step = steps[sampler_type]

    def euler_maruyama_step(self, x, t, model, noise_fn, **model_kwargs):
        dw = noise_fn(x) * torch.sqrt(self.dt)
        t = torch.ones(x.size(0)).to(x) * t
        mean_x = x + self.drift(x, t, model, **model_kwargs) * self.dt
        return mean_x + torch.sqrt(2 * self.diffusion(x, t)) * dw

    def heun_step(self, x, t, model, noise_fn, **model_kwargs):
        """SiT's stochastic Heun: add the noise first, then a Heun step of the drift."""
        dw = noise_fn(x) * torch.sqrt(self.dt)
        t_cur = torch.ones(x.size(0)).to(x) * t
        x_hat = x + torch.sqrt(2 * self.diffusion(x, t_cur)) * dw
        k1 = self.drift(x_hat, t_cur, model, **model_kwargs)
        k2 = self.drift(x_hat + self.dt * k1, t_cur + self.dt, model, **model_kwargs)
        return x_hat + 0.5 * self.dt * (k1 + k2)

    def sample(self, init, model, noise_fn=None, step_callback=None, **model_kwargs):
        """Returns the list of states after each of the num_steps - 1 steps."""
        noise_fn = noise_fn or sit_randn
        x, samples = init, []
        for i, ti in enumerate(self.t[:-1]):
            with torch.no_grad():
                x = self.step(x, ti, model, noise_fn, **model_kwargs)
            samples.append(x)
            if step_callback is not None:
                step_callback(i, x)
        return samples


class ODE:
    """Integrates dx/dt = drift(x, t) with torchdiffeq.odeint over linspace(t0, t1, num_steps)."""

    def __init__(self, drift, *, t0, t1, sampler_type, num_steps, atol, rtol):
        self.drift = drift
        self.t = torch.linspace(t0, t1, num_steps)
        self.method = ODE_METHOD_ALIASES.get(sampler_type, sampler_type)
        self.atol, self.rtol = atol, rtol

    def sample(self, x, model, **model_kwargs):
        """Returns a tensor [num_steps, *x.shape]: the state at every grid time.

        Fixed-step methods (euler, heun2, rk4) step on the grid; adaptive ones (dopri5) choose
        their own steps and interpolate to the grid, as in SiT.
        """

        def fn(t, x):
            t = torch.ones(x.size(0)).to(x) * t
            return self.drift(x, t, model, **model_kwargs)

        # imported here: torchdiffeq pulls in scipy.integrate (~0.5 s), which every `ptdit train` and
        # DDPM `ptdit sample` process would pay for without solving an ODE
        from torchdiffeq import odeint

        with torch.no_grad():
            return odeint(fn, x, self.t.to(x.device), method=self.method,
                          atol=self.atol, rtol=self.rtol)
