"""A compression ratio that changes with the noise level (issue 16; a reviewer's idea that PT-DiT's
authors left as future work): coarse windows and few proxies at high noise, fine ones near the data.

A schedule is a list of (upper bound of the noise fraction, ratio) pairs, bounds increasing, the last 1:

    [[0.6, [1, 2, 2]], [1.0, [1, 4, 4]]]      noise fraction <= 0.6: (1,2,2); above 0.6: (1,4,4)

The noise fraction places t between the data (0) and pure noise (1); the two objectives count time
in opposite directions, so a model reads t by the objective it is trained with (`dynamic_ratio_time`):
    ddpm: DiT's integer timestep in [0, 1000), 999 the noisiest           -> t / 1000
    sit:  SiT's time in [0, 1], noise at 0, data at 1 (ptdit/transport/path.py: x_t = t x1 + (1-t) x0,
          x1 the data, x0 the noise; the samplers integrate from t0 ~ 0 to t1 ~ 1) -> 1 - t
DiT's sampler calls the model with the original timestep of a respaced step (ptdit/diffusion/respace.py),
so the fraction of a 25-step sampler's step is that of the same noise level in training.
Torch is imported where it is used: the workflow's plan names runs with schedule_name at parse time.
"""

TIME_KINDS = ("ddpm", "sit")
DDPM_TIMESTEPS = 1000        # DiT's diffusion (create_diffusion's default diffusion_steps)


def parse_schedule(schedule):
    """((bound, (pf, ph, pw)), ...) from the config's nested lists; a clear error on bad input."""
    example = "[[0.6, [1, 2, 2]], [1.0, [1, 4, 4]]]"
    try:
        pairs = tuple((float(bound), tuple(int(r) for r in ratio)) for bound, ratio in schedule)
    except (TypeError, ValueError) as err:
        raise ValueError(f"dynamic_ratio {schedule!r} is not a list of [noise-fraction bound, [pf, ph, pw]] "
                         f"pairs, e.g. {example}") from err
    bounds = [b for b, _ in pairs]
    if not pairs or any(len(r) != 3 for _, r in pairs):
        raise ValueError(f"dynamic_ratio {schedule!r}: give at least one [bound, [pf, ph, pw]] pair, e.g. {example}")
    if any(b <= 0 for b in bounds) or any(a >= b for a, b in zip(bounds, bounds[1:])) or bounds[-1] != 1.0:
        raise ValueError(f"dynamic_ratio {schedule!r}: the bounds must increase within (0, 1] and the last be "
                         f"1.0 (every noise level needs a ratio), e.g. {example}")
    return pairs


def schedule_name(schedule):
    """'1x2x2@0.6+1x4x4@1': the schedule as a file-name part (ratio@bound, finest noise level first)."""
    return "+".join(f"{'x'.join(map(str, r))}@{b:g}" for b, r in parse_schedule(schedule))


def schedule_from_name(name):
    """Inverse of schedule_name, as plain lists (config values)."""
    try:
        pairs = [part.split("@") for part in name.split("+")]
        schedule = [[float(b), [int(r) for r in ratio.split("x")]] for ratio, b in pairs]
    except ValueError as err:
        raise ValueError(f"cannot read dynamic ratio '{name}'; expected e.g. 1x2x2@0.6+1x4x4@1") from err
    parse_schedule(schedule)
    return schedule


def noise_fraction(t, kind):
    """(N,) float64 noise fraction of timesteps t, read as `kind` (module note), clipped to [0, 1]: an
    adaptive ODE solver (dopri5) may probe a little past the end of SiT's interval. t far outside the
    kind's range is an error, which catches a SiT model given DDPM's integer t."""
    if kind not in TIME_KINDS:
        raise ValueError(f"unknown dynamic_ratio_time '{kind}'; choose one of {TIME_KINDS}")
    import torch

    t = t.detach().to(torch.float64)
    fraction = t / DDPM_TIMESTEPS if kind == "ddpm" else 1.0 - t
    if t.numel() and (fraction.min() < -0.5 or fraction.max() > 1.5):
        raise ValueError(f"timesteps {t.min().item():g}..{t.max().item():g} are not {kind} times (ddpm: integers in "
                         f"[0, {DDPM_TIMESTEPS}); sit: [0, 1]); build the model with dynamic_ratio_time matching "
                         f"its objective")
    return fraction.clamp(0.0, 1.0)


def bucket_of(t, schedule, kind):
    """(N,) long: the schedule entry of each timestep (the first whose bound >= its noise fraction)."""
    import torch

    bounds = torch.tensor([b for b, _ in schedule], dtype=torch.float64, device=t.device)
    return torch.bucketize(noise_fraction(t, kind), bounds, right=False)


def ratio_shares(timesteps, schedule, kind):
    """{ratio: share of the model calls} for the timesteps a sampler calls the model with (one call each)."""
    import torch

    buckets = bucket_of(torch.as_tensor(timesteps), schedule, kind).tolist()
    shares = {}
    for b in buckets:
        ratio = schedule[b][1]
        shares[ratio] = shares.get(ratio, 0.0) + 1.0 / len(buckets)
    return shares


def with_time_kind(overrides, objective, objective_options=None):
    """Model overrides with `dynamic_ratio_time` set to the objective's (ptdit train): the objective, not
    the user, decides how t reads. A contradicting value, or a DDPM of other than 1000 steps, is an error."""
    if overrides.get("dynamic_ratio") is None:
        return overrides
    given = overrides.get("dynamic_ratio_time", objective)
    if given != objective:
        raise ValueError(f"dynamic_ratio_time '{given}' contradicts the objective '{objective}'; leave it unset "
                         f"(ptdit train sets it from the objective)")
    steps = (objective_options or {}).get("diffusion_steps", DDPM_TIMESTEPS)
    if objective == "ddpm" and int(steps) != DDPM_TIMESTEPS:
        raise ValueError(f"dynamic_ratio reads DDPM t as t / {DDPM_TIMESTEPS}; diffusion_steps {steps} is not supported")
    return {**overrides, "dynamic_ratio_time": objective}
