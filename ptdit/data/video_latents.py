"""Video clips encoded once (the video counterpart of ptdit/data/latents.py), and read back for training.

Three encodings of a clip (3, F, H, W) in [-1, 1]:
- pixel       the clip itself (stand-ins); the horizontal flip is exact and done at load time;
- image       an image VAE (sd-vae-ft-ema) frame by frame, as Latte and several video DiTs do: the
              posterior mean and std of every frame, of the clip and of its mirror image (times 0.18215),
              so training draws the flip and z = mean + std * eps afresh every step;
- causal3d    a 3-D causal video VAE (diffusers AutoencoderKLCogVideoX, CogVideoX's; F frames become
              about F/4 latent frames), posterior mean/std of both orientations, times its scaling_factor.
Captioned datasets (MSR-VTT) also store the K captions of every clip through a text encoder
(ptdit/text_encoder.py): text (N, K, L, D) fp16, text_mask (N, K, L) bool, caption_count (N,); training
draws one caption per clip per step (VideoLatentDataset), sampling uses each clip's eval caption.

Folder: encode.json (the settings, written first; resuming with other settings is an error),
shard_NNNNN.safetensors (video[, video_std, video_flip, video_std_flip], labels | text, text_mask,
caption_count, source_index), and meta.json written last (shapes, classes, the caption strings and
which one is each clip's eval caption). Shards cover fixed ranges of the source clips, are written
atomically and skipped when present (resume); with torchrun each process encodes every W-th shard.
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
from ptdit.data.latents import SD_VAE_SCALE, load_vae, read_meta, shard_path

log = logging.getLogger(__name__)

FORMAT = "ptdit-video-latents-v1"
VAE_KINDS = ("image", "causal3d")
VIDEO_VAE_MODELS = "THUDM/CogVideoX-2b (its vae/ subfolder) or another diffusers AutoencoderKLCogVideoX"
FRAMES_PER_VAE_CALL = 64   # image VAE: frames encoded/decoded per call (memory bound at 256 px)


# ------------------------------------------------------------------ VAEs
def load_video_vae(path, device="cpu"):
    """diffusers AutoencoderKLCogVideoX (3-D causal VAE) from a local folder, or a pipeline folder's vae/."""
    if path and os.path.isfile(os.path.join(path, "vae", "config.json")):
        path = os.path.join(path, "vae")
    if not path or not os.path.isfile(os.path.join(path, "config.json")):
        raise FileNotFoundError(
            f"video VAE folder '{path}' not found (or it has no config.json): expected a diffusers "
            f"AutoencoderKLCogVideoX folder of {VIDEO_VAE_MODELS}, e.g. `huggingface-cli download "
            f"THUDM/CogVideoX-2b --include 'vae/*' --local-dir {path}` on a machine with internet")
    from diffusers import AutoencoderKLCogVideoX  # heavy import, only when a video VAE is used
    vae = AutoencoderKLCogVideoX.from_pretrained(path, local_files_only=True)
    return vae.to(device).eval().requires_grad_(False)


def load_any_vae(kind, path, device="cpu"):
    """(vae, scale) for "pixel" (None, 1.0), "image" (SD-VAE, 0.18215) or "causal3d" (its scaling_factor)."""
    if kind == "pixel":
        return None, 1.0
    if kind == "image":
        return load_vae(path, device), SD_VAE_SCALE
    if kind == "causal3d":
        vae = load_video_vae(path, device)
        return vae, float(vae.config.scaling_factor)
    raise ValueError(f"unknown VAE kind '{kind}'; use one of pixel, {', '.join(VAE_KINDS)}")


def frames_of(x):
    """(B, C, F, H, W) -> (B*F, C, H, W): every frame an image."""
    b, c, f, h, w = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)


