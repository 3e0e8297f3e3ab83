"""A small 3-D CNN video classifier: the stand-in's FVD and video-IS network.

I3D (FVD) and the UCF-101 C3D (video IS) mean little on 16x32x32 stand-in clips, so the embedded default
trains this network on the stand-in training split and reports FVD on its pooled features and IS on its
logits, under its own name (design.md, Scales). The roles mirror the real networks: pool = global
average of the last 3-D conv block (the features whose Gaussians FVD compares), logits = the classifier
head (softmax -> the video Inception score, as StyleGAN-V's isv2048_ucf uses the C3D's class
probabilities).
"""

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from evaluation.extractors.small_classifier import check_labels
from evaluation.metrics.feature_extractor import file_sha256
from ptdit.atomic import atomic_torch_save

FORMAT = "ptdit-video-classifier-v1"


def conv3d_block(cin, cout, stride):
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm3d(cout),
                         nn.ReLU())


def videos_to_input(videos):
    """uint8 [N, T, H, W, 3] (the sample .npz layout) -> float [N, 3, T, H, W] in [-1, 1]."""
    videos = torch.as_tensor(videos)
    if videos.dtype != torch.uint8 or videos.dim() != 5 or videos.shape[-1] != 3:
        raise ValueError(f"expected uint8 videos [N, T, H, W, 3], got {videos.dtype} {tuple(videos.shape)}")
    return videos.permute(0, 4, 1, 2, 3).float() / 127.5 - 1


class VideoClassifier(nn.Module):
    """Three strided 3-D conv blocks (16x32x32 -> 16x16x16 -> 8x8x8 -> 4x4x4), average pool, linear head."""

    def __init__(self, num_classes, width=16, num_frames=16, image_size=32):
        super().__init__()
        self.num_classes, self.width = num_classes, width
        self.num_frames, self.image_size = num_frames, image_size
        self.name = f"small-c3d-w{width}-c{num_classes}"
        self.weights_sha256 = ""
        self.pool_dim = 4 * width
        self.blocks = nn.Sequential(conv3d_block(3, width, (1, 2, 2)), conv3d_block(width, 2 * width, 2),
                                    conv3d_block(2 * width, 4 * width, 2))
        self.head = nn.Linear(4 * width, num_classes)

    def check(self, videos):
        shape = tuple(videos.shape[1:4])
        if shape != (self.num_frames, self.image_size, self.image_size):
            raise ValueError(f"{self.name} was trained on clips of {self.num_frames}x{self.image_size}x"
                             f"{self.image_size} (frames x H x W), got {shape}; sample and make the reference "
                             f"at the stand-in's size, or train the extractor at this size")

    def pool(self, x):
        # channels-last 3-D: the CPU's conv3d kernels are ~7x faster on it (measured here, forward+backward)
        return self.blocks(x.contiguous(memory_format=torch.channels_last_3d)).mean(dim=(2, 3, 4))

    def features(self, videos):
        """uint8 [N, T, H, W, 3] -> (pool [N, 4*width], logits [N, num_classes])."""
        self.check(videos)
        pool = self.pool(videos_to_input(videos).to(self.head.weight.device))
        return pool, self.head(pool)


def shuffled_batches(n, batch_size, steps, gen):
    """`steps` index batches from successive random permutations of range(n): a step count, not an epoch
    count, so 40 clips train as long as 300 do."""
    done = 0
    while True:
        for idx in torch.randperm(n, generator=gen).split(batch_size):
            if done == steps:
                return
            done += 1
            yield idx


SHIFT = 6   # pixels of random translation (the stand-in's objects start within ~8 px of each other)


