"""evaluate_videos: FVD, video IS, frame FID and CLIPSIM of a video sample .npz, written to one JSON.

The paper's video table (rebuttal; pt-dit.md) reports UCF-101 FVD, IS, FID and MSR-VTT FVD, CLIPSIM.
What each number is here:
- fvd: StyleGAN-V's fvd2048_16f (evaluation/metrics/fvd.py): the first 16 frames of 2048 generated and (up to)
  2048 real clips, I3D logits, Frechet distance of the two Gaussians (1/n covariances), computed by
  evaluation/metrics/frechet.py frechet_distance, the very function FID uses.
- is: the video Inception score as TGAN / TGANv2 / StyleGAN-V (isv2048_ucf) compute it for UCF-101:
  class probabilities of the UCF-101-finetuned C3D (StyleGAN-V's torchscript c3d_ucf101.pt, called as
  StyleGAN-V calls it: uint8 [n, 3, 16, H, W], no keyword arguments) on the first 16 frames of 2048
  generated clips, rows shuffled with np.random.RandomState(42), 10 splits, mean of exp(E KL(p(y|x) || p(y)))
  (evaluation/metrics/inception_score.py). There is no image-Inception IS on frames in that protocol.
- fid: FID on frames through the image pipeline (evaluation/metrics/evaluate.py's extractors, pool features,
  ADM's n - 1 covariances): by default EVERY frame of every evaluated clip on both sides (N x F frames),
  or fid_frames evenly spaced frames per clip (np.linspace(0, F - 1, k), rounded).
- clipsim: mean over all frames of cos(CLIP image embedding, CLIP text embedding of the clip's caption),
  a raw cosine (the paper's 0.2349 is not x100); open_clip ViT-B/32 from a local file
  (evaluation/metrics/clipsim.py). Captions are those the samples were generated from (the npz 'captions').
On stand-in data every network is replaced by one trained on the stand-in training split, reported under
its own name: small-c3d (evaluation/extractors/video_classifier.py) for FVD (pool features) and IS (logits),
small-cnn (evaluation/extractors/small_classifier.py) for frame FID, small-clip (evaluation/extractors/video_clip.py) for
CLIPSIM. Each network's name and the sha256 of its weights file go into the result.
"""

import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from evaluation.metrics.extract import exact_fp32
from evaluation.metrics.feature_extractor import file_sha256
from evaluation.metrics.frechet import RunningStats, frechet_distance
from evaluation.metrics.fvd import CLIP_LENGTH, i3d_features, is_torchscript, load_i3d
from evaluation.metrics.fvd import PROTOCOL as FVD_PROTOCOL
from evaluation.metrics.inception_score import check_split_count, inception_score
from evaluation.metrics.npz_images import open_npz_array
from evaluation.metrics.video_reference import check_videos, read_conditions, video_batches
from evaluation.metrics.video_sample_checks import sample_checks
from ptdit.atomic import atomic_json

METRICS = ("fvd", "is", "fid", "clipsim")
DATASET_METRICS = {"ucf101": ("fvd", "is", "fid"), "msrvtt": ("fvd", "clipsim")}
FVD_EXTRACTORS = ("i3d", "small-c3d")
IS_EXTRACTORS = ("c3d", "small-c3d")
FID_EXTRACTORS = ("inception", "small-cnn")
CLIP_MODELS = ("clip", "small-clip")
NUM_CLIPS = 2048   # StyleGAN-V: fvd2048_16f, isv2048_ucf
IS_SHUFFLE_SEED = 42
C3D_FILE = "c3d_ucf101.pt"
C3D_URL = "https://www.dropbox.com/s/jxpu7avzdc9n97q/c3d_ucf101.pt"


@dataclass
class VideoExtractors:
    """Which network computes which metric, and its local weights file."""
    fvd: str = "i3d"              # i3d (StyleGAN-V torchscript or InceptionI3d state dict) | small-c3d
    fvd_weights: str | None = None
    is_: str = "c3d"              # c3d (StyleGAN-V's c3d_ucf101.pt torchscript) | small-c3d
    is_weights: str | None = None
    fid: str = "inception"        # inception | small-cnn (frames)
    fid_weights: str | None = None
    clip: str = "clip"            # clip (open_clip ViT-B/32) | small-clip
    clip_weights: str | None = None


def _choose(kind, choices, what):
    if kind not in choices:
        raise ValueError(f"unknown {what} {kind!r}; choose one of {choices}")


