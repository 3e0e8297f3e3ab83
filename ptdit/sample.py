"""`ptdit sample`: samples in ADM's format (.npz: arr_0 uint8 [N, H, W, 3], arr_1 int64 labels).

facebookresearch/DiT sample_ddp.py, made independent of the number of processes and resumable:
- sample i's initial noise, its per-step noise (DDPM's ancestral and DDIM's noise, the SDE's) and its
  label when labels are "uniform" come from generators seeded by (seed, i); "balanced" labels are
  i mod num_classes; adaptive ODE solvers integrate each sample alone (ptdit/objectives.py); so a
  sample is the same for any batch size and any number of processes;
- the work is cut into shards of batch_size consecutive indices; shard k runs on process k mod W;
- shards are written atomically to <out>.shards/ and skipped when present (resume); rank 0 then
  streams them into <out> (temporary file + os.replace) and removes the shard folder.
Decoding: VAE (z / scale) or pixel space, then DiT's clamp(127.5 * x + 128, 0, 255) to uint8.
Checkpoints: `ptdit train` runs (final.pt / checkpoints) and the official DiT / SiT / DAM releases
(raw state dicts or train.py {model, ema, opt, args}) through ptdit.checkpoint.

Video runs (trained on `ptdit encode-video` data) write arr_0 uint8 (N, F, H, W, 3) and, instead of
arr_1, `labels` (N,) int64 for class models or `captions` (N,) unicode for text models (np.load with
allow_pickle=False reads both). Decoding: pixels directly, image-VAE latents frame by frame, causal-VAE
latents through its 3-D decoder (ptdit/data/video_latents.py decode_video). Text models take their
captions from an encoded captioned folder (config.captions, the test split): sample i uses the fixed
eval caption of clip i mod N, and guidance is against the model's null caption. Video and text runs
guide all predicted channels (ptdit/objectives.py conditional_guidance); image class runs keep DiT's
forward_with_cfg (channels 0-2) for the official numbers.
"""

import argparse
import dataclasses
import logging
import os
import shutil
import zipfile
from dataclasses import dataclass, field

import numpy as np
import torch
import yaml
from tqdm import tqdm

import ptdit
from ptdit import distributed
from ptdit.atomic import atomic_text, atomic_write
from ptdit.checkpoint import load_weights
from ptdit.config import plain
from ptdit.data.latents import SD_VAE_SCALE, load_vae
from ptdit.data.order import SAMPLE_LABEL, SAMPLE_NOISE, SAMPLE_SDE, generator
from ptdit.data.video_latents import EvalCaptions, decode_video, load_any_vae
from ptdit.objectives import conditional_guidance, is_text_model, make_objective

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleConfig:
    checkpoint: str                      # final.pt / NNNNNNN.pt of a run, or an official .pt
    out: str                             # the .npz to write
    num_samples: int = 50_000
    batch_size: int = 32                 # samples per shard (= per forward batch)
    cfg_scale: float = 1.0
    num_steps: int = 250
    sampler: str | None = None           # ddpm | ddim (ddpm objective); sde | ode (sit); None: default
    sampler_options: dict = field(default_factory=dict)
    labels: str = "uniform"              # uniform (DiT sample_ddp.py) | balanced (i mod num_classes)
    seed: int = 0
    weights: str = "ema"                 # ema | model
    decoder: str = "auto"                # auto (from the run's data), pixel, or a local VAE folder
    captions: str | None = None          # text models: an `encode-video` folder with captions (test split)
    model: str | None = None             # needed for official checkpoints; else from the run
    model_overrides: dict = field(default_factory=dict)
    objective: str | None = None         # None: the run's, or ddpm for DiT-*, sit otherwise
    objective_options: dict = field(default_factory=dict)
    device: str = "auto"
    keep_shards: bool = False
    progress: bool = True