def augment(x, gen):
    """Random flip, shift, channel order and channel gain of a batch of clips [N, 3, T, H, W] in [-1, 1].

    The stand-in has 6 training clips per class and draws each procedural clip's object colour, background
    and position at random, so a network trained on the clips as they are names a held-out clip by its
    colours: 0.71 of the 14 UCF-101 test clips at 120 steps, 0.64-0.79 however long it trains. Judged by
    shape and motion instead (shift, channel order, gain), it names 0.86 (UCF-101) and 0.93-1.0 (MSR-VTT)
    of them (issue 17; measured on the default stand-in). Class accuracy of samples is only as good as this."""
    n, _, frames, height, width = x.shape
    x = torch.where((torch.rand(n, generator=gen) < 0.5)[:, None, None, None, None], x.flip(-1), x)
    padded = F.pad(x.flatten(1, 2), (SHIFT,) * 4, mode="replicate").view(n, 3, frames, height + 2 * SHIFT,
                                                                          width + 2 * SHIFT)
    offsets = torch.randint(0, 2 * SHIFT + 1, (n, 2), generator=gen).tolist()
    x = torch.stack([clip[:, :, dy: dy + height, dx: dx + width] for clip, (dy, dx) in zip(padded, offsets)])
    x = torch.stack([clip[torch.randperm(3, generator=gen)] for clip in x])
    gain = 1 + 0.3 * (2 * torch.rand(n, 3, 1, 1, 1, generator=gen) - 1)
    return (x * gain).clamp(-1, 1)


def train_video_classifier(videos, labels, num_classes, steps=400, batch_size=16, lr=3e-3, width=16, seed=0,
                           device="cpu"):
    """Train on uint8 clips [N, T, H, W, 3] with integer labels; returns the model in eval mode.
    Clips are augmented (augment) so that 40-300 clips are not memorised by their colours."""
    videos, labels = np.asarray(videos), np.asarray(labels).astype(np.int64)
    if videos.dtype != np.uint8 or videos.ndim != 5 or videos.shape[-1] != 3 or videos.shape[2] != videos.shape[3]:
        raise ValueError(f"expected uint8 square clips [N, T, S, S, 3], got {videos.dtype} {videos.shape}")
    check_labels(labels, len(videos), num_classes)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = VideoClassifier(num_classes, width, videos.shape[1], videos.shape[2])
    model = model.to(device, memory_format=torch.channels_last_3d)
    x_all, y_all = videos_to_input(torch.from_numpy(videos)), torch.from_numpy(labels)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for idx in tqdm(shuffled_batches(len(x_all), batch_size, steps, gen), total=steps, desc="train video classifier"):
        x, y = augment(x_all[idx], gen).to(device), y_all[idx]
        loss = F.cross_entropy(model.head(model.pool(x)), y.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval().requires_grad_(False)


@torch.no_grad()
def accuracy(model, videos, labels, batch_size=64):
    """A sanity number for the log: a feature network that cannot tell its classes apart makes FVD on
    its features meaningless."""
    pred = np.concatenate([model.features(torch.from_numpy(np.asarray(videos[i:i + batch_size])))[1]
                           .argmax(1).cpu().numpy() for i in range(0, len(videos), batch_size)])
    return float(np.mean(pred == np.asarray(labels)))


def save_video_classifier(model, path):
    """State dict and shape in one file of plain tensors and ints (loads with weights_only=True)."""
    payload = {"format": FORMAT, "num_classes": model.num_classes, "width": model.width,
               "num_frames": model.num_frames, "image_size": model.image_size,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    atomic_torch_save(payload, path)


def load_video_classifier(path):
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(
            f"video classifier weights not found at {path!r}; train them on the stand-in training split first "
            f"(ptdit train-video-extractor ROOT OUT.pt --kind ucf101|msrvtt)")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file (written by ptdit train-video-extractor)")
    model = VideoClassifier(int(payload["num_classes"]), int(payload["width"]), int(payload["num_frames"]),
                            int(payload["image_size"]))
    model.load_state_dict(payload["state_dict"], strict=True)
    model.weights_sha256 = file_sha256(path)
    return model.float().to(memory_format=torch.channels_last_3d).eval().requires_grad_(False)
