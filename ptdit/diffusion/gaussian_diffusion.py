"""DiT's discrete-time Gaussian diffusion (DDPM): forward process, losses and samplers.

Follows facebookresearch/DiT diffusion/gaussian_diffusion.py (class GaussianDiffusion), which
comes from OpenAI's improved-diffusion / ADM. Same formulas, same float64 tables, same order of
random draws, so a seeded run matches the official code. Differences, all deliberate:
- options are plain strings instead of enums; PREVIOUS_X prediction and cond_fn are left out
  (DiT uses neither);
- the sampling loops take `device` from the noise or the argument, not from model.parameters(),
  so that `model` may be any callable (for example model.forward_with_cfg);
- an optional `noise_fn(x)` replaces the per-step torch.randn_like(x) (for per-sample seeding);
  left as None it draws exactly what DiT draws.

Time convention: integer t in [0, T), t = 0 is the least noisy step; x_start (x_0) is data.
"""

import numpy as np
import torch

from .losses import discretized_gaussian_log_likelihood, mean_flat, normal_kl

MEAN_TYPES = ("epsilon", "start_x")
VAR_TYPES = ("learned_range", "learned", "fixed_small", "fixed_large")
LOSS_TYPES = ("mse", "rescaled_mse", "kl", "rescaled_kl")


def extract(table, t, shape):
    """table[t] as a float32 tensor broadcastable to `shape` (DiT: _extract_into_tensor)."""
    values = torch.from_numpy(table).to(device=t.device)[t].float()
    return values.view(-1, *([1] * (len(shape) - 1))).expand(shape)


