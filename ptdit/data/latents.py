"""Latents encoded once, stored as shards with the posterior of each image AND of its mirror image.

fast-DiT (chuanyangjin/fast-DiT extract_features.py) encodes each image once with a random flip and
a frozen posterior sample, so every epoch sees the same latent. Here each shard keeps, per image, the
VAE posterior mean and std of the image and of its horizontal flip (all times the scale 0.18215), and
training draws the orientation and z = mean + std * eps afresh every step, as DiT's train.py does by
encoding on the fly. Pixel mode (no VAE, for the stand-in) stores the image in [-1, 1] only; the flip
is exact there and done at load time.

Folder layout: shard_NNNNN.safetensors (tensors mean, [std, mean_flip, std_flip,] labels, source_index;
metadata: count, skipped paths) and meta.json written last. Shards cover fixed ranges of the source
images, are written atomically and are skipped when present, so an interrupted encode resumes; with
torchrun each process encodes every W-th shard.
"""

import json
import logging
import os

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from ptdit import distributed
from ptdit.atomic import atomic_text, atomic_write
from ptdit.data.imagenet import ImageNetFolder

log = logging.getLogger(__name__)

FORMAT = "ptdit-latents-v1"
SD_VAE_SCALE = 0.18215  # DiT train.py / sample.py: latents = posterior * 0.18215
VAE_MODELS = "stabilityai/sd-vae-ft-ema or stabilityai/sd-vae-ft-mse"


def load_vae(path, device="cpu"):
    """diffusers AutoencoderKL from a local folder (never downloads)."""
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise FileNotFoundError(
            f"VAE folder '{path}' not found (or it has no config.json): expected a diffusers AutoencoderKL "
            f"folder (config.json + diffusion_pytorch_model.safetensors) of {VAE_MODELS}, e.g. "
            f"`huggingface-cli download stabilityai/sd-vae-ft-ema --local-dir {path}` on a machine with internet")
    from diffusers.models import AutoencoderKL  # heavy import, only when a VAE is used
    vae = AutoencoderKL.from_pretrained(path, local_files_only=True)
    return vae.to(device).eval().requires_grad_(False)


def shard_path(folder, k):
    return os.path.join(folder, f"shard_{k:05d}.safetensors")


def drop_unreadable(batch):
    """Collate that keeps readable images; Nones (skipped files) are counted by the caller."""
    kept = [b for b in batch if b is not None]
    if not kept:
        return None, len(batch)
    x, y, idx = zip(*kept)
    return (torch.stack(x), torch.tensor(y), torch.tensor(idx)), len(batch) - len(kept)


@torch.no_grad()
def encode_images(x, vae, scale):
    """{mean[, std, mean_flip, std_flip]} for a batch of images in [-1, 1]."""
    if vae is None:
        return {"mean": x}
    out = {}
    for suffix, images in (("", x), ("_flip", x.flip(-1))):
        posterior = vae.encode(images).latent_dist
        out["mean" + suffix] = posterior.mean * scale
        out["std" + suffix] = posterior.std * scale
    return out


def encode_shard(dataset, indices, vae, scale, batch_size, num_workers, device):
    parts, skipped = [], 0
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, indices), batch_size=batch_size,
                                         num_workers=num_workers, collate_fn=drop_unreadable)
    for batch, dropped in loader:
        skipped += dropped
        if batch is None:
            continue
        x, y, idx = batch
        arrays = encode_images(x.to(device), vae, scale)
        arrays = {k: v.float().cpu() for k, v in arrays.items()}
        parts.append({**arrays, "labels": y.long(), "source_index": idx.long()})
    if not parts:
        raise ValueError(f"every image of source indices {indices[0]}..{indices[-1]} was unreadable")
    tensors = {k: torch.cat([p[k] for p in parts]).contiguous() for k in parts[0]}
    return tensors, skipped


