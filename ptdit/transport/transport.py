"""SiT's transport objective (training loss) and its ODE / SDE samplers.

Follows willisma/SiT transport/transport.py (Transport, Sampler). Same time intervals
(check_interval), same loss, same drift and diffusion of the SDE, same last steps.
Left out: the likelihood ODE (sample_ode_likelihood), which the suite does not use.
"""

import torch

from .integrators import ODE, SDE
from .path import PATHS, expand_t_like_x
from .prediction import PREDICTIONS, call_model, score_fn, velocity_drift

LOSS_WEIGHTS = (None, "velocity", "likelihood")


def mean_flat(x):
    """Mean over all dimensions but the batch one."""
    return x.mean(dim=list(range(1, x.ndim)))


class Transport:
    """An interpolant (path) plus what the model predicts, with SiT's eps rules near t = 0, 1."""

    def __init__(self, *, prediction, path_type, loss_weight, train_eps, sample_eps):
        assert prediction in PREDICTIONS and loss_weight in LOSS_WEIGHTS
        self.prediction, self.path_type, self.loss_weight = prediction, path_type, loss_weight
        self.path = PATHS[path_type]()
        self.train_eps, self.sample_eps = train_eps, sample_eps
        self.drift = velocity_drift(prediction, self.path)
        self.score = score_fn(prediction, self.path)

    def check_interval(self, *, diffusion_form="SBDM", sde=False, reverse=False, eval=False,
                       last_step_size=0.0):
        """The time interval [t0, t1] used for training (eval=False) or sampling (SiT rules).

        VP: stop at 1 - eps (or before the SDE's last step). Linear/GVP: the full [0, 1] for a
        velocity ODE; otherwise start at eps when the score is singular at t = 0 (score/noise
        models, or the SBDM diffusion) and stop at 1 - eps or before the last SDE step.
        """
        t0, t1 = 0, 1
        eps = self.sample_eps if eval else self.train_eps
        if self.path_type == "VP":
            t1 = 1 - eps if (not sde or last_step_size == 0) else 1 - last_step_size
        elif self.prediction != "velocity" or sde:
            t0 = eps if (diffusion_form == "SBDM" and sde) or self.prediction != "velocity" else 0
            t1 = 1 - eps if (not sde or last_step_size == 0) else 1 - last_step_size
        if reverse:
            t0, t1 = 1 - t0, 1 - t1
        return t0, t1

    def sample(self, x1):
        """Noise x0 ~ N(0, I) and t ~ U[t0, t1] for a data batch x1 (SiT draws t on the CPU)."""
        x0 = torch.randn_like(x1)
        t0, t1 = self.check_interval()
        t = (torch.rand((x1.shape[0],)) * (t1 - t0) + t0).to(x1)
        return t, x0, x1

    def training_losses(self, model, x1, model_kwargs=None):
        """{"loss": per-sample loss [B], "pred": model output}; train with loss.mean().

        velocity: mean((v - (alpha' x1 + sigma' x0))^2). noise: weight * mean((eps_hat - x0)^2).
        data (ours): weight * mean((x1_hat - x1)^2).
        score: weight * mean((s_hat * sigma_t + x0)^2). The weight is 1 by default, or SiT's
        "velocity" (drift_var / sigma_t)^2 / "likelihood" drift_var / sigma_t^2.
        """
        model_kwargs = model_kwargs or {}
        t, x0, x1 = self.sample(x1)
        t, xt, ut = self.path.plan(t, x0, x1)
        pred = call_model(model, xt, t, **model_kwargs)
        terms = {"pred": pred}
        if self.prediction == "velocity":
            terms["loss"] = mean_flat((pred - ut) ** 2)
            return terms
        _, drift_var = self.path.drift(xt, t)
        sigma_t, _ = self.path.sigma(expand_t_like_x(t, xt))
        if self.loss_weight == "velocity":
            weight = (drift_var / sigma_t) ** 2
        elif self.loss_weight == "likelihood":
            weight = drift_var / sigma_t ** 2
        else:
            weight = 1
        if self.prediction == "noise":
            terms["loss"] = mean_flat(weight * (pred - x0) ** 2)
        elif self.prediction == "data":  # ours (prediction.py): plain x-loss by default, as DDPM's x0
            terms["loss"] = mean_flat(weight * (pred - x1) ** 2)
        else:
            terms["loss"] = mean_flat(weight * (pred * sigma_t + x0) ** 2)
        return terms


