"""`ptdit train`: one plain training loop (karpathy/nanoGPT train.py style; recipe of
facebookresearch/DiT train.py: AdamW lr 1e-4, wd 0, betas (0.9, 0.999), EMA 0.9999, constant lr).

Run folder (the declared output of a workflow rule is run_dir/final.pt; everything else lives beside
it, so a workflow that deletes an incomplete final.pt leaves the checkpoints to resume from):
    run_dir/config.yaml               the TrainConfig it runs with
    run_dir/checkpoints/NNNNNNN.pt    every ckpt_every steps, atomic: model, ema, opt, step, rng, data
    run_dir/log.csv                   step, loss, grad_norm, lr, steps_per_s, images_per_s, data_share
    run_dir/final.pt                  model + ema + config, written when the last step is done

Running train on a folder that has checkpoints resumes from the last one; on a finished run (final.pt
of this config at >= steps) it does nothing and says so. A run killed at any point
and resumed ends with the same weights as an uninterrupted one (bit-exact on CPU): the data order and
every random draw are functions of (seed, step, sample position) (ptdit/data/order.py), and the
optimizer, EMA and RNG states come back from the checkpoint.

Data: a `ptdit encode` folder (images: latents or pixels) or a `ptdit encode-video` folder (video clips,
with class labels or captions). Conditioning dropout for classifier-free guidance lives in THIS loop, not
in the model: each sample's drop is drawn from its own generator (seed, step, position), at
config.cond_dropout (default: the model's class_dropout_prob, 0.1 in DiT and PixArt). Class models get
the null label (the model's own LabelEmbedder dropout is switched off); text models get the model's
learned null caption (PixArt's y_embedding, which PixArt's CaptionEmbedder would otherwise drop to with
the global RNG), swapped in by CaptionConditioned inside the forward pass so that it trains under DDP.
"""

import csv
import dataclasses
import functools
import glob
import json
import logging
import math
import os
import random
import time
from copy import deepcopy
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.utils.checkpoint
import yaml
from tqdm import tqdm

import ptdit
from ptdit import distributed
from ptdit.atomic import atomic_text, atomic_torch_save
from ptdit.config import plain
from ptdit.data.latents import LatentDataset
from ptdit.data.order import TRAIN, StepBatches, generator
from ptdit.data.video_latents import FORMAT as VIDEO_FORMAT
from ptdit.data.video_latents import VideoLatentDataset
from ptdit.dynamic_ratio import with_time_kind
from ptdit.objectives import call_conditioned, is_text_model, make_objective, with_null_caption

log = logging.getLogger(__name__)

LOG_COLUMNS = ["step", "loss", "grad_norm", "lr", "steps_per_s", "images_per_s", "data_share"]
# Fields that may change when a run is resumed (they do not change what is computed).
RESUMABLE_CHANGES = {"steps", "ckpt_every", "log_every", "num_workers", "compile", "device", "progress"}


@dataclass(frozen=True)
class TrainConfig:
    run_dir: str
    data: str                                   # a `ptdit encode` / `ptdit encode-video` folder
    model: str = "DiT-S/2"
    model_overrides: dict = field(default_factory=dict)   # input_size/in_channels/num_classes: from data
    objective: str = "ddpm"                     # ddpm | sit
    objective_options: dict = field(default_factory=dict)
    steps: int = 400_000
    global_batch_size: int = 256
    lr: float = 1e-4
    lr_schedule: str = "constant"               # constant (DiT, SiT) | cosine: from lr to 0 at `steps`
    warmup_steps: int = 0                       # linear warm-up from 0 to lr (both schedules)
    weight_decay: float = 0.0
    betas: tuple = (0.9, 0.999)
    ema_decay: float = 0.9999
    cond_dropout: float | None = None           # label / caption dropout for CFG; None: the model's class_dropout_prob
    ckpt_every: int = 50_000
    log_every: int = 100
    seed: int = 0
    num_workers: int = 0
    bf16: bool = True                           # autocast, on CUDA only
    tf32: bool = True                           # on CUDA only (DiT train.py sets both flags)
    grad_checkpointing: bool = False
    compile: bool | str = False                 # False | True (= "default") | default | reduce-overhead | max-autotune
    device: str = "auto"
    progress: bool = True

    def to_dict(self):
        """Plain lists, dicts and scalars: what YAML and torch.load(weights_only=True) both take."""
        return plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


