"""What the network predicts (velocity, score, noise or data) and how each becomes a drift or a score.

Follows willisma/SiT transport/transport.py (ModelType, Transport.get_drift, get_score and the
per-prediction branches of training_losses). Noise prediction means E[x0 | x_t] (x0 is the
Gaussian end), so score = -noise / sigma_t.

One deliberate difference: SiT's model drops its learned-sigma channels inside forward(); here
a model output with twice the input's channels is accepted and its first half used, so that
a DiT-style model built with learn_sigma=True can also be trained and sampled with SiT's
objective. With SiT's own models nothing changes.

One addition, ours: "data" prediction, the network predicts E[x1 | x_t] (the clean sample; SiT's x1 is
the data end). SiT has no such branch; it is the x-prediction of Li & He 2025 ("Back to Basics: Let
Denoising Generative Models Denoise", JiT), who show that a transformer on raw pixel patches learns
far faster predicting the clean image than velocity or noise, which it must copy through its patch
path. The suite's CPU default uses it (workflows/config/default.yaml); SiT's own objective is velocity.
From x1_hat: noise x0_hat = (x_t - alpha_t x1_hat) / sigma_t, velocity alpha'_t x1_hat + sigma'_t x0_hat,
score -x0_hat / sigma_t (as for noise prediction); singular at sigma_t = 0, so sampling stops at
1 - sample_eps as for the other non-velocity predictions.
"""

from .path import expand_t_like_x

PREDICTIONS = ("velocity", "score", "noise", "data")


def call_model(model, x, t, **model_kwargs):
    """model(x, t, ...) with any extra learned-sigma channels dropped (see module note)."""
    out = model(x, t, **model_kwargs)
    if out.shape[1] == 2 * x.shape[1]:
        out = out[:, : x.shape[1]]
    assert out.shape == x.shape, "model output must have the input's shape"
    return out


def velocity_drift(prediction, path):
    """drift(x, t, model, **kw) of the probability-flow ODE dx/dt = v(x, t) (SiT: get_drift)."""

    def from_velocity(x, t, model, **kw):
        return call_model(model, x, t, **kw)

    def from_score(x, t, model, **kw):
        drift_mean, drift_var = path.drift(x, t)
        return -drift_mean + drift_var * call_model(model, x, t, **kw)

    def from_noise(x, t, model, **kw):
        drift_mean, drift_var = path.drift(x, t)
        sigma_t, _ = path.sigma(expand_t_like_x(t, x))
        return -drift_mean + drift_var * (call_model(model, x, t, **kw) / -sigma_t)

    def from_data(x, t, model, **kw):
        x1_hat = call_model(model, x, t, **kw)
        te = expand_t_like_x(t, x)
        d_alpha_t, d_sigma_t = path.alpha(te)[1], path.sigma(te)[1]
        return d_alpha_t * x1_hat + d_sigma_t * noise_from_data(x1_hat, x, te, path)

    return {"velocity": from_velocity, "score": from_score, "noise": from_noise, "data": from_data}[prediction]


def noise_from_data(x1_hat, x, te, path):
    """x0_hat = (x_t - alpha_t x1_hat) / sigma_t, te already shaped like x."""
    return (x - path.alpha(te)[0] * x1_hat) / path.sigma(te)[0]


def score_fn(prediction, path):
    """score(x, t, model, **kw) = grad log p_t(x) from the model (SiT: get_score)."""

    def from_velocity(x, t, model, **kw):
        return path.score_from_velocity(call_model(model, x, t, **kw), x, t)

    def from_score(x, t, model, **kw):
        return call_model(model, x, t, **kw)

    def from_noise(x, t, model, **kw):
        sigma_t, _ = path.sigma(expand_t_like_x(t, x))
        return call_model(model, x, t, **kw) / -sigma_t

    def from_data(x, t, model, **kw):
        te = expand_t_like_x(t, x)
        return -noise_from_data(call_model(model, x, t, **kw), x, te, path) / path.sigma(te)[0]

    return {"velocity": from_velocity, "score": from_score, "noise": from_noise, "data": from_data}[prediction]