class Sampler:
    """Builds SiT's sampling functions: fn(init, model, **model_kwargs) -> trajectory."""

    def __init__(self, transport):
        self.transport = transport

    def _sde_drift(self, diffusion_form, diffusion_norm):
        """dx = [v + w(t) score] dt + sqrt(2 w(t)) dW: keeps p_t for any w (SiT)."""
        path = self.transport.path

        def diffusion(x, t):
            return path.diffusion(x, t, form=diffusion_form, norm=diffusion_norm)

        def drift(x, t, model, **kw):
            return (self.transport.drift(x, t, model, **kw)
                    + diffusion(x, t) * self.transport.score(x, t, model, **kw))

        return drift, diffusion

    def _last_step(self, sde_drift, last_step, last_step_size):
        """The final jump from t1 to 1 (SiT: __get_last_step)."""
        tr = self.transport
        if last_step is None:
            return lambda x, t, model, **kw: x
        if last_step == "Mean":  # one noiseless Euler step of the SDE drift
            return lambda x, t, model, **kw: x + sde_drift(x, t, model, **kw) * last_step_size
        if last_step == "Euler":  # one Euler step of the ODE drift
            return lambda x, t, model, **kw: x + tr.drift(x, t, model, **kw) * last_step_size
        if last_step == "Tweedie":
            def tweedie(x, t, model, **kw):
                # SiT uses the first element's alpha / sigma for the whole batch ([0][0]).
                alpha = tr.path.alpha(t)[0][0]
                sigma = tr.path.sigma(t)[0][0]
                return x / alpha + sigma ** 2 / alpha * tr.score(x, t, model, **kw)
            return tweedie
        raise NotImplementedError(last_step)

    def sample_sde(self, *, sampling_method="Euler", diffusion_form="SBDM", diffusion_norm=1.0,
                   last_step="Mean", last_step_size=0.04, num_steps=250):
        """SDE sampler; returns fn(init, model, noise_fn=None, step_callback=None, **kw) -> list.

        The list holds num_steps states, the last one the sample. SiT's evaluation settings are
        sampling_method="Euler", diffusion_form="sigma", last_step="Mean", last_step_size=0.04,
        num_steps=250 (its train_utils.parse_sde_args defaults; this signature keeps the
        Sampler.sample_sde defaults, where diffusion_form is "SBDM").
        """
        if last_step is None:
            last_step_size = 0.0
        drift, diffusion = self._sde_drift(diffusion_form, diffusion_norm)
        t0, t1 = self.transport.check_interval(diffusion_form=diffusion_form, sde=True, eval=True,
                                               last_step_size=last_step_size)
        sde = SDE(drift, diffusion, t0=t0, t1=t1, num_steps=num_steps, sampler_type=sampling_method)
        last_step_fn = self._last_step(drift, last_step, last_step_size)

        def sample(init, model, noise_fn=None, step_callback=None, **model_kwargs):
            xs = sde.sample(init, model, noise_fn=noise_fn, step_callback=step_callback,
                            **model_kwargs)
            t = torch.ones(init.size(0), device=init.device) * t1
            with torch.no_grad():
                xs.append(last_step_fn(xs[-1], t, model, **model_kwargs))
            assert len(xs) == num_steps, "Samples does not match the number of steps"
            return xs

        return sample

    def sample_ode(self, *, sampling_method="dopri5", num_steps=50, atol=1e-6, rtol=1e-3,
                   reverse=False):
        """ODE sampler; returns fn(init, model, **kw) -> tensor [num_steps, *init.shape].

        Fixed-step methods take num_steps - 1 steps; dopri5 adapts with atol / rtol and
        reports num_steps interpolated states. reverse=True runs data -> noise.
        """
        t0, t1 = self.transport.check_interval(sde=False, eval=True, reverse=reverse)
        drift = self.transport.drift
        # With reverse=True, t0 > t1 and odeint integrates backward in time, as in SiT.
        ode = ODE(drift, t0=t0, t1=t1, sampler_type=sampling_method, num_steps=num_steps,
                  atol=atol, rtol=rtol)
        return ode.sample
