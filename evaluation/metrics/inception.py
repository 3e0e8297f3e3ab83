"""Inception-v3 as the ADM evaluator uses it (TF graph classify_image_graph_def.pb, 2015-12-05).

The architecture and its state-dict keys are those of torch-fidelity's TF-compatible network
(torch_fidelity/feature_extractor_inceptionv3.py, FeatureExtractorInceptionV3), so its converted
weights file loads here strictly, and nothing here imports torch_fidelity (the GPU machines lack it).
The TF quirks it reproduces: TF1 bilinear resize to 299 without antialiasing, (x - 128) / 128,
average pools that ignore padding, and a max pool in the last block.

Outputs, named as in ADM's evaluator.py:
- pool:    pool_3:0, 2048-d (FID, precision/recall).
- logits:  pool_3 @ softmax/weights, no bias (ADM _create_softmax_graph multiplies by the MatMul
           weights only; torch-fidelity calls this 'logits_unbiased'), 1008 classes (IS).
- spatial: mixed_6/conv:0[..., :7], 17x17x7 = 2023-d (sFID). TF block mixed_6 is Mixed_6d here
           (torch-fidelity utils/util_convert_inception_weights.py maps mixed_6/conv to
           Mixed_6d.branch1x1), and its output is the ReLU after the batch norm. Flattened in TF's
           NHWC order (h, w, c), as ADM reshapes the TF tensor.
"""

import os

import torch
import torch.nn.functional as F
from torch import nn

from evaluation.metrics.feature_extractor import FeatureExtractor, Features, file_sha256

WEIGHTS_ENV = "PTDIT_INCEPTION_WEIGHTS"
WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + WEIGHTS_FILE
# Reported by third-party notes for torch-fidelity's file; not verifiable offline here, so a
# mismatch only warns (the checksum actually loaded is written into every result).
WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
INPUT_SIZE = 299
SPATIAL_CHANNELS = 7


class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def avg_pool_tf(x):
    # TF's 3x3 SAME average pool divides by the count of real (unpadded) pixels.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(avg_pool_tf(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3(x)
        b3d = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, b3d, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin, c7):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        # branch1x1 comes first in the concatenation, so channels [0, 192) of this block's output
        # are TF's <block>/conv tensor (used for sFID on Mixed_6d).
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7d = x
        for i in range(1, 6):
            b7d = getattr(self, f"branch7x7dbl_{i}")(b7d)
        bp = self.branch_pool(avg_pool_tf(x))
        return torch.cat([b1, b7, b7d, bp], 1)


class InceptionD(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for i in range(1, 5):
            b7 = getattr(self, f"branch7x7x3_{i}")(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    def __init__(self, cin, pool):
        super().__init__()
        self.pool = pool  # TF's last block (mixed_10) max-pools where the paper average-pools
        self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        b3d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3d = torch.cat([self.branch3x3dbl_3a(b3d), self.branch3x3dbl_3b(b3d)], 1)
        if self.pool == "max":
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = avg_pool_tf(x)
        return torch.cat([b1, b3, b3d, self.branch_pool(pooled)], 1)


def resize_bilinear_tf1(x, size):
    """tf.image.resize_bilinear(align_corners=False) of TF 1.x: source = dest * in / out, no half-pixel
    shift, no antialiasing. Same arithmetic order as torch-fidelity's interpolate_compat_tensorflow.py
    ('slow' method, bit-exact on CPU)."""

    def axis(n_in, n_out):
        pos = torch.arange(n_out, dtype=torch.float32, device=x.device) * torch.tensor(n_in / n_out)
        lo = pos.long()
        hi = (lo + 1).clamp_max(n_in - 1)
        return lo, hi, pos - lo.float()

    ylo, yhi, dy = axis(x.shape[2], size)
    xlo, xhi, dx = axis(x.shape[3], size)
    top, bottom = x[:, :, ylo], x[:, :, yhi]
    top = top[..., xlo] + (top[..., xhi] - top[..., xlo]) * dx
    bottom = bottom[..., xlo] + (bottom[..., xhi] - bottom[..., xlo]) * dx
    return top + (bottom - top) * dy.view(-1, 1)


def spatial_nhwc(feature_map, channels=SPATIAL_CHANNELS):
    """[N, C, H, W] -> [N, H*W*channels] in TF's NHWC order: ADM takes mixed_6/conv[..., :7] of an NHWC
    tensor and reshapes it to [N, -1]; an NCHW flatten would give the same numbers in another order and
    a different sFID."""
    return feature_map[:, :channels].permute(0, 2, 3, 1).reshape(len(feature_map), -1)


class InceptionV3(FeatureExtractor):
    name = "inception-v3-tf-2015-12-05"
    pool_dim = 2048
    spatial_dim = 17 * 17 * SPATIAL_CHANNELS
    num_classes = 1008

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.MaxPool_1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.MaxPool_2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, c7=128)
        self.Mixed_6c = InceptionC(768, c7=160)
        self.Mixed_6d = InceptionC(768, c7=160)
        self.Mixed_6e = InceptionC(768, c7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.AvgPool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, 1008)

    def features(self, images):
        x = resize_bilinear_tf1(images.float(), INPUT_SIZE)
        x = (x - 128) / 128
        x = self.MaxPool_1(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x))))
        x = self.MaxPool_2(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))
        x = self.Mixed_6a(self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x))))
        x = self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x)))
        spatial = spatial_nhwc(x)  # mixed_6/conv = the first 192 channels of Mixed_6d
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(self.Mixed_6e(x))))
        pool = torch.flatten(self.AvgPool(x), 1)
        logits = pool @ self.fc.weight.T  # no bias, as ADM's softmax graph
        return Features(pool=pool, logits=logits, spatial=spatial)


def missing_weights_message(path):
    return (
        f"Inception weights not found at {path!r}. Expected torch-fidelity's converted TF Inception file "
        f"{WEIGHTS_FILE} (sha256 reported as {WEIGHTS_SHA256}), published at {WEIGHTS_URL}. Download it on a "
        f"machine with internet access and pass its path (--inception-weights / config key "
        f"inception_weights) or set {WEIGHTS_ENV}."
    )


def load_inception(weights_path=None):
    """InceptionV3 in fp32, eval mode, weights from a local file (argument, else $PTDIT_INCEPTION_WEIGHTS)."""
    path = weights_path or os.environ.get(WEIGHTS_ENV)
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(missing_weights_message(path or f"${WEIGHTS_ENV} (unset)"))
    model = InceptionV3()
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state_dict, strict=True)
    model.weights_sha256 = file_sha256(path)
    if os.path.basename(path) == WEIGHTS_FILE and model.weights_sha256 != WEIGHTS_SHA256:
        import warnings

        warnings.warn(f"{path}: sha256 {model.weights_sha256} differs from the reported {WEIGHTS_SHA256}")
    return model.float().eval().requires_grad_(False)


@torch.no_grad()
def calibrate_random_inception(model, seed=0, n_images=8, size=48):
    """Turn a randomly initialised InceptionV3 into one with O(1) activations (for tests and timing,
    never for reported numbers): one train-mode pass with momentum 1 sets every batch norm's running
    statistics to those of random noise images, and fc is scaled so that the logits vary across those
    images by about 2 (a random fc would give an Inception score of 1.000)."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n_images, 3, size, size), generator=gen, dtype=torch.uint8)
    batch_norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in batch_norms:
        m.momentum = 1.0
    model.train()
    model.features(images)
    for m in batch_norms:
        m.momentum = 0.1
    model.eval()
    spread = model.features(images).logits.std(dim=0).mean()
    model.fc.weight.mul_(2.0 / spread)
    return model