def compile_mode(config):
    """None (eager) or the torch.compile mode of config.compile; reduce-overhead captures CUDA graphs."""
    if config.compile is False or config.compile is None:
        return None
    mode = "default" if config.compile is True else config.compile
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile: {config.compile!r} is not a torch.compile mode; use false, true or one of {COMPILE_MODES}")
    return mode


LR_SCHEDULES = ("constant", "cosine")


def lr_at(config, step):
    """Learning rate of the update that takes the model from `step` to step + 1.

    DiT and SiT train at a constant rate (their train.py); a run of a few thousand steps ends far
    from a minimum at a constant rate, and a cosine decay to 0 lets it settle (our choice for short
    CPU runs; a function of the step, so a resumed run continues the same curve)."""
    if config.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule: {config.lr_schedule!r} is not one of {LR_SCHEDULES}")
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.lr_schedule == "constant":
        return config.lr
    span = max(config.steps - config.warmup_steps, 1)
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(step - config.warmup_steps, span) / span))


class NonFiniteLoss(FloatingPointError):
    pass


# ------------------------------------------------------------------ data and model
def open_training_data(folder):
    """LatentDataset for `ptdit encode` folders, VideoLatentDataset for `ptdit encode-video` ones."""
    path = os.path.join(folder, "meta.json")
    if os.path.isfile(path):
        with open(path) as f:
            if json.load(f).get("format") == VIDEO_FORMAT:
                return VideoLatentDataset(folder)
    return LatentDataset(folder)  # its reader names a missing or foreign meta.json


def model_overrides(config, meta):
    """The data fixes input size, channels and classes (video: frames; captions: the text encoder's
    width and length) unless the config says otherwise."""
    overrides = {"input_size": meta["latent_size"], "in_channels": meta["channels"]}
    if meta["format"] == VIDEO_FORMAT:
        overrides.update(video=True, num_frames=meta["latent_frames"])
    if meta.get("text_encoder"):
        overrides.update(caption_channels=meta["text_encoder"]["dim"], text_tokens=meta["text_encoder"]["max_tokens"])
    else:
        overrides["num_classes"] = meta["num_classes"]
    overrides.update(config.model_overrides)
    return overrides


def decoder_info(meta):
    """How ptdit/sample.py turns this data's samples into pixels (and, for captions, which encoder)."""
    video = meta["format"] == VIDEO_FORMAT
    kind = meta["mode"] if video else ("image" if meta["mode"] == "vae" else "pixel")
    return {"decoder": meta["vae"] if kind != "pixel" else "pixel", "decoder_kind": kind,
            "scale_factor": meta["scale_factor"], "video": video, "text_encoder": meta.get("text_encoder")}