# --- the networks, each behind one small interface ----------------------------------------------------
class FVDNetwork:
    """features(uint8 [n, F, H, W, 3]) -> float64 [n, d] on the first 16 frames."""

    def __init__(self, kind, weights, device):
        _choose(kind, FVD_EXTRACTORS, "FVD extractor")
        self.kind, self.device = kind, device
        if kind == "i3d":
            self.net, self.sha256 = load_i3d(weights)
            self.net = self.net.to(device)
            self.name = getattr(self.net, "detector_name", "i3d_torchscript.pt")
        else:
            from evaluation.extractors.video_classifier import load_video_classifier

            self.net = load_video_classifier(weights).to(device)
            self.name, self.sha256 = self.net.name, self.net.weights_sha256

    @torch.no_grad()
    def features(self, batch):
        if self.kind == "i3d":
            return i3d_features(batch, self.net, self.device, CLIP_LENGTH)
        return self.net.features(torch.from_numpy(batch[:, :CLIP_LENGTH].copy()))[0].double().cpu().numpy()


def load_c3d(path):
    """StyleGAN-V's UCF-101 C3D torchscript (TGANv2's chainer C3D, converted), with its sha256."""

    if not path or not os.path.isfile(path):
        raise FileNotFoundError(f"C3D (UCF-101) detector not found at {path!r}: expected StyleGAN-V's torchscript "
                                f"{C3D_FILE} (published at {C3D_URL}); download it elsewhere and pass its path "
                                f"(--is-weights), or use --is-extractor small-c3d on stand-in data")
    if not is_torchscript(path):
        raise ValueError(f"{path}: not a torchscript archive; the video IS expects StyleGAN-V's {C3D_FILE} ({C3D_URL})")
    return torch.jit.load(path, map_location="cpu").eval(), file_sha256(path)


class ISNetwork:
    """log_probs(uint8 [n, F, H, W, 3]) -> float64 [n, classes] (log-probabilities or logits) on 16 frames."""

    def __init__(self, kind, weights, device):
        _choose(kind, IS_EXTRACTORS, "IS extractor")
        self.kind, self.device = kind, device
        if kind == "c3d":
            self.net, self.sha256 = load_c3d(weights)
            self.net, self.name = self.net.to(device), os.path.basename(weights)
        else:
            from evaluation.extractors.video_classifier import load_video_classifier

            self.net = load_video_classifier(weights).to(device)
            self.name, self.sha256 = self.net.name, self.net.weights_sha256

    @torch.no_grad()
    def log_probs(self, batch):
        clips = torch.from_numpy(batch[:, :CLIP_LENGTH].copy())   # a writable copy of the file's rows
        if self.kind != "c3d":
            return self.net.features(clips)[1].double().cpu().numpy()
        out = self.net(clips.permute(0, 4, 1, 2, 3).contiguous().to(self.device)).double().cpu()
        # StyleGAN-V's torchscript returns probabilities: their log is a valid logit vector for the same
        # softmax. A detector that returns logits is used as is.
        is_prob = bool((out >= 0).all()) and torch.allclose(out.sum(1), torch.ones(len(out), dtype=out.dtype), atol=1e-3)
        return (out.clamp_min(1e-30).log() if is_prob else out).numpy()


class ClipNetwork:
    """frame_embeddings(uint8 [n, F, H, W, 3]) -> [n, F, D]; text_embeddings(captions) -> [n, D]."""

    def __init__(self, kind, weights, device):
        _choose(kind, CLIP_MODELS, "CLIP model")
        self.kind, self.device = kind, device
        if kind == "clip":
            from evaluation.metrics.clipsim import MODEL, load_clip

            self.model, self.preprocess, self.tokenizer, self.sha256 = load_clip(weights, device)
            self.name = f"open_clip {MODEL}"
        else:
            from evaluation.extractors.video_clip import load_text_encoder_for, load_video_clip

            self.model = load_video_clip(weights).to(device)
            self.text = load_text_encoder_for(self.model, device)
            self.name, self.sha256 = self.model.name, self.model.weights_sha256

    @torch.no_grad()
    def frame_embeddings(self, batch):
        if self.kind == "clip":
            from evaluation.metrics.clipsim import clip_frame_embeddings

            return clip_frame_embeddings(batch, self.model, self.preprocess, self.device)
        n, f = batch.shape[:2]
        frames = torch.from_numpy(batch.reshape(n * f, *batch.shape[2:]).copy())
        return self.model.encode_frames(frames).cpu().reshape(n, f, -1)

    @torch.no_grad()
    def text_embeddings(self, captions):
        if self.kind == "clip":
            from evaluation.metrics.clipsim import clip_text_embeddings

            return clip_text_embeddings(captions, self.model, self.tokenizer, self.device)
        return self.text.encode(captions)


