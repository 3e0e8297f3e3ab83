"""One interface over the two objectives of the suite, so that training and sampling never branch on
which one runs:

    objective = make_objective("ddpm")                 # DiT: ptdit/diffusion (create_diffusion)
    objective = make_objective("sit", path_type="Linear", prediction="velocity")   # ptdit/transport
    losses = objective.loss(model, x, y, generators)   # per-sample losses, shape (N,)
    x = objective.sample(model, noise, y, cfg_scale=1.5, num_steps=250, sampler="ddpm")

`generators` (one torch.Generator per sample, or None for the global RNG) draw each sample's timestep
and noise, so a sample's draws do not depend on the batch it is in (ptdit/data/order.py).
Samplers: ddpm -> "ddpm" (ancestral, DiT sample_ddp.py) | "ddim"; sit -> "sde" (SiT's evaluation:
Euler, diffusion form "sigma", last step "Mean" 0.04) | "ode" (dopri5 by default).

Guidance: by default DiT's (ptdit/diffusion/guidance.py: labels, model.forward_with_cfg, which guides
channels 0-2 only, kept for the official image numbers). Video runs and text models pass
`guidance=conditional_guidance(model, channels)` instead: y is labels (N,) or a caption (text (N, L, D),
mask (N, L)), the unconditional half gets the null label / the model's learned null caption, and ALL
`channels` predicted channels (3 in pixel space, 4 for SD-VAE latents) are guided; learned-sigma channels
stay unguided, each half its own, as in DiT.
"""

import functools

import torch

from ptdit.diffusion import cfg_inputs, create_diffusion, drop_null_half
from ptdit.transport import Sampler, Transport, create_transport

OBJECTIVES = ("ddpm", "sit")
FIXED_STEP_ODE = ("euler", "Euler", "heun2", "Heun", "midpoint", "rk4")  # torchdiffeq's fixed-grid methods


def per_sample(generators, draw):
    """Stack draw(generator) over the samples of a batch."""
    return torch.stack([draw(g) for g in generators])


# ------------------------------------------------------------------ conditioning and guidance
def is_text_model(model):
    """Text models carry PixArt's learned null caption (CaptionEmbedder.y_embedding)."""
    return hasattr(getattr(model, "y_embedder", None), "y_embedding")


def call_conditioned(model, x, t, y):
    """model(x, t, labels) for class models; model(x, t, text, mask=mask) for y = (text, mask)."""
    if isinstance(y, (tuple, list)):
        text, mask = y
        return model(x, t, text, mask=mask)
    return model(x, t, y)


def with_null_caption(model, text, mask, drop):
    """Captions where drop is False, the model's learned null caption (all tokens attended) where it is
    True: caption dropout in training (ptdit/train.py) and the unconditional half of CFG."""
    null = model.y_embedder.y_embedding
    if tuple(null.shape) != tuple(text.shape[1:]):
        raise ValueError(f"the model's null caption has shape {tuple(null.shape)} (text_tokens, caption_channels) "
                         f"but the captions are {tuple(text.shape[1:])}; build the model with "
                         f"text_tokens={text.shape[1]}, caption_channels={text.shape[2]} (the data's text encoder)")
    text = torch.where(drop[:, None, None], null.to(text.dtype)[None], text)
    return text, mask.bool() | drop[:, None]


def unconditional(model, y):
    """The null condition of a batch: label num_classes, or the null caption."""
    if isinstance(y, (tuple, list)):
        text, mask = y
        return with_null_caption(model, text, mask, torch.ones(len(text), dtype=torch.bool, device=text.device))
    return torch.full_like(y, model.config.num_classes)


