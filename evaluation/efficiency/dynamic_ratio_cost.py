"""GFLOPs of a dynamic-ratio PT-DiT (ptdit/dynamic_ratio.py): the mean over the model calls of one
sampling run. Each ratio is counted as the static model at that ratio (evaluation/efficiency/flops.py,
same parameters), weighted by the share of the sampler's calls that use it.

The sampler's timesteps are recorded, not re-derived: the objective's own sampler runs once with a
stand-in model that records t and predicts zeros, so DDPM respacing, SiT's time interval and its
last step come out exactly as in sampling (fixed-grid samplers; an adaptive ODE chooses its steps from
the real model's outputs, and is recorded here on the stand-in's).
"""

import torch

from ptdit.dynamic_ratio import parse_schedule, ratio_shares

DYNAMIC_KEYS = ("dynamic_ratio", "dynamic_ratio_time")


class _Recorder(torch.nn.Module):
    """Predicts zeros (learned-sigma channels included) and keeps every t it is called with."""

    def __init__(self, channels):
        super().__init__()
        self.channels, self.calls = channels, []

    def forward(self, x, t, y):
        self.calls.extend(t.tolist())
        return torch.zeros(x.shape[0], self.channels, *x.shape[2:])


def sampler_timesteps(objective, sampler, num_steps, objective_options=None, sampler_options=None):
    """t of each model call of one batch-1, unguided sampling run, in call order; sampler_options as
    `ptdit sample -s` (e.g. {"sampling_method": "euler"} for SiT's ODE, whose default is dopri5)."""
    from ptdit.objectives import make_objective

    options = dict(objective_options or {})
    learn_sigma = objective == "ddpm" and options.setdefault("learn_sigma", True)
    recorder = _Recorder(2 if learn_sigma else 1)
    noise = torch.randn(1, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        make_objective(objective, **options).sample(recorder, noise, torch.zeros(1, dtype=torch.long),
                                                    num_steps=num_steps, sampler=sampler,
                                                    guidance=lambda z, y, cfg_scale: (recorder, z, dict(y=y)),
                                                    **(sampler_options or {}))
    return recorder.calls


def schedule_cost(model, overrides, objective, sampler, num_steps, objective_options=None, sampler_options=None):
    """(params, mean GFLOPs over the sampling run, {ratio: (share of calls, GFLOPs)}) of `model` with a
    `dynamic_ratio` in `overrides`."""
    from evaluation.efficiency.flops import model_gflops

    schedule = parse_schedule(overrides["dynamic_ratio"])
    shares = ratio_shares(sampler_timesteps(objective, sampler, num_steps, objective_options, sampler_options),
                          schedule, objective)
    static = {k: v for k, v in overrides.items() if k not in DYNAMIC_KEYS}
    per_ratio, params = {}, None
    for ratio, share in shares.items():
        params, gflops = model_gflops(model, **{**static, "compression_ratio": list(ratio)})
        per_ratio[ratio] = (share, gflops)
    return params, sum(share * gflops for share, gflops in per_ratio.values()), per_ratio
