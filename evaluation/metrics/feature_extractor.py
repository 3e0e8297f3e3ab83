"""The interface every feature network used for image metrics follows.

The Inception network (evaluation/metrics/inception.py, the ADM protocol) and the small stand-in classifier
(evaluation/extractors/small_classifier.py, the embedded default) are used the same way: uint8 NCHW images in,
three float32 feature sets out, plus a name and the checksum of the weights they were loaded from,
which the result JSON records.
"""

import hashlib
from typing import NamedTuple

import torch
from torch import nn


class Features(NamedTuple):
    pool: torch.Tensor  # [N, pool_dim]: FID, precision/recall (Inception pool_3)
    logits: torch.Tensor  # [N, num_classes]: Inception score (softmax taken by the metric)
    spatial: torch.Tensor  # [N, spatial_dim]: sFID, flattened in TF NHWC order (h, w, c)


class FeatureExtractor(nn.Module):
    """Subclasses set the attributes below and implement features()."""

    name = "unnamed"
    weights_sha256 = ""
    input_size = None  # images must be input_size x input_size; None: any size (resized inside)
    pool_dim = 0
    spatial_dim = 0
    num_classes = 0

    def features(self, images):
        raise NotImplementedError

    def forward(self, images):
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"{self.name} expects uint8 images [N, 3, H, W], got {images.dtype} {tuple(images.shape)}")
        if self.input_size is not None and tuple(images.shape[2:]) != (self.input_size, self.input_size):
            raise ValueError(
                f"{self.name} was trained on {self.input_size}x{self.input_size} images, got "
                f"{images.shape[2]}x{images.shape[3]}"
            )
        return self.features(images)


def file_sha256(path, chunk_size=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()