def conditional_guidance(model, channels):
    """guidance(z, y, cfg_scale) -> (model_fn, z, model_kwargs) for objective.sample: classifier-free
    guidance on the first `channels` output channels (all predicted ones, see the module note)."""
    def guidance(z, y, cfg_scale):
        if cfg_scale <= 1.0:
            return functools.partial(call_conditioned, model), z, dict(y=y)
        y_null = unconditional(model, y)
        both = tuple(torch.cat([a, b]) for a, b in zip(y, y_null)) if isinstance(y, (tuple, list)) \
            else torch.cat([y, y_null])

        def guided(x, t, y):
            half = x[: len(x) // 2]
            out = call_conditioned(model, torch.cat([half, half]), t, y)
            eps, rest = out[:, :channels], out[:, channels:]
            cond, uncond = eps.chunk(2)
            mixed = uncond + cfg_scale * (cond - uncond)
            return torch.cat([torch.cat([mixed, mixed]), rest], dim=1)
        return guided, torch.cat([z, z]), dict(y=both)
    return guidance


def guided_inputs(model, z, y, cfg_scale, guidance):
    if guidance is None:
        return cfg_inputs(model, z, y, cfg_scale, model.config.num_classes)
    return guidance(z, y, cfg_scale)


class DDPMObjective:
    """DiT's diffusion: 1000 linear-beta steps, eps prediction, learned-range variance, MSE + VB."""

    kind = "ddpm"
    default_sampler = "ddpm"

    def __init__(self, **options):
        self.options = options  # create_diffusion's arguments (learn_sigma, noise_schedule, ...)
        self.diffusion = create_diffusion("", **options)

    def loss(self, model, x, y, generators=None):
        T = self.diffusion.num_timesteps
        if generators is None:  # DiT train.py: t uniform in [0, T), noise ~ N(0, I)
            t = torch.randint(0, T, (x.shape[0],), device=x.device)
            noise = torch.randn_like(x)
        else:
            t = per_sample(generators, lambda g: torch.randint(0, T, (), generator=g)).to(x.device)
            noise = per_sample(generators, lambda g: torch.randn(x.shape[1:], generator=g)).to(x)
        terms = self.diffusion.training_losses(model, x, t, model_kwargs=dict(y=y), noise=noise)
        return terms["loss"]

    def sample(self, model, noise, y, cfg_scale=1.0, num_steps=250, sampler=None, noise_fn=None,
               progress=False, guidance=None, **sampler_options):
        """DiT sample_ddp.py: respaced to num_steps, clip_denoised=False. noise_fn(x) replaces the per-step
        noise of both loops (torch.randn_like(x) when None, as DiT): per-sample seeding makes a sample
        independent of the batch it is drawn in."""
        sampler = sampler or self.default_sampler
        diffusion = create_diffusion(str(num_steps), **self.options)
        fn, z, kwargs = guided_inputs(model, noise, y, cfg_scale, guidance)
        if sampler == "ddpm":
            x = diffusion.p_sample_loop(fn, z.shape, z, clip_denoised=False, model_kwargs=kwargs,
                                        progress=progress, device=z.device, noise_fn=noise_fn)
        elif sampler == "ddim":
            x = diffusion.ddim_sample_loop(fn, z.shape, z, clip_denoised=False, model_kwargs=kwargs,
                                           progress=progress, device=z.device, noise_fn=noise_fn, **sampler_options)
        else:
            raise ValueError(f"unknown ddpm sampler '{sampler}'; use 'ddpm' or 'ddim'")
        return drop_null_half(x, cfg_scale)


class _GivenDraws(Transport):
    """SiT's Transport whose (t, x0) may be handed in per batch: Transport.training_losses draws
    them itself from the global RNG, which would tie a sample's draws to its batch and process."""

    draws = None

    def sample(self, x1):
        if self.draws is None:
            return super().sample(x1)
        t, x0 = self.draws
        return t.to(x1), x0.to(x1), x1


class SiTObjective:
    """SiT's interpolants (willisma/SiT transport/): Linear | GVP | VP paths, velocity | score | noise
    (| data, ours: ptdit/transport/prediction.py)."""

    kind = "sit"
    default_sampler = "sde"

    def __init__(self, path_type="Linear", prediction="velocity", loss_weight=None, train_eps=None,
                 sample_eps=None):
        built = create_transport(path_type, prediction, loss_weight, train_eps, sample_eps)  # SiT's eps rules
        self.transport = _GivenDraws(prediction=built.prediction, path_type=built.path_type,
                                     loss_weight=built.loss_weight, train_eps=built.train_eps,
                                     sample_eps=built.sample_eps)

    def loss(self, model, x, y, generators=None):
        tr = self.transport
        if generators is not None:
            t0, t1 = tr.check_interval()
            t = per_sample(generators, lambda g: torch.rand((), generator=g)) * (t1 - t0) + t0
            x0 = per_sample(generators, lambda g: torch.randn(x.shape[1:], generator=g))
            tr.draws = (t, x0)
        try:
            return tr.training_losses(model, x, model_kwargs=dict(y=y))["loss"]
        finally:
            tr.draws = None

    def sample(self, model, noise, y, cfg_scale=1.0, num_steps=250, sampler=None, noise_fn=None,
               progress=False, guidance=None, **sampler_options):
        """SiT sample_ddp.py; noise_fn(x) replaces the SDE's per-step noise (per-sample seeding)."""
        sampler = sampler or self.default_sampler
        fn, z, kwargs = guided_inputs(model, noise, y, cfg_scale, guidance)
        if sampler == "sde":
            options = dict(sampling_method="Euler", diffusion_form="sigma", last_step="Mean",
                           last_step_size=0.04)  # SiT's evaluation settings (baselines.md)
            options.update(sampler_options)
            sample_fn = Sampler(self.transport).sample_sde(num_steps=num_steps, **options)
            x = sample_fn(z, fn, noise_fn=noise_fn, **kwargs)[-1]
        elif sampler == "ode":
            options = dict(sampling_method="dopri5", atol=1e-6, rtol=1e-3)
            options.update(sampler_options)
            ode = Sampler(self.transport).sample_ode(num_steps=num_steps, **options)
            if options["sampling_method"] not in FIXED_STEP_ODE and len(noise) > 1:
                # An adaptive solver (torchdiffeq) picks its steps from an error norm over the whole batch,
                # so a sample would depend on its batch-mates: each sample is integrated alone.
                parts = [self.sample(model, noise[i:i + 1], _rows(y, i), cfg_scale, num_steps, sampler,
                                     progress=progress, guidance=guidance, **sampler_options) for i in range(len(noise))]
                return torch.cat(parts)
            x = ode(z, fn, **kwargs)[-1]
        else:
            raise ValueError(f"unknown sit sampler '{sampler}'; use 'sde' or 'ode'")
        return drop_null_half(x, cfg_scale)


def _rows(y, i):
    """Sample i's condition: labels (N,) or a caption (text, mask)."""
    return tuple(v[i:i + 1] for v in y) if isinstance(y, (tuple, list)) else y[i:i + 1]


def make_objective(kind, **options):
    """kind "ddpm" (options: create_diffusion's) or "sit" (options: create_transport's)."""
    if kind == "ddpm":
        return DDPMObjective(**options)
    if kind == "sit":
        return SiTObjective(**options)
    raise ValueError(f"unknown objective '{kind}'; use one of {', '.join(OBJECTIVES)}")