def read_run_info(path):
    """The train config stored in a `ptdit train` checkpoint, or None for an official one."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint '{path}' does not exist")
    with torch.serialization.safe_globals([argparse.Namespace]):
        obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "model_name" in obj and "config" in obj:
        # Runs saved before video support have no decoder_kind / video / text_encoder entries.
        return {"model": obj["model_name"], "model_overrides": obj["model_overrides"], "train": obj["config"],
                "decoder": obj["decoder"], "scale_factor": obj["scale_factor"],
                "decoder_kind": obj.get("decoder_kind", "pixel" if obj["decoder"] == "pixel" else "image"),
                "video": obj.get("video", False), "text_encoder": obj.get("text_encoder")}
    return None


def same_shape(name, run_model):
    """True if `name` is registered with every config field of the run's model at the same value
    (DiT-S/2-ToMe0.25 on a DiT-S/2 run: the same weights plus its own fields), so the run's overrides
    (depth, width, input size, ...) apply to it as well."""
    from ptdit.registry import get_spec

    mine, theirs = get_spec(name).config, get_spec(run_model).config
    return all(mine.get(k) == v for k, v in theirs.items())


def resolve(config):
    """(model name, overrides, objective kind, objective options, decoder, scale) from the config and run."""
    return resolve_run(config)[:6]


def resolve_run(config):
    """resolve()'s six values, then the decoder kind (pixel | image | causal3d) and the run info (None
    for an official checkpoint)."""
    run = read_run_info(config.checkpoint)
    if run is None and config.model is None:
        raise ValueError(f"'{config.checkpoint}' is not a `ptdit train` checkpoint: pass the model name "
                         f"(e.g. --model DiT-XL/2 or SiT-XL/2) and, if needed, --objective")
    name = config.model or run["model"]
    inherit = run and (name == run["model"] or same_shape(name, run["model"]))
    overrides = {**(run["model_overrides"] if inherit else {}), **config.model_overrides}
    if config.objective:
        kind, options = config.objective, dict(config.objective_options)
    elif run:
        kind, options = run["train"]["objective"], {**run["train"]["objective_options"], **config.objective_options}
    else:
        # SiT and DAM train with SiT's transport; DiT and Agent-DiT with DiT's DDPM.
        kind, options = ("sit" if name.startswith(("SiT", "DAM")) else "ddpm"), dict(config.objective_options)
    decoder, scale = config.decoder, SD_VAE_SCALE
    decoder_kind = "pixel" if decoder == "pixel" else "image"
    if decoder == "auto":
        if run is None:
            raise ValueError("an official checkpoint needs --decoder: the folder of sd-vae-ft-ema / -mse")
        decoder, scale, decoder_kind = run["decoder"], run["scale_factor"], run["decoder_kind"]
    elif decoder != "pixel" and run is not None and run["decoder_kind"] == "causal3d":
        decoder_kind, scale = "causal3d", run["scale_factor"]  # another copy of the run's video VAE
    return name, overrides, kind, options, decoder, scale, decoder_kind, run


def shard_dir(out):
    return (out[:-4] if out.endswith(".npz") else out) + ".shards"


def shard_indices(k, config):
    return range(k * config.batch_size, min((k + 1) * config.batch_size, config.num_samples))


def labels_for(indices, config, num_classes):
    if config.labels == "balanced":
        return torch.tensor([i % num_classes for i in indices])
    if config.labels == "uniform":
        return torch.stack([torch.randint(0, num_classes, (), generator=generator(config.seed, SAMPLE_LABEL, i))
                            for i in indices])
    raise ValueError(f"labels must be 'uniform' or 'balanced', not {config.labels!r}")


def to_uint8(x):
    """DiT sample_ddp.py: clamp(127.5 * x + 128, 0, 255) -> uint8, NCHW -> NHWC."""
    return torch.clamp(127.5 * x + 128.0, 0, 255).permute(0, 2, 3, 1).to("cpu", dtype=torch.uint8).numpy()


def conditions_for(indices, config, model, captions):
    """(y for the model, {npz name: array}) of the samples `indices`: labels, or for text models the
    eval caption of clip i mod N of the captions folder (an EvalCaptions)."""
    if captions is None:
        y = labels_for(indices, config, model.config.num_classes)
        return y, {"labels": y.numpy().astype(np.int64)}
    clips = [i % len(captions) for i in indices]
    return captions.features(clips), {"captions": np.array([captions.strings[c] for c in clips], dtype=str)}


@torch.no_grad()
def sample_shard(k, model, objective, vae, scale, config, device, decoder_kind="image", captions=None):
    """(uint8 images or clips, {npz name: array of labels or captions}) of shard k."""
    indices = shard_indices(k, config)
    shape = model.config.input_shape
    noise = torch.stack([torch.randn(shape, generator=generator(config.seed, SAMPLE_NOISE, i)) for i in indices])
    y, named = conditions_for(indices, config, model, captions)
    video, text = model.config.video, captions is not None
    guidance = conditional_guidance(model, model.config.in_channels) if (video or text) else None
    step_gens = [generator(config.seed, SAMPLE_SDE, i) for i in indices]  # every sampler's per-step noise

    def noise_fn(x):
        n = torch.stack([torch.randn(x.shape[1:], generator=g) for g in step_gens])
        return n.repeat(x.shape[0] // len(n), *([1] * (x.ndim - 1))).to(x)  # CFG doubles the batch

    y = tuple(v.to(device) for v in y) if text else y.to(device)
    x = objective.sample(model, noise.to(device), y, cfg_scale=config.cfg_scale, num_steps=config.num_steps,
                         sampler=config.sampler, noise_fn=noise_fn, guidance=guidance, **config.sampler_options)
    if video:
        return decode_video(x, decoder_kind, vae, scale), named
    if vae is not None:
        x = vae.decode(x / scale).sample
    return to_uint8(x), named


def write_npz_streaming(path, parts, num_samples, names=None):
    """np.savez-compatible .npz (arr_0 images, arr_1 labels) written shard by shard, never holding all
    images in memory (50k at 256 px is 9.8 GB); atomic. names: {shard key: npz name} of the per-sample
    arrays after arr_0 (default {"labels": "arr_1"}; video: {"labels": "labels"} or {"captions": "captions"})."""
    names = names or {"labels": "arr_1"}
    first = np.load(parts[0], allow_pickle=False)["images"]
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
              "shape": (num_samples, *first.shape[1:])}

    def write(tmp):
        columns = {key: [] for key in names}
        with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
            with zf.open("arr_0.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array_header_2_0(f, header)
                for part in parts:
                    with np.load(part, allow_pickle=False) as z:
                        f.write(np.ascontiguousarray(z["images"]).tobytes())
                        for key in names:
                            columns[key].append(z[key])
            for key, name in names.items():
                with zf.open(f"{name}.npy", "w") as f:
                    np.lib.format.write_array(f, np.concatenate(columns[key]), allow_pickle=False)
    atomic_write(path, write)


def save_shard(path, images, labels=None, **named):
    """One shard: images and its per-sample arrays (labels and/or captions)."""
    arrays = {"images": images, **({} if labels is None else {"labels": labels}), **named}

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    atomic_write(path, write)


def check_shard_config(folder, config):
    """A shard folder belongs to one configuration; resuming with another is an error."""
    path = os.path.join(folder, "config.yaml")
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("device", "keep_shards", "progress")}
    if fields["captions"] is None:
        del fields["captions"]  # shard folders of image runs written before text models stay resumable
    text = yaml.safe_dump(plain(fields), sort_keys=True)
    if os.path.exists(path):
        with open(path) as f:
            if f.read() != text:
                raise ValueError(f"'{folder}' holds samples of another configuration; delete it or change --out")
    else:
        atomic_text(path, text)


def load_captions(config, model, run):
    """EvalCaptions for a text model, checked against the run's text encoder; None for class models."""
    if not is_text_model(model):
        if config.captions:
            raise ValueError(f"--captions is for text models; {type(model).__name__} is class-conditional")
        return None
    if not config.captions:
        raise ValueError("a text model samples from captions: pass --captions, the `ptdit encode-video msrvtt "
                         "... --split test` folder (each sample takes the eval caption of one test clip)")
    captions = EvalCaptions(config.captions)
    used = captions.text_encoder
    trained = run.get("text_encoder") if run else None
    same = ("kind", "dim", "max_tokens")
    if used and trained and any(used.get(k) != trained.get(k) for k in same):
        raise ValueError(f"the captions in '{config.captions}' were encoded with {used} but the model was trained "
                         f"on {trained}; encode the test split with the same --text-encoder / --max-tokens")
    return captions