def encode_folder(split_dir, out_dir, vae_path=None, image_size=256, shard_size=10_000, batch_size=64,
                  num_workers=4, skip_unreadable=False, device="auto"):
    """Encode <split_dir>/<wnid>/*.JPEG into latent shards in out_dir (vae_path None: pixel mode).
    Returns the meta dict. Run under torchrun to spread the shards over processes."""
    ctx = distributed.setup(device)
    dataset = ImageNetFolder(split_dir, image_size, skip_unreadable)
    vae = load_vae(vae_path, ctx.device) if vae_path else None
    scale = SD_VAE_SCALE if vae_path else 1.0
    os.makedirs(out_dir, exist_ok=True)
    num_shards = -(-len(dataset) // shard_size)
    mine = [k for k in range(ctx.rank, num_shards, ctx.world_size) if not os.path.exists(shard_path(out_dir, k))]
    for k in tqdm(mine, desc="encode shards", disable=ctx.rank != 0):
        indices = list(range(k * shard_size, min((k + 1) * shard_size, len(dataset))))
        tensors, skipped = encode_shard(dataset, indices, vae, scale, batch_size, num_workers, ctx.device)
        if skipped:
            log.warning("shard %d: skipped %d unreadable image(s)", k, skipped)
        metadata = {"count": str(len(tensors["labels"])), "skipped": str(skipped)}
        atomic_write(shard_path(out_dir, k), lambda tmp, t=tensors, m=metadata: save_file(t, tmp, metadata=m))
    distributed.barrier(ctx)
    meta = None
    if ctx.rank == 0:
        meta = write_meta(out_dir, num_shards, dataset, vae, vae_path, image_size, scale)
    distributed.barrier(ctx)
    distributed.teardown(ctx)
    return meta or read_meta(out_dir)


def write_meta(out_dir, num_shards, dataset, vae, vae_path, image_size, scale):
    shards, skipped = [], 0
    for k in range(num_shards):
        with safe_open(shard_path(out_dir, k), framework="pt") as f:
            info = f.metadata()
            shape = f.get_slice("mean").get_shape()
        shards.append({"file": os.path.basename(shard_path(out_dir, k)), "count": int(info["count"])})
        skipped += int(info["skipped"])
    meta = {"format": FORMAT, "mode": "vae" if vae is not None else "pixel",
            "vae": os.path.abspath(vae_path) if vae_path else None, "scale_factor": scale,
            "image_size": image_size, "channels": shape[1], "latent_size": shape[2],
            "num_classes": len(dataset.classes), "classes": dataset.classes,
            "source": os.path.abspath(dataset.split_dir), "num_source_images": len(dataset),
            "num_samples": sum(s["count"] for s in shards), "skipped_unreadable": skipped, "shards": shards}
    if skipped:
        log.warning("skipped %d unreadable image(s) of %d in %s", skipped, len(dataset), dataset.split_dir)
    atomic_text(os.path.join(out_dir, "meta.json"), json.dumps(meta, indent=1))
    return meta


def read_meta(folder, expected_format=FORMAT, command="ptdit encode"):
    """meta.json of a finished encoded folder (written last, so its presence means complete)."""
    path = os.path.join(folder, "meta.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"'{path}' not found: '{folder}' is not a finished encoded folder; "
                                f"run `{command}` first (it writes meta.json last)")
    with open(path) as f:
        meta = json.load(f)
    if meta.get("format") != expected_format:
        raise ValueError(f"'{path}' has format {meta.get('format')!r}, expected {expected_format!r} (`{command}`)")
    return meta


class LatentDataset(torch.utils.data.Dataset):
    """Training items from latent shards. Item = (index, seed): the seed draws this step's flip and
    posterior sample, so the draws are fresh every step yet reproducible (ptdit/data/order.py).
    Returns (x, label): x = mean + std * eps of the chosen orientation (pixel mode: the image)."""

    def __init__(self, folder):
        self.folder = folder
        self.meta = read_meta(folder)
        counts = [s["count"] for s in self.meta["shards"]]
        self.starts = np.cumsum([0] + counts)
        self.files = [os.path.join(folder, s["file"]) for s in self.meta["shards"]]
        labels = []
        for path in self.files:
            with safe_open(path, framework="pt") as f:
                labels.append(f.get_tensor("labels"))
        self.labels = torch.cat(labels)
        self._handles = {}

    def __getstate__(self):
        # Open file handles do not pickle (DataLoader workers under spawn): each process reopens.
        return {**self.__dict__, "_handles": {}}

    @property
    def shape(self):
        m = self.meta
        return (m["channels"], m["latent_size"], m["latent_size"])

    def __len__(self):
        return int(self.starts[-1])

    def _row(self, key, k, r):
        # safe_open memory-maps the file; handles are opened lazily per process (DataLoader workers).
        if k not in self._handles:
            self._handles[k] = safe_open(self.files[k], framework="pt")
        return self._handles[k].get_slice(key)[r: r + 1][0]

    def __getitem__(self, item):
        index, seed = item if isinstance(item, tuple) else (item, None)
        k = int(np.searchsorted(self.starts, index, side="right") - 1)
        r = index - int(self.starts[k])
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        flip = bool(torch.rand(1, generator=gen) < 0.5)
        if self.meta["mode"] == "pixel":
            x = self._row("mean", k, r)
            return (x.flip(-1) if flip else x), self.labels[index]
        suffix = "_flip" if flip else ""
        mean, std = self._row("mean" + suffix, k, r), self._row("std" + suffix, k, r)
        return mean + std * torch.randn(mean.shape, generator=gen), self.labels[index]