def clips_of(frames, b):
    """(B*F, C, H, W) -> (B, C, F, H, W)."""
    bf, c, h, w = frames.shape
    return frames.reshape(b, bf // b, c, h, w).permute(0, 2, 1, 3, 4)


@torch.no_grad()
def posterior(x, vae, kind):
    """Posterior (mean, std) of clips (B, 3, F, H, W) in [-1, 1], unscaled."""
    if kind == "causal3d":
        dist = vae.encode(x).latent_dist
        return dist.mean, dist.std
    dists = [vae.encode(chunk).latent_dist for chunk in frames_of(x).split(FRAMES_PER_VAE_CALL)]
    mean = torch.cat([d.mean for d in dists])
    std = torch.cat([d.std for d in dists])
    return clips_of(mean, x.shape[0]), clips_of(std, x.shape[0])


@torch.no_grad()
def encode_clips(x, vae, kind, scale):
    """{video[, video_std, video_flip, video_std_flip]} for a batch of clips in [-1, 1]."""
    if vae is None:
        return {"video": x}
    out = {}
    for suffix, clips in (("", x), ("_flip", x.flip(-1))):
        mean, std = posterior(clips, vae, kind)
        out["video" + suffix] = mean * scale
        out["video_std" + suffix] = std * scale
    return out


@torch.no_grad()
def decode_video(x, kind, vae, scale):
    """Model output (N, C, F, h, w) -> uint8 clips (N, F, H, W, 3) with DiT's rounding
    clamp(127.5 * x + 128, 0, 255): pixels directly, image-VAE latents frame by frame, causal-VAE
    latents through its 3-D decoder."""
    if kind == "image":
        frames = frames_of(x / scale)
        x = clips_of(torch.cat([vae.decode(c).sample for c in frames.split(FRAMES_PER_VAE_CALL)]), x.shape[0])
    elif kind == "causal3d":
        x = vae.decode(x / scale).sample
    elif kind != "pixel":
        raise ValueError(f"unknown decoder kind '{kind}'; use pixel, image or causal3d")
    return torch.clamp(127.5 * x + 128.0, 0, 255).permute(0, 2, 3, 4, 1).to("cpu", dtype=torch.uint8).numpy()


# ------------------------------------------------------------------ encoding
def is_captioned(dataset):
    """MSR-VTT-like datasets (items (video, i), captions(i)) versus classes (items (video, label, i))."""
    return callable(getattr(dataset, "captions", None))


def drop_unreadable_clips(batch):
    """Collate that keeps readable clips; Nones (skipped files) are counted by the caller."""
    kept = [b for b in batch if b is not None]
    if not kept:
        return None, len(batch)
    columns = list(zip(*kept))
    return [torch.stack(columns[0])] + [torch.tensor(c) for c in columns[1:]], len(batch) - len(kept)


def caption_lists(dataset, indices, k):
    """The first k captions of each clip, padded with "" (caption_count says how many are real)."""
    lists, counts = [], []
    for i in indices:
        caps = list(dataset.captions(int(i)))[:k]
        if not caps:
            raise ValueError(f"clip {int(i)} of {type(dataset).__name__} has no caption; every clip needs one")
        lists.append(caps + [""] * (k - len(caps)))
        counts.append(len(caps))
    return lists, counts


def encode_text(dataset, indices, encoder, k):
    lists, counts = caption_lists(dataset, indices, k)
    feats, mask = encoder.encode([c for caps in lists for c in caps])
    b, L = len(indices), encoder.max_tokens
    return {"text": feats.reshape(b, k, L, -1).half(), "text_mask": mask.reshape(b, k, L),
            "caption_count": torch.tensor(counts, dtype=torch.long)}


def encode_shard(dataset, indices, vae, kind, scale, encoder, k, batch_size, num_workers, device):
    parts, skipped = [], 0
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, indices), batch_size=batch_size,
                                         num_workers=num_workers, collate_fn=drop_unreadable_clips)
    for batch, dropped in loader:
        skipped += dropped
        if batch is None:
            continue
        x, idx = batch[0], batch[-1]
        arrays = {key: v.float().cpu() for key, v in encode_clips(x.to(device), vae, kind, scale).items()}
        part = {**arrays, "source_index": idx.long()}
        if encoder is not None:
            part.update(encode_text(dataset, idx, encoder, k))
        else:
            part["labels"] = batch[1].long()
        parts.append(part)
    if not parts:
        raise ValueError(f"every clip of source indices {indices[0]}..{indices[-1]} was unreadable")
    tensors = {key: torch.cat([p[key] for p in parts]).contiguous() for key in parts[0]}
    return tensors, skipped