class CaptionConditioned(nn.Module):
    """A text model in training: forward(x, t, y) with y = (text (N, L, D), mask (N, L), drop (N,) bool).
    Dropped captions become the model's learned null caption here, inside the forward pass, so that
    the null caption gets its gradient (also through DDP)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, t, y):
        text, mask, drop = y
        return call_conditioned(self.model, x, t, with_null_caption(self.model, text, mask, drop))


def enable_grad_checkpointing(model):
    """Recompute each block in the backward pass (fast-DiT does this inside DiT's forward loop). The
    model files have no switch for it, so each block's forward is wrapped; parameter names stay."""
    for block in model.blocks:
        block.forward = functools.partial(torch.utils.checkpoint.checkpoint, block.forward, use_reentrant=False)


@torch.no_grad()
def update_ema(ema, model, decay):
    """DiT train.py update_ema: ema = decay * ema + (1 - decay) * param, over all named parameters."""
    ema_params = dict(ema.named_parameters())
    for name, param in model.named_parameters():
        ema_params[name].mul_(decay).add_(param.data, alpha=1 - decay)


# ------------------------------------------------------------------ RNG states
def rng_state():
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                       "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------ run folder
def checkpoint_dir(run_dir):
    return os.path.join(run_dir, "checkpoints")


def latest_checkpoint(run_dir):
    """Path of the highest-step checkpoint, or None. Temporaries (*.tmp<pid>) never match."""
    paths = glob.glob(os.path.join(checkpoint_dir(run_dir), "[0-9]" * 7 + ".pt"))
    return max(paths, key=lambda p: int(os.path.basename(p)[:7])) if paths else None


def config_changes(old, config):
    """'key: old -> new' for every field (beyond RESUMABLE_CHANGES) in which `config` differs from `old`."""
    old, new = TrainConfig.from_dict(old).to_dict(), config.to_dict()
    # a cosine schedule ends at `steps`: more steps would bend the curve the run has already followed
    resumable = RESUMABLE_CHANGES - {"steps"} if config.lr_schedule == "cosine" else RESUMABLE_CHANGES
    return [f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in sorted(new) if k not in resumable and old.get(k) != new[k]]


def check_same_run(config):
    """A run folder holds one run: a config that differs (beyond RESUMABLE_CHANGES) is an error."""
    path = os.path.join(config.run_dir, "config.yaml")
    if not os.path.exists(path):
        return
    with open(path) as f:
        changed = config_changes(yaml.safe_load(f), config)
    if changed:
        raise ValueError(f"run folder '{config.run_dir}' holds a run with another config (differs in "
                         f"{', '.join(changed)}); use a new run_dir or the same settings")


def finished_step(config):
    """The step of the run's final.pt, or None without one; a final.pt trained with another config is
    an error. mmap: only the config and step are read, not the weights."""
    path = os.path.join(config.run_dir, "final.pt")
    if not os.path.exists(path):
        return None
    try:
        final = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        old, step = final["config"], int(final["step"])
    except Exception as err:
        raise ValueError(f"'{path}' is not a readable `ptdit train` final.pt ({type(err).__name__}: {err}); "
                         f"delete it to finish the run again from its last checkpoint") from err
    changed = config_changes(old, config)
    if changed:
        raise ValueError(f"'{path}' was trained with another config (differs in {', '.join(changed)}); "
                         f"use a new run_dir or the same settings")
    return step


def read_log(path, up_to_step):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [row for row in csv.DictReader(f) if int(row["step"]) <= up_to_step]


def restart_log(path, up_to_step):
    """Keep the rows up to the resumed step: rows of steps that will be redone are dropped."""
    rows = read_log(path, up_to_step)
    text = ",".join(LOG_COLUMNS) + "\n" + "".join(",".join(str(r[c]) for c in LOG_COLUMNS) + "\n" for r in rows)
    atomic_text(path, text)


def append_log(path, row):
    with open(path, "a") as f:
        f.write(",".join(str(row[c]) for c in LOG_COLUMNS) + "\n")


def restore(run_dir, model, ema, opt, config, ctx):
    """Load the last checkpoint of the run (returns its step), or seed a fresh run (returns 0)."""
    last = latest_checkpoint(run_dir)
    if last is None:
        update_ema(ema, model, decay=0)  # DiT: start the EMA from the initial weights
        # Seeds per rank, as DiT train.py: global_seed * world_size + rank.
        torch.manual_seed(config.seed * ctx.world_size + ctx.rank)
        np.random.seed(config.seed * ctx.world_size + ctx.rank)
        random.seed(config.seed * ctx.world_size + ctx.rank)
        return 0
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    model.load_state_dict(ckpt["model"])
    ema.load_state_dict(ckpt["ema"])
    opt.load_state_dict(ckpt["opt"])
    states = ckpt["rng"]
    if len(states) == ctx.world_size:
        set_rng_state(states[ctx.rank])
    else:
        log.warning("checkpoint has RNG states of %d processes, this run has %d: reseeding the global "
                    "RNGs (the data order and training draws do not depend on them)", len(states), ctx.world_size)
        torch.manual_seed(config.seed * ctx.world_size + ctx.rank)
    log.info("resuming %s from step %d (%s)", run_dir, ckpt["step"], last)
    return ckpt["step"]


# ------------------------------------------------------------------ the loop
def train(config, on_step=None):
    """Train (or resume) the run in config.run_dir; returns the path of final.pt.
    on_step(step, model, ctx) is called on every process after each optimizer step (tests, hooks)."""
    ctx = distributed.setup(config.device)
    try:
        return _train(config, ctx, on_step)
    finally:
        distributed.teardown(ctx)


def _train(config, ctx, on_step):
    cuda = ctx.device.type == "cuda"
    if cuda and config.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    run_dir = config.run_dir
    check_same_run(config)
    done = finished_step(config)
    if done is not None and done >= config.steps:
        # A finished run (e.g. a finished SLURM job resubmitted by Snakemake's retries) costs
        # seconds and writes nothing: final.pt, config.yaml and the checkpoints keep their mtimes.
        if ctx.is_main:
            log.info("already finished: %s holds step %d (of %d); nothing to do", os.path.join(run_dir, "final.pt"),
                     done, config.steps)
        return os.path.join(run_dir, "final.pt")
    distributed.barrier(ctx)  # every process checked the old config before rank 0 rewrites it
    if ctx.is_main:
        os.makedirs(checkpoint_dir(run_dir), exist_ok=True)
        atomic_text(os.path.join(run_dir, "config.yaml"), yaml.safe_dump(config.to_dict(), sort_keys=False))

    data = open_training_data(config.data)
    captioned = getattr(data, "captioned", False)
    overrides = plain(with_time_kind(model_overrides(config, data.meta), config.objective, config.objective_options))
    if overrides.get("dynamic_ratio") is not None and config.grad_checkpointing:
        raise ValueError("grad_checkpointing recomputes a block in the backward pass, after a dynamic-ratio forward "
                         "has switched the windows back; train dynamic_ratio without it")
    torch.manual_seed(config.seed)  # the initial weights depend on the seed only (DDP also broadcasts them)
    model = ptdit.create_model(config.model, **overrides).to(ctx.device)
    ema = deepcopy(model).requires_grad_(False).eval()
    if captioned != is_text_model(model):
        raise ValueError(f"model {config.model} is {'text' if is_text_model(model) else 'class'}-conditional but "
                         f"the data '{config.data}' has {'captions' if captioned else 'class labels'}; use a "
                         f"{'-T2V / -T2I' if captioned else 'class (-Video, DiT, PT-DiT/*-Class)'} model")
    # Label / caption dropout for CFG, drawn per sample by the loop (seeded by the sample's position,
    # see ptdit/data/order.py); the model's own label token_drop is switched off so that labels are
    # not dropped twice (DiT models.py LabelEmbedder draws from the global RNG).
    drop_prob = model.config.class_dropout_prob if config.cond_dropout is None else config.cond_dropout
    if not captioned:
        if drop_prob > 0 and model.config.class_dropout_prob <= 0:
            raise ValueError(f"cond_dropout {drop_prob} needs a null label: build {config.model} with "
                             f"class_dropout_prob > 0 (-m class_dropout_prob=0.1)")
        model.y_embedder.dropout_prob = 0.0
    options = dict(config.objective_options)
    if config.objective == "ddpm":
        options.setdefault("learn_sigma", model.config.learn_sigma)
    objective = make_objective(config.objective, **options)
    # fused AdamW on CUDA: one kernel for the whole update instead of a few per parameter tensor
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                            betas=tuple(config.betas), fused=ctx.device.type == "cuda")
    # What ptdit/sample.py needs to rebuild the model and decode its samples without the data folder.
    info = {"config": config.to_dict(), "model_name": config.model, "model_overrides": overrides,
            **decoder_info(data.meta)}

    step = restore(run_dir, model, ema, opt, config, ctx)
    final_path = os.path.join(run_dir, "final.pt")
    if step >= config.steps:
        if ctx.is_main and not os.path.exists(final_path):
            save_final(final_path, model, ema, step, info)
        return final_path

    if config.grad_checkpointing:
        enable_grad_checkpointing(model)
    train_model = CaptionConditioned(model) if captioned else model
    mode = compile_mode(config)
    lr_at(config, step)  # names a bad lr_schedule before the first step
    if mode is not None:
        train_model = torch.compile(train_model, mode=mode)
    if ctx.world_size > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(
            train_model, device_ids=[ctx.local_rank] if cuda else None)
    model.train()

    batches = StepBatches(len(data), config.global_batch_size, config.seed, ctx.rank, ctx.world_size,
                          start_step=step, end_step=config.steps)
    loader = torch.utils.data.DataLoader(data, batch_sampler=batches, num_workers=config.num_workers,
                                         pin_memory=cuda, persistent_workers=False)
    if ctx.is_main:
        restart_log(os.path.join(run_dir, "log.csv"), step)
        log.info("training %s (%s, %.2fM params) with %s on %d samples, %d process(es), from step %d to %d",
                 config.model, overrides, sum(p.numel() for p in model.parameters()) / 1e6, config.objective,
                 len(data), ctx.world_size, step, config.steps)

    null_label = model.config.num_classes
    local = config.global_batch_size // ctx.world_size
    first_j = ctx.rank * local
    bar = tqdm(total=config.steps, initial=step, desc="train", disable=not (ctx.is_main and config.progress))
    sums = torch.zeros(2, dtype=torch.float64, device=ctx.device)  # loss, grad norm over the log window
    window_start, window_steps, data_time = time.perf_counter(), 0, 0.0
    fetch_start = time.perf_counter()
    for x, y in loader:
        data_time += time.perf_counter() - fetch_start
        x = x.to(ctx.device, non_blocking=True)
        gens = [generator(config.seed, TRAIN, step, first_j + i) for i in range(len(x))]
        drop = torch.stack([torch.rand((), generator=g) < drop_prob for g in gens]).to(ctx.device)
        if captioned:
            text, mask = y
            y = (text.to(ctx.device, non_blocking=True), mask.to(ctx.device, non_blocking=True), drop)
        else:
            y = y.to(ctx.device, non_blocking=True)
            y = torch.where(drop, torch.full_like(y, null_label), y)
        if mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()     # the last step's graph outputs may be reused
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and config.bf16):
            loss = objective.loss(train_model, x, y, gens).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for group in opt.param_groups:
            group["lr"] = lr_at(config, step)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))  # measures, no clipping
        opt.step()
        update_ema(ema, model, config.ema_decay)
        step += 1
        sums += torch.stack([loss.detach().double(), grad_norm.detach().double()])
        window_steps += 1
        bar.update(1)
        if on_step is not None:
            on_step(step, model, ctx)

        at_ckpt = step % config.ckpt_every == 0 or step == config.steps
        if step % config.log_every == 0 or at_ckpt:
            end_window(sums, window_steps, time.perf_counter() - window_start, data_time, step, opt, config, ctx)
            sums.zero_()
            window_start, window_steps, data_time = time.perf_counter(), 0, 0.0
        if at_ckpt:
            save_checkpoint(run_dir, step, model, ema, opt, info, batches, ctx)
        fetch_start = time.perf_counter()
    bar.close()
    if ctx.is_main:
        save_final(final_path, model, ema, step, info)
    distributed.barrier(ctx)
    return final_path


