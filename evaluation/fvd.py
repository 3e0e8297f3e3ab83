"""Frechet video distance with StyleGAN-V's I3D detector, sharing evaluation/frechet.py.

Protocol (universome/stylegan-v src/metrics/frechet_video_distance.py and the common port of its
preprocessing): clips of 16 consecutive frames from the start of each video, frames resized so the
short side is 224 (bilinear) and center-cropped to 224x224, scaled to [-1, 1], laid out
[N, 3, T, 224, 224]; the detector (the I3D torchscript i3d_torchscript.pt, Kinetics-400) is called
with rescale=False, resize=False, return_features=True (400-d logits before softmax) and the FVD is
the Frechet distance of the two feature Gaussians. The protocol is returned with the value.

Not done yet: the I3D architecture in PyTorch (for a state-dict file); only the torchscript loads.
"""

import os

import torch
import torch.nn.functional as F

from evaluation.feature_extractor import file_sha256
from evaluation.frechet import RunningStats, frechet_distance

I3D_FILE = "i3d_torchscript.pt"
I3D_URL = "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt"
RESOLUTION = 224
CLIP_LENGTH = 16


def load_i3d(path):
    """The StyleGAN-V I3D torchscript from a local file, in eval mode, with its sha256."""
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(
            f"I3D detector not found at {path!r}: expected StyleGAN-V's {I3D_FILE} (published at {I3D_URL}); "
            f"download it elsewhere and pass its path (--i3d-weights)"
        )
    if not path.endswith(".pt") and not path.endswith(".pth"):
        raise ValueError(f"{path}: expected the I3D torchscript ({I3D_FILE})")
    detector = torch.jit.load(path, map_location="cpu").eval()
    return detector, file_sha256(path)


def preprocess_videos(videos, clip_length=CLIP_LENGTH, resolution=RESOLUTION):
    """uint8 [N, T, H, W, 3] -> float [N, 3, clip_length, resolution, resolution] in [-1, 1]."""
    videos = torch.as_tensor(videos)
    if videos.dtype != torch.uint8 or videos.dim() != 5 or videos.shape[-1] != 3:
        raise ValueError(f"expected uint8 videos [N, T, H, W, 3], got {videos.dtype} {tuple(videos.shape)}")
    if videos.shape[1] < clip_length:
        raise ValueError(f"videos have {videos.shape[1]} frames, the FVD clip length is {clip_length}")
    n, _, h, w, _ = videos.shape
    frames = videos[:, :clip_length].reshape(n * clip_length, h, w, 3).permute(0, 3, 1, 2).float() / 255
    scale = resolution / min(h, w)
    size = (max(resolution, round(h * scale)), max(resolution, round(w * scale)))
    frames = F.interpolate(frames, size=size, mode="bilinear", align_corners=False)
    top, left = (size[0] - resolution) // 2, (size[1] - resolution) // 2
    frames = frames[:, :, top : top + resolution, left : left + resolution]
    frames = frames * 2 - 1
    return frames.reshape(n, clip_length, 3, resolution, resolution).permute(0, 2, 1, 3, 4).contiguous()


@torch.no_grad()
def i3d_stats(videos, detector, batch_size=8, device="cpu", clip_length=CLIP_LENGTH):
    stats = None
    for start in range(0, len(videos), batch_size):
        clips = preprocess_videos(videos[start : start + batch_size], clip_length).to(device)
        feats = detector(clips, rescale=False, resize=False, return_features=True).double().cpu().numpy()
        stats = stats or RunningStats(feats.shape[1])
        stats.update(feats)
    return stats


def fvd(real_videos, fake_videos, detector, detector_sha256="", batch_size=8, device="cpu",
        clip_length=CLIP_LENGTH):
    """FVD between two uint8 [N, T, H, W, 3] video arrays, with the protocol used."""
    real = i3d_stats(real_videos, detector, batch_size, device, clip_length)
    fake = i3d_stats(fake_videos, detector, batch_size, device, clip_length)
    return {
        "fvd": frechet_distance(*fake.mu_sigma(), *real.mu_sigma()),
        "num_real": real.count,
        "num_fake": fake.count,
        "detector": I3D_FILE,
        "detector_sha256": detector_sha256,
        "protocol": {"source": "StyleGAN-V", "clip_length": clip_length, "resolution": RESOLUTION,
                     "range": "[-1, 1]", "clip_start": "first frame", "features": "I3D logits (400-d)"},
    }