def load_networks(metrics, extractors, device="cpu"):
    """{metric: network} for the requested metrics only (a missing weights file stops here, by name)."""
    from evaluation.metrics.evaluate import build_extractor

    nets = {}
    if "fvd" in metrics:
        nets["fvd"] = FVDNetwork(extractors.fvd, extractors.fvd_weights, device)
    if "is" in metrics:
        nets["is"] = ISNetwork(extractors.is_, extractors.is_weights, device)
    if "fid" in metrics:
        _choose(extractors.fid, FID_EXTRACTORS, "FID (frames) extractor")
        if extractors.fid == "small-cnn" and not extractors.fid_weights:
            raise ValueError("FID extractor 'small-cnn' needs its weights file (--fid-weights PATH)")
        nets["fid"] = build_extractor(extractors.fid, extractors.fid_weights).to(device).float().eval()
    if "clipsim" in metrics:
        nets["clipsim"] = ClipNetwork(extractors.clip, extractors.clip_weights, device)
    return nets


# --- one pass over a file ---------------------------------------------------------------------------
def frame_indices(num_frames, fid_frames=None):
    """Which frames of a clip enter the frame FID: all, or fid_frames evenly spaced ones."""
    if fid_frames is None or fid_frames >= num_frames:
        return np.arange(num_frames)
    if fid_frames < 1:
        raise ValueError(f"fid_frames must be >= 1, got {fid_frames}")
    return np.unique(np.round(np.linspace(0, num_frames - 1, fid_frames)).astype(int))


@torch.no_grad()
def frame_pool_features(extractor, batch, frames, device):
    images = batch[:, frames].reshape(-1, *batch.shape[2:]).copy()
    with exact_fp32():
        pool = extractor(torch.from_numpy(images).to(device).permute(0, 3, 1, 2)).pool
    return pool.double().cpu().numpy()


def scan(arr, count, nets, wanted, batch_size, device, captions=None, fid_frames=None, desc="videos"):
    """Stream `count` clips once and gather what each wanted metric needs."""
    got = {"fvd": None, "fid": None, "is": [], "cos_sum": 0.0, "cos_count": 0}
    frames = frame_indices(arr.shape[1], fid_frames)
    start = 0
    with tqdm(total=count, desc=desc, unit="clip") as bar:
        for batch in video_batches(arr, count, batch_size):
            if "fvd" in wanted:
                feats = nets["fvd"].features(batch)
                got["fvd"] = got["fvd"] or RunningStats(feats.shape[1])
                got["fvd"].update(feats)
            if "is" in wanted:
                got["is"].append(nets["is"].log_probs(batch))
            if "fid" in wanted:
                feats = frame_pool_features(nets["fid"], batch, frames, device)
                got["fid"] = got["fid"] or RunningStats(feats.shape[1])
                got["fid"].update(feats)
            if "clipsim" in wanted:
                from evaluation.metrics.clipsim import frame_caption_cosine

                frame_emb = nets["clipsim"].frame_embeddings(batch)
                text_emb = nets["clipsim"].text_embeddings(captions[start:start + len(batch)])
                n = frame_emb.shape[0] * frame_emb.shape[1]
                got["cos_sum"] += frame_caption_cosine(frame_emb, text_emb) * n
                got["cos_count"] += n
            start += len(batch)
            bar.update(len(batch))
    return got


def video_is(log_probs, splits):
    """StyleGAN-V's isv: rows shuffled with RandomState(42), then ADM/torch-fidelity split boundaries."""
    rows = np.concatenate(log_probs)
    np.random.RandomState(IS_SHUFFLE_SEED).shuffle(rows)
    return inception_score(rows, splits)


# --- the entry point --------------------------------------------------------------------------------
def parse_metrics(metrics):
    names = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    names = tuple(m.strip().lower() for m in names if m.strip())
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ValueError(f"unknown video metrics {unknown or names}; choose from {','.join(METRICS)} "
                         f"(UCF-101: fvd,is,fid; MSR-VTT: fvd,clipsim)")
    return names


def _check_pair(samples_shape, ref_shape, samples, reference):
    if tuple(samples_shape[1:4]) != tuple(ref_shape[1:4]):
        raise ValueError(f"samples {samples} are {samples_shape[1]}x{samples_shape[2]}x{samples_shape[3]} (frames x "
                         f"H x W) but reference {reference} is {ref_shape[1]}x{ref_shape[2]}x{ref_shape[3]}; make the "
                         f"reference at the sampled size (ptdit make-video-reference --num-frames/--image-size)")


