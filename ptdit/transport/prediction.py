"""What the network predicts (velocity, score or noise) and how each becomes a drift or a score.

Follows willisma/SiT transport/transport.py (ModelType, Transport.get_drift, get_score and the
per-prediction branches of training_losses). Noise prediction means E[x0 | x_t] (x0 is the
Gaussian end), so score = -noise / sigma_t.

One deliberate difference: SiT's model drops its learned-sigma channels inside forward(); here
a model output with twice the input's channels is accepted and its first half used, so that
a DiT-style model built with learn_sigma=True can also be trained and sampled with SiT's
objective. With SiT's own models nothing changes.
"""

from .path import expand_t_like_x

PREDICTIONS = ("velocity", "score", "noise")


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

    return {"velocity": from_velocity, "score": from_score, "noise": from_noise}[prediction]


def score_fn(prediction, path):
    """score(x, t, model, **kw) = grad log p_t(x) from the model (SiT: get_score)."""

    def from_velocity(x, t, model, **kw):
        return path.score_from_velocity(call_model(model, x, t, **kw), x, t)

    def from_score(x, t, model, **kw):
        return call_model(model, x, t, **kw)

    def from_noise(x, t, model, **kw):
        sigma_t, _ = path.sigma(expand_t_like_x(t, x))
        return call_model(model, x, t, **kw) / -sigma_t

    return {"velocity": from_velocity, "score": from_score, "noise": from_noise}[prediction]