def sample(config):
    """Write config.out; run under torchrun to spread shards over processes. Returns config.out."""
    ctx = distributed.setup(config.device)
    try:
        return _sample(config, ctx)
    finally:
        distributed.teardown(ctx)


def _sample(config, ctx):
    if os.path.exists(config.out):
        log.info("%s exists; nothing to do", config.out)
        return config.out
    name, overrides, kind, options, decoder, scale, decoder_kind, run = resolve_run(config)
    model = ptdit.create_model(name, **overrides)
    load_weights(model, config.checkpoint, prefer=config.weights)
    model = model.to(ctx.device).eval()
    if kind == "ddpm":
        options.setdefault("learn_sigma", model.config.learn_sigma)
    objective = make_objective(kind, **options)
    vae = None
    if decoder != "pixel":
        vae = load_any_vae(decoder_kind, decoder, ctx.device)[0] if model.config.video else load_vae(decoder, ctx.device)
    captions = load_captions(config, model, run)
    names = {"captions": "captions"} if captions is not None else {"labels": "labels" if model.config.video else "arr_1"}

    folder = shard_dir(config.out)
    if ctx.is_main:
        os.makedirs(folder, exist_ok=True)
        check_shard_config(folder, config)
    distributed.barrier(ctx)
    num_shards = -(-config.num_samples // config.batch_size)
    paths = [os.path.join(folder, f"shard_{k:06d}.npz") for k in range(num_shards)]
    mine = [k for k in range(ctx.rank, num_shards, ctx.world_size) if not os.path.exists(paths[k])]
    log.info("sampling %d images of %s (%s, %s, %d steps, cfg %.2f): %d shards here, %d done before",
             config.num_samples, name, kind, config.sampler or objective.default_sampler, config.num_steps,
             config.cfg_scale, len(mine), sum(map(os.path.exists, paths)))
    for k in tqdm(mine, desc="sample shards", disable=not (ctx.is_main and config.progress)):
        images, named = sample_shard(k, model, objective, vae, scale, config, ctx.device, decoder_kind, captions)
        save_shard(paths[k], images, **named)
    distributed.barrier(ctx)
    if ctx.is_main:
        write_npz_streaming(config.out, paths, config.num_samples, names)
        if not config.keep_shards:
            shutil.rmtree(folder)
        log.info("wrote %s", config.out)
    distributed.barrier(ctx)
    return config.out