def evaluate_videos(samples_npz, reference_npz=None, metrics=("fvd", "is", "fid"), extractors=None,
                    num_clips=NUM_CLIPS, batch_size=8, device="cpu", is_splits=10, fid_frames=None, out_json=None):
    """Evaluate a video sample .npz (arr_0 uint8 [N, F, H, W, 3] + labels or captions) against a reference
    .npz of real clips in the same format; returns (and optionally writes) the result dict.

    metrics: subset of fvd, is, fid, clipsim (tuple or 'fvd,is,fid'); extractors: a VideoExtractors.
    num_clips: clips evaluated: the first num_clips samples (the file must hold that many) and the first
        min(num_clips, len) reference clips, as StyleGAN-V's max_real / num_gen.
    fid_frames: frames per clip for the frame FID (None: every frame).
    """
    start_time = time.time()
    metrics = parse_metrics(metrics)
    extractors = extractors or VideoExtractors()
    samples_npz = str(samples_npz)
    ref_metrics = [m for m in metrics if m in ("fvd", "fid")]
    if ref_metrics and reference_npz is None:
        raise ValueError(f"metrics {ref_metrics} need real clips (--reference REF.npz, ptdit make-video-reference)")
    _, captions = read_conditions(samples_npz)
    if "clipsim" in metrics and captions is None:
        raise ValueError(f"samples {samples_npz} have no 'captions' array: CLIPSIM needs the caption each video was "
                         f"generated from (text-conditional samples save captions=np.array(list_of_str))")
    nets = load_networks(metrics, extractors, device)
    result = {}
    with open_npz_array(samples_npz, "arr_0") as arr:
        check_videos(arr.shape, arr.dtype, f"samples {samples_npz} [arr_0]")
        if len(arr) < num_clips:
            raise ValueError(f"samples {samples_npz} hold {len(arr)} videos, the evaluation takes {num_clips} "
                             f"(StyleGAN-V's protocol: 2048); sample more or pass --num-clips {len(arr)}")
        if "is" in metrics:
            check_split_count(num_clips, is_splits, f"samples {samples_npz}")
        if captions is not None and len(captions) < num_clips:
            raise ValueError(f"samples {samples_npz}: {len(captions)} captions for {len(arr)} videos")
        samples_shape = arr.shape
        fake = scan(arr, num_clips, nets, metrics, batch_size, device, captions, fid_frames, desc="samples")
    num_reference = None
    if ref_metrics:
        reference_npz = str(reference_npz)
        with open_npz_array(reference_npz, "arr_0") as ref:
            check_videos(ref.shape, ref.dtype, f"reference {reference_npz} [arr_0]")
            _check_pair(samples_shape, ref.shape, samples_npz, reference_npz)
            num_reference = min(len(ref), num_clips)
            real = scan(ref, num_reference, nets, ref_metrics, batch_size, device, None, fid_frames, desc="reference")
    if "fvd" in metrics:
        result["fvd"] = frechet_distance(*fake["fvd"].mu_sigma(ddof=0), *real["fvd"].mu_sigma(ddof=0))
    if "is" in metrics:
        result["is"], result["is_std"] = video_is(fake["is"], is_splits)
    if "fid" in metrics:
        result["fid"] = frechet_distance(*fake["fid"].mu_sigma(), *real["fid"].mu_sigma())
    if "clipsim" in metrics:
        result["clipsim"] = fake["cos_sum"] / fake["cos_count"]
    # Class accuracy and the frame / pixel correlations (issue 17): whether the samples show the sources.
    result.update(sample_checks(samples_npz, reference_npz, nets, num_clips, batch_size))
    names = {"fvd": "fvd_extractor", "is": "is_extractor", "fid": "fid_extractor", "clipsim": "clip_model"}
    for metric, net in nets.items():
        result[names[metric]] = net.name
        result[names[metric] + "_sha256"] = getattr(net, "sha256", None) or getattr(net, "weights_sha256", "")
    num_frames = int(samples_shape[1])
    result.update(
        samples=samples_npz, reference=str(reference_npz) if reference_npz else None,
        num_samples=num_clips, num_reference=num_reference, num_frames=num_frames,
        image_size=int(samples_shape[2]), conditioning="text" if captions is not None else "class",
        protocol={
            "fvd": FVD_PROTOCOL if extractors.fvd == "i3d" else
            {"source": "StyleGAN-V fvd2048_16f with a stand-in network", "clip_length": CLIP_LENGTH,
             "features": "small-c3d pool", "covariance": "1/n (ddof=0)"},
            "is": {"source": "StyleGAN-V isv2048_ucf", "clip_length": CLIP_LENGTH, "splits": is_splits,
                   "shuffle": f"np.random.RandomState({IS_SHUFFLE_SEED})"},
            "fid": {"frames_per_clip": int(len(frame_indices(num_frames, fid_frames))),
                    "frames": "all" if fid_frames is None else f"{fid_frames} evenly spaced",
                    "features": "pool", "covariance": "n - 1 (ADM)"},
            "clipsim": {"score": "mean over frames of cos(frame, caption)", "scale": "raw cosine, not x100"},
        },
        device=str(device), wall_time_s=round(time.time() - start_time, 3),
    )
    result["protocol"] = {k: v for k, v in result["protocol"].items() if k in metrics}
    if out_json:
        atomic_json(out_json, result)
    return result