def end_window(sums, window_steps, elapsed, data_time, step, opt, config, ctx):
    """The one host sync of a log window: a NaN/inf anywhere in it shows in the sums; then a log row."""
    loss_mean, gn_mean = distributed.mean_over_ranks((sums / window_steps).tolist(), ctx)
    if not (np.isfinite(loss_mean) and np.isfinite(gn_mean)):
        raise NonFiniteLoss(
            f"loss or gradient norm became NaN/inf between steps {step - window_steps + 1} and {step} "
            f"of {config.run_dir} (loss {loss_mean}, grad norm {gn_mean}); the run stopped without saving, "
            f"its last good checkpoint is {latest_checkpoint(config.run_dir)}. Lower lr, check the data "
            f"(`ptdit encode` output) or use bf16=False")
    if ctx.is_main:
        append_log(os.path.join(config.run_dir, "log.csv"), {
            "step": step, "loss": f"{loss_mean:.6f}", "grad_norm": f"{gn_mean:.6f}",
            "lr": opt.param_groups[0]["lr"], "steps_per_s": f"{window_steps / elapsed:.4f}",
            "images_per_s": f"{window_steps * config.global_batch_size / elapsed:.2f}",
            "data_share": f"{data_time / elapsed:.4f}"})


def save_checkpoint(run_dir, step, model, ema, opt, info, batches, ctx):
    states = distributed.gather_objects(rng_state(), ctx)  # every process's RNG states
    if ctx.is_main:
        path = os.path.join(checkpoint_dir(run_dir), f"{step:07d}.pt")
        atomic_torch_save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                           "step": step, "rng": states, "data_position": batches.position(step), **info}, path)
        log.info("saved %s", path)
    distributed.barrier(ctx)


def save_final(path, model, ema, step, info):
    """The run's declared output: weights and how to rebuild the model (ptdit/sample.py reads it)."""
    atomic_torch_save({"model": model.state_dict(), "ema": ema.state_dict(), "step": step, **info}, path)