class GaussianDiffusion:
    """Training and sampling utilities for one beta schedule.

    betas: 1-D float array, one beta per step, from t = 0 (data side) to T - 1 (noise side).
    mean_type: what the model's first C channels predict: "epsilon" (DiT) or "start_x".
    var_type: "learned_range" (DiT: the model's last C channels, in [-1, 1], interpolate the log
      variance between the posterior variance and beta), "learned", "fixed_small", "fixed_large".
    loss_type: "mse" (DiT: MSE + VB term), "rescaled_mse", "kl", "rescaled_kl".
    """

    def __init__(self, *, betas, mean_type="epsilon", var_type="learned_range", loss_type="mse"):
        assert mean_type in MEAN_TYPES and var_type in VAR_TYPES and loss_type in LOSS_TYPES
        self.mean_type, self.var_type, self.loss_type = mean_type, var_type, loss_type
        betas = np.array(betas, dtype=np.float64)  # float64 tables, as in DiT, for accuracy
        assert betas.ndim == 1 and (betas > 0).all() and (betas <= 1).all()
        self.betas = betas
        self.num_timesteps = len(betas)

        alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(alphas)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.alphas_cumprod_next = np.append(self.alphas_cumprod[1:], 0.0)
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.log_one_minus_alphas_cumprod = np.log(1.0 - self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1)

        # q(x_{t-1} | x_t, x_0): variance and the two mean coefficients.
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        # The posterior variance is 0 at t = 0; DiT clips its log by repeating the t = 1 value.
        self.posterior_log_variance_clipped = (
            np.log(np.append(self.posterior_variance[1], self.posterior_variance[1:]))
            if self.num_timesteps > 1 else np.array([])
        )
        self.posterior_mean_coef1 = betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (
            (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - self.alphas_cumprod)
        )

    # ---------------------------------------------------------------- forward process
    def q_mean_variance(self, x_start, t):
        """Mean, variance and log variance of q(x_t | x_0)."""
        mean = extract(self.sqrt_alphas_cumprod, t, x_start.shape) * x_start
        variance = extract(1.0 - self.alphas_cumprod, t, x_start.shape)
        log_variance = extract(self.log_one_minus_alphas_cumprod, t, x_start.shape)
        return mean, variance, log_variance

    def q_sample(self, x_start, t, noise=None):
        """Draw x_t ~ q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)."""
        if noise is None:
            noise = torch.randn_like(x_start)
        assert noise.shape == x_start.shape
        return (
            extract(self.sqrt_alphas_cumprod, t, x_start.shape) * x_start
            + extract(self.sqrt_one_minus_alphas_cumprod, t, x_start.shape) * noise
        )

    def q_posterior_mean_variance(self, x_start, x_t, t):
        """Mean, variance and clipped log variance of q(x_{t-1} | x_t, x_0)."""
        assert x_start.shape == x_t.shape
        mean = (
            extract(self.posterior_mean_coef1, t, x_t.shape) * x_start
            + extract(self.posterior_mean_coef2, t, x_t.shape) * x_t
        )
        variance = extract(self.posterior_variance, t, x_t.shape)
        log_variance = extract(self.posterior_log_variance_clipped, t, x_t.shape)
        return mean, variance, log_variance

    # ---------------------------------------------------------------- model side
    def _model_log_variance(self, var_values, x, t):
        """Log variance of p(x_{t-1} | x_t) for each var_type (var_values: learned channels)."""
        if self.var_type == "learned":
            return var_values
        if self.var_type == "learned_range":
            # var_values in [-1, 1] spans [posterior variance, beta] in log space.
            min_log = extract(self.posterior_log_variance_clipped, t, x.shape)
            max_log = extract(np.log(self.betas), t, x.shape)
            frac = (var_values + 1) / 2
            return frac * max_log + (1 - frac) * min_log
        if self.var_type == "fixed_large":
            # DiT: the first entry uses the posterior variance for a better decoder likelihood.
            table = np.log(np.append(self.posterior_variance[1], self.betas[1:]))
            return extract(table, t, x.shape)
        return extract(self.posterior_log_variance_clipped, t, x.shape)  # fixed_small

    def p_mean_variance(self, model, x, t, clip_denoised=True, denoised_fn=None, model_kwargs=None):
        """Apply the model: mean, variance, log variance of p(x_{t-1} | x_t) and the x_0 guess."""
        model_kwargs = model_kwargs or {}
        B, C = x.shape[:2]
        assert t.shape == (B,)
        output = model(x, t, **model_kwargs)
        if isinstance(output, tuple):
            output, extra = output
        else:
            extra = None
        if self.var_type in ("learned", "learned_range"):
            assert output.shape == (B, C * 2, *x.shape[2:])
            output, var_values = torch.split(output, C, dim=1)
        else:
            var_values = None
        log_variance = self._model_log_variance(var_values, x, t)

        if self.mean_type == "start_x":
            pred_xstart = output
        else:
            pred_xstart = self._predict_xstart_from_eps(x, t, output)
        if denoised_fn is not None:
            pred_xstart = denoised_fn(pred_xstart)
        if clip_denoised:
            pred_xstart = pred_xstart.clamp(-1, 1)
        mean, _, _ = self.q_posterior_mean_variance(pred_xstart, x, t)
        return {"mean": mean, "variance": torch.exp(log_variance), "log_variance": log_variance,
                "pred_xstart": pred_xstart, "extra": extra}

    def _predict_xstart_from_eps(self, x_t, t, eps):
        assert x_t.shape == eps.shape
        return (
            extract(self.sqrt_recip_alphas_cumprod, t, x_t.shape) * x_t
            - extract(self.sqrt_recipm1_alphas_cumprod, t, x_t.shape) * eps
        )

    def _predict_eps_from_xstart(self, x_t, t, pred_xstart):
        return (
            extract(self.sqrt_recip_alphas_cumprod, t, x_t.shape) * x_t - pred_xstart
        ) / extract(self.sqrt_recipm1_alphas_cumprod, t, x_t.shape)

    # ---------------------------------------------------------------- losses
    def _vb_terms_bpd(self, model, x_start, x_t, t, clip_denoised=True, model_kwargs=None):
        """One term of the variational bound, in bits per dimension, per sample.

        KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) for t > 0; at t = 0 the decoder NLL
        -log p(x_0 | x_1) with the discretized Gaussian likelihood (DiT: _vb_terms_bpd).
        """
        true_mean, _, true_log_variance = self.q_posterior_mean_variance(x_start, x_t, t)
        out = self.p_mean_variance(model, x_t, t, clip_denoised=clip_denoised,
                                   model_kwargs=model_kwargs)
        kl = normal_kl(true_mean, true_log_variance, out["mean"], out["log_variance"])
        kl = mean_flat(kl) / np.log(2.0)
        decoder_nll = -discretized_gaussian_log_likelihood(
            x_start, means=out["mean"], log_scales=0.5 * out["log_variance"])
        decoder_nll = mean_flat(decoder_nll) / np.log(2.0)
        return {"output": torch.where(t == 0, decoder_nll, kl), "pred_xstart": out["pred_xstart"]}

    def training_losses(self, model, x_start, t, model_kwargs=None, noise=None):
        """DiT's loss for a batch at timesteps t: dict of per-sample tensors, "loss" among them.

        With loss_type "mse" and a learned variance: loss = mse(eps) + vb, where the VB term sees
        the mean channels detached, so it trains only the variance (Nichol & Dhariwal's L_hybrid
        with lambda = 1 / T folded into DiT's choice of T = 1000 without rescaling).
        """
        model_kwargs = model_kwargs or {}
        if noise is None:
            noise = torch.randn_like(x_start)
        x_t = self.q_sample(x_start, t, noise=noise)
        terms = {}
        if self.loss_type in ("kl", "rescaled_kl"):
            terms["loss"] = self._vb_terms_bpd(model, x_start, x_t, t, clip_denoised=False,
                                               model_kwargs=model_kwargs)["output"]
            if self.loss_type == "rescaled_kl":
                terms["loss"] = terms["loss"] * self.num_timesteps
            return terms

        output = model(x_t, t, **model_kwargs)
        if self.var_type in ("learned", "learned_range"):
            B, C = x_t.shape[:2]
            assert output.shape == (B, C * 2, *x_t.shape[2:])
            output, var_values = torch.split(output, C, dim=1)
            # The VB term learns the variance only: the mean channels enter it detached.
            frozen = torch.cat([output.detach(), var_values], dim=1)
            terms["vb"] = self._vb_terms_bpd(lambda *args, r=frozen: r, x_start, x_t, t,
                                             clip_denoised=False)["output"]
            if self.loss_type == "rescaled_mse":
                terms["vb"] = terms["vb"] * self.num_timesteps / 1000.0
        target = noise if self.mean_type == "epsilon" else x_start
        assert output.shape == target.shape == x_start.shape
        terms["mse"] = mean_flat((target - output) ** 2)
        terms["loss"] = terms["mse"] + terms["vb"] if "vb" in terms else terms["mse"]
        return terms

    # ---------------------------------------------------------------- samplers
    def p_sample(self, model, x, t, clip_denoised=True, denoised_fn=None, model_kwargs=None,
                 noise_fn=None):
        """One ancestral step x_t -> x_{t-1}; no noise is added at t = 0."""
        out = self.p_mean_variance(model, x, t, clip_denoised=clip_denoised,
                                   denoised_fn=denoised_fn, model_kwargs=model_kwargs)
        noise = (noise_fn or torch.randn_like)(x)
        nonzero = (t != 0).float().view(-1, *([1] * (x.ndim - 1)))
        sample = out["mean"] + nonzero * torch.exp(0.5 * out["log_variance"]) * noise
        return {"sample": sample, "pred_xstart": out["pred_xstart"]}

    def ddim_sample(self, model, x, t, clip_denoised=True, denoised_fn=None, model_kwargs=None,
                    eta=0.0, noise_fn=None):
        """One DDIM step (Song et al. eq. 12); eta = 0 is deterministic."""
        out = self.p_mean_variance(model, x, t, clip_denoised=clip_denoised,
                                   denoised_fn=denoised_fn, model_kwargs=model_kwargs)
        # Re-derive eps from the (possibly clipped) x_0 guess, as DiT does.
        eps = self._predict_eps_from_xstart(x, t, out["pred_xstart"])
        abar = extract(self.alphas_cumprod, t, x.shape)
        abar_prev = extract(self.alphas_cumprod_prev, t, x.shape)
        sigma = eta * torch.sqrt((1 - abar_prev) / (1 - abar)) * torch.sqrt(1 - abar / abar_prev)
        noise = (noise_fn or torch.randn_like)(x)  # drawn even when eta = 0, as in DiT
        mean = out["pred_xstart"] * torch.sqrt(abar_prev) + torch.sqrt(1 - abar_prev - sigma ** 2) * eps
        nonzero = (t != 0).float().view(-1, *([1] * (x.ndim - 1)))
        return {"sample": mean + nonzero * sigma * noise, "pred_xstart": out["pred_xstart"]}

    def _loop(self, step_fn, shape, noise, device, progress):
        """Run step_fn from t = T-1 down to 0, starting from `noise` (or fresh N(0, I))."""
        assert isinstance(shape, (tuple, list))
        if noise is not None:
            x = noise
        else:
            x = torch.randn(*shape, device=device)
        steps = list(range(self.num_timesteps))[::-1]
        if progress:
            from tqdm.auto import tqdm  # optional dependency, imported only when asked for
            steps = tqdm(steps)
        for i in steps:
            t = torch.tensor([i] * shape[0], device=x.device)
            with torch.no_grad():
                x = step_fn(x, t)["sample"]
        return x

    def p_sample_loop(self, model, shape, noise=None, clip_denoised=True, denoised_fn=None,
                      model_kwargs=None, device=None, progress=False, noise_fn=None):
        """Ancestral (DDPM) sampling; DiT samples with clip_denoised=False."""
        step = lambda x, t: self.p_sample(model, x, t, clip_denoised, denoised_fn, model_kwargs,
                                          noise_fn)
        return self._loop(step, shape, noise, device, progress)

    def ddim_sample_loop(self, model, shape, noise=None, clip_denoised=True, denoised_fn=None,
                         model_kwargs=None, device=None, progress=False, eta=0.0,
                         noise_fn=None):
        """DDIM sampling over this diffusion's (usually respaced) timesteps."""
        step = lambda x, t: self.ddim_sample(model, x, t, clip_denoised, denoised_fn,
                                             model_kwargs, eta, noise_fn)
        return self._loop(step, shape, noise, device, progress)