def check_settings(out_dir, settings):
    """encode.json pins what the shards in a folder are; resuming with other settings is an error."""
    path = os.path.join(out_dir, "encode.json")
    text = json.dumps(settings, indent=1, sort_keys=True)
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        if old != json.loads(text):
            changed = sorted(key for key in set(old) | set(settings) if old.get(key) != settings.get(key))
            raise ValueError(f"'{out_dir}' holds clips encoded with other settings (differs in "
                             f"{', '.join(f'{key}: {old.get(key)!r} -> {settings.get(key)!r}' for key in changed)}); "
                             f"use a new output folder or the same settings")
    else:
        atomic_text(path, text)


def encode_video_dataset(dataset, out_dir, vae_path=None, vae_kind="image", text_encoder=None, max_captions=20,
                         shard_size=1000, batch_size=8, num_workers=0, device="auto", settings=None):
    """Encode every clip of `dataset` into shards in out_dir; returns the meta dict.
    dataset: items (video (3, F, H, W) in [-1, 1], label, i) or, for captioned datasets with
    .captions(i) / .eval_caption(i), (video, i); None for a skipped unreadable clip.
    vae_path None: pixel mode. text_encoder: a ptdit.text_encoder.TextEncoder (captioned datasets).
    max_captions: K, the captions stored per clip (MSR-VTT has 20). Run under torchrun to spread shards."""
    captioned = is_captioned(dataset)
    if captioned and text_encoder is None:
        raise ValueError(f"{type(dataset).__name__} has captions: pass a text encoder (--text-encoder minilm | t5 | tiny-t5)")
    if vae_path is not None and vae_kind not in VAE_KINDS:
        raise ValueError(f"unknown VAE kind '{vae_kind}'; use one of {', '.join(VAE_KINDS)}")
    kind = vae_kind if vae_path else "pixel"
    k = 0
    if captioned:
        k = min(int(max_captions), max(len(dataset.captions(i)) for i in range(len(dataset))))
    settings = {**(settings or {}), "mode": kind, "vae": os.path.abspath(vae_path) if vae_path else None,
                "text_encoder": text_encoder.describe() if captioned else None, "captions_per_clip": k,
                "shard_size": shard_size, "num_source_clips": len(dataset)}
    ctx = distributed.setup(device)
    vae, scale = load_any_vae(kind, vae_path, ctx.device)
    if text_encoder is not None and captioned:
        text_encoder.model.to(ctx.device)
        text_encoder.device = ctx.device
    os.makedirs(out_dir, exist_ok=True)
    if ctx.rank == 0:
        check_settings(out_dir, settings)
    distributed.barrier(ctx)
    num_shards = -(-len(dataset) // shard_size)
    mine = [s for s in range(ctx.rank, num_shards, ctx.world_size) if not os.path.exists(shard_path(out_dir, s))]
    for s in tqdm(mine, desc="encode video shards", disable=ctx.rank != 0):
        indices = list(range(s * shard_size, min((s + 1) * shard_size, len(dataset))))
        tensors, skipped = encode_shard(dataset, indices, vae, kind, scale, text_encoder if captioned else None,
                                        k, batch_size, num_workers, ctx.device)
        if skipped:
            log.warning("shard %d: skipped %d unreadable clip(s)", s, skipped)
        metadata = {"count": str(len(tensors["source_index"])), "skipped": str(skipped)}
        atomic_write(shard_path(out_dir, s), lambda tmp, t=tensors, m=metadata: save_file(t, tmp, metadata=m))
    distributed.barrier(ctx)
    meta = None
    if ctx.rank == 0:
        meta = write_meta(out_dir, num_shards, dataset, settings, scale, k)
    distributed.barrier(ctx)
    distributed.teardown(ctx)
    return meta or read_video_meta(out_dir)


def open_video_source(dataset, root, split="train", fold=1, num_frames=16, frame_stride=1, image_size=32,
                      skip_unreadable=False):
    """UCF101Folder or MSRVTTFolder (ptdit/data/ucf101.py, msrvtt.py) of an on-disk layout."""
    if dataset == "ucf101":
        from ptdit.data.ucf101 import UCF101Folder
        return UCF101Folder(root, split, fold, num_frames, frame_stride, image_size, skip_unreadable)
    if dataset == "msrvtt":
        from ptdit.data.msrvtt import MSRVTTFolder
        return MSRVTTFolder(root, split, num_frames, frame_stride, image_size, skip_unreadable)
    raise ValueError(f"unknown video dataset '{dataset}'; use ucf101 or msrvtt")


def encode_video(dataset, root, out_dir, split="train", fold=1, num_frames=16, frame_stride=1, image_size=32,
                 skip_unreadable=False, vae=None, vae_kind="image", text_encoder="minilm", text_encoder_path=None,
                 max_tokens=None, max_captions=20, shard_size=1000, batch_size=8, num_workers=0, device="auto"):
    """`ptdit encode-video`: encode a UCF-101 / MSR-VTT split (dataset "ucf101" | "msrvtt") of the layout
    at root into out_dir; MSR-VTT captions through load_text_encoder(text_encoder, text_encoder_path,
    max_tokens). Returns the meta dict."""
    source = open_video_source(dataset, root, split, fold, num_frames, frame_stride, image_size, skip_unreadable)
    encoder = None
    if is_captioned(source):
        from ptdit.text_encoder import load_text_encoder
        encoder = load_text_encoder(text_encoder, text_encoder_path, max_tokens)
    settings = {"dataset": dataset, "root": os.path.abspath(root), "split": split,
                "fold": fold if dataset == "ucf101" else None, "num_frames": num_frames,
                "frame_stride": frame_stride, "image_size": image_size}
    return encode_video_dataset(source, out_dir, vae, vae_kind, encoder, max_captions, shard_size, batch_size,
                                num_workers, device, settings)


def write_meta(out_dir, num_shards, dataset, settings, scale, k):
    shards, skipped, kept = [], 0, []
    for s in range(num_shards):
        with safe_open(shard_path(out_dir, s), framework="pt") as f:
            info = f.metadata()
            shape = f.get_slice("video").get_shape()
            kept.append(f.get_tensor("source_index"))
        shards.append({"file": os.path.basename(shard_path(out_dir, s)), "count": int(info["count"])})
        skipped += int(info["skipped"])
    kept = torch.cat(kept).tolist()
    meta = {"format": FORMAT, "dataset": settings.get("dataset", type(dataset).__name__),
            "split": settings.get("split"), "source": settings.get("root"),
            "mode": settings["mode"], "vae": settings["vae"], "scale_factor": scale,
            "shape": list(shape[1:]), "channels": shape[1], "latent_frames": shape[2], "latent_size": shape[3],
            "num_frames": settings.get("num_frames"), "image_size": settings.get("image_size"),
            "num_source_clips": len(dataset), "num_samples": len(kept), "skipped_unreadable": skipped,
            "skipped_source_index": sorted(set(range(len(dataset))) - set(kept)), "shards": shards}
    if is_captioned(dataset):
        captions = [list(dataset.captions(i))[:k] for i in kept]
        meta.update(num_classes=0, classes=[], text_encoder=settings["text_encoder"], captions_per_clip=k,
                    captions=captions, eval_caption_index=[eval_index(dataset, i, caps) for i, caps in zip(kept, captions)])
    else:
        classes = list(getattr(dataset, "classes", []))
        num_classes = int(getattr(dataset, "num_classes", len(classes)))
        meta.update(num_classes=num_classes, classes=classes, text_encoder=None)
    meta["source_index"] = kept
    if skipped:
        log.warning("skipped %d unreadable clip(s) of %d", skipped, len(dataset))
    atomic_text(os.path.join(out_dir, "meta.json"), json.dumps(meta, indent=1))
    return meta


def eval_index(dataset, i, captions):
    """Position of clip i's fixed evaluation caption among its stored captions."""
    caption = dataset.eval_caption(i) if callable(getattr(dataset, "eval_caption", None)) else captions[0]
    if caption not in captions:
        raise ValueError(f"the eval caption of clip {i} ({caption!r}) is not among its first {len(captions)} "
                         f"captions; raise --max-captions")
    return captions.index(caption)


def read_video_meta(folder):
    return read_meta(folder, FORMAT, "ptdit encode-video")


# ------------------------------------------------------------------ reading
class VideoLatentDataset(torch.utils.data.Dataset):
    """Training items from video shards. Item = (index, seed); the seed draws, in this order, the flip,
    the posterior noise (VAE modes) and the caption (captioned data), so every draw is fresh each step
    yet a function of (run seed, step, position) (ptdit/data/order.py).
    Returns (x, label) for class data, (x, (text (L, D) float32, mask (L,) bool)) for captioned data."""

    def __init__(self, folder):
        self.folder = folder
        self.meta = read_video_meta(folder)
        counts = [s["count"] for s in self.meta["shards"]]
        self.starts = np.cumsum([0] + counts)
        self.files = [os.path.join(folder, s["file"]) for s in self.meta["shards"]]
        self.captioned = self.meta["text_encoder"] is not None
        key = "caption_count" if self.captioned else "labels"
        values = []
        for path in self.files:
            with safe_open(path, framework="pt") as f:
                values.append(f.get_tensor(key))
        if self.captioned:
            self.caption_count, self.labels = torch.cat(values), None
        else:
            self.caption_count, self.labels = None, torch.cat(values)
        self._handles = {}

    def __getstate__(self):
        return {**self.__dict__, "_handles": {}}  # file handles do not pickle (DataLoader workers)

    def __len__(self):
        return int(self.starts[-1])

    def _slice(self, key, index):
        k = int(np.searchsorted(self.starts, index, side="right") - 1)
        if k not in self._handles:
            self._handles[k] = safe_open(self.files[k], framework="pt")
        return self._handles[k].get_slice(key), index - int(self.starts[k])

    def _row(self, key, index):
        sl, r = self._slice(key, index)
        return sl[r: r + 1][0]

    def caption(self, index, c):
        """Features (L, D) float32 and mask (L,) of caption c of clip index."""
        text, r = self._slice("text", index)
        mask, _ = self._slice("text_mask", index)
        return text[r: r + 1, c: c + 1][0, 0].float(), mask[r: r + 1, c: c + 1][0, 0]

    def __getitem__(self, item):
        index, seed = item if isinstance(item, tuple) else (item, None)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        flip = bool(torch.rand(1, generator=gen) < 0.5)
        if self.meta["mode"] == "pixel":
            x = self._row("video", index)
            x = x.flip(-1) if flip else x
        else:
            suffix = "_flip" if flip else ""
            mean, std = self._row("video" + suffix, index), self._row("video_std" + suffix, index)
            x = mean + std * torch.randn(mean.shape, generator=gen)
        if not self.captioned:
            return x, self.labels[index]
        c = int(torch.randint(0, int(self.caption_count[index]), (), generator=gen))
        return x, self.caption(index, c)


class EvalCaptions:
    """The fixed evaluation caption of every clip of an encoded captioned folder (the test split), in
    clip order: .strings (list[str]) and features(clips) -> (text (B, L, D) float32, mask (B, L) bool),
    read per call (MSR-VTT's 2,990 test captions at T5-XXL width are 5.9 GB in float32)."""

    def __init__(self, folder):
        self.data = VideoLatentDataset(folder)
        if not self.data.captioned:
            raise ValueError(f"'{folder}' has no captions (encoded from {self.data.meta['dataset']}); pass the "
                             f"`ptdit encode-video msrvtt ...` folder of the test split")
        self.which = self.data.meta["eval_caption_index"]
        self.strings = [caps[c] for caps, c in zip(self.data.meta["captions"], self.which)]
        self.text_encoder = self.data.meta["text_encoder"]

    def __len__(self):
        return len(self.strings)

    def features(self, clips):
        pairs = [self.data.caption(i, self.which[i]) for i in clips]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
