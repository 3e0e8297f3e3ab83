"""A small CNN classifier for 32x32 stand-in images: the embedded default's feature network.

Inception features mean little on 32x32 stand-in data, so the default DAG trains this network on the
stand-in training split and reports FID/sFID/IS/precision/recall on its features, under its own name
(design.md, Scales). It mirrors the roles of Inception's layers: pool = global average of the last
conv block (FID, precision/recall), logits = the classifier head (IS), spatial = the first 7 channels
of the 8x8 map before pooling, flattened NHWC (sFID).
"""

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evaluation.metrics.feature_extractor import FeatureExtractor, Features, file_sha256
from ptdit.atomic import atomic_torch_save

FORMAT = "ptdit-small-classifier-v1"
SPATIAL_CHANNELS = 7


def conv_block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class SmallClassifier(FeatureExtractor):
    input_size = 32
    dataset_classes = True   # its classes are the stand-in's labels: class accuracy of samples is defined

    def __init__(self, num_classes, width=32):
        super().__init__()
        self.width = width
        self.name = f"small-cnn-w{width}-c{num_classes}"
        self.num_classes = num_classes
        self.pool_dim = 4 * width
        self.spatial_dim = 8 * 8 * SPATIAL_CHANNELS
        self.block1 = conv_block(3, width)  # 32x32
        self.block2 = conv_block(width, 2 * width)  # 16x16
        self.block3 = conv_block(2 * width, 4 * width)  # 8x8
        self.head = nn.Linear(4 * width, num_classes)

    def trunk(self, images):
        x = images.float() / 127.5 - 1
        x = F.max_pool2d(self.block1(x), 2)
        x = F.max_pool2d(self.block2(x), 2)
        return self.block3(x)

    def features(self, images):
        fmap = self.trunk(images)
        pool = fmap.mean(dim=(2, 3))
        spatial = fmap[:, :SPATIAL_CHANNELS].permute(0, 2, 3, 1).reshape(len(fmap), -1)
        return Features(pool=pool, logits=self.head(pool), spatial=spatial)


def check_labels(labels, count, num_classes):
    if len(labels) != count or labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"expected {count} labels in [0, {num_classes}), got {len(labels)} in "
                         f"[{labels.min()}, {labels.max()}]")


def train_small_classifier(images, labels, num_classes, epochs=5, batch_size=128, lr=2e-3, width=32, seed=0,
                           device="cpu"):
    """Train on uint8 NHWC images [N, 32, 32, 3] with integer labels; returns the model in eval mode."""
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise ValueError(f"expected uint8 images [N, 32, 32, 3], got {images.dtype} {images.shape}")
    check_labels(labels, len(images), num_classes)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = SmallClassifier(num_classes, width).to(device)
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    y_all = torch.from_numpy(labels.astype(np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x_all), generator=gen).split(batch_size):
            x, y = x_all[idx].to(device), y_all[idx].to(device)
            loss = F.cross_entropy(model.features(x).logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def save_small_classifier(model, path):
    """State dict and shape in one file of plain tensors and ints (loads with weights_only=True)."""
    payload = {"format": FORMAT, "num_classes": model.num_classes, "width": model.width,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    atomic_torch_save(payload, path)


def load_small_classifier(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"small classifier weights not found at {path!r}; train them on the stand-in training split first "
            f"(evaluation.extractors.small_classifier.train_small_classifier + save_small_classifier)"
        )
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file")
    model = SmallClassifier(int(payload["num_classes"]), int(payload["width"]))
    model.load_state_dict(payload["state_dict"], strict=True)
    model.weights_sha256 = file_sha256(path)
    return model.float().eval().requires_grad_(False)
