"""An ImageNet-1k classifier for the class accuracy of ImageNet samples (issue 15): torchvision's
ResNet-50 loaded from a local state-dict file (config key imagenet.extractor.classifier_weights).

Preprocessing is that of torchvision's ResNet50_Weights presets (torchvision/models/resnet.py,
transforms/_presets.py ImageClassification): bilinear antialiased resize of the shorter side, center crop
224, scale to [0, 1], normalise with the ImageNet mean/std. IMAGENET1K_V2 (resnet50-11ad3fa6.pth) resizes to
232, IMAGENET1K_V1 (resnet50-0676ba61.pth) to 256. torchvision names its files by the first 8 hex digits of
their sha256, so the file's checksum picks the preset; any other file gets V2's (torchvision's default).
"""

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evaluation.metrics.feature_extractor import file_sha256

KEY = "imagenet.extractor.classifier_weights"
NUM_CLASSES = 1000
CROP = 224
RESIZE_BY_SHA256_PREFIX = {"11ad3fa6": 232, "0676ba61": 256}  # IMAGENET1K_V2, IMAGENET1K_V1
DEFAULT_RESIZE = 232
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
SOURCE = ("a local torchvision ResNet-50 state dict, e.g. resnet50-11ad3fa6.pth (IMAGENET1K_V2, "
          "https://download.pytorch.org/models/resnet50-11ad3fa6.pth)")


def preprocess(images, resize=DEFAULT_RESIZE, crop=CROP):
    """uint8 images [N, 3, H, W] -> normalised float32 [N, 3, crop, crop], as ImageClassification does."""
    x = images.float() / 255
    h, w = x.shape[-2:]
    # torchvision F.resize(int): the shorter side becomes `resize`, the longer keeps the aspect ratio
    size = (resize, int(resize * w / h)) if h <= w else (int(resize * h / w), resize)
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    top, left = int(round((size[0] - crop) / 2.0)), int(round((size[1] - crop) / 2.0))  # F.center_crop
    x = x[..., top:top + crop, left:left + crop]
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


class ImageNetClassifier(nn.Module):
    num_classes = NUM_CLASSES

    def __init__(self, net, weights_sha256):
        super().__init__()
        self.net = net
        self.weights_sha256 = weights_sha256
        self.resize = RESIZE_BY_SHA256_PREFIX.get(weights_sha256[:8], DEFAULT_RESIZE)
        self.name = f"resnet50-{weights_sha256[:8]}-resize{self.resize}-crop{CROP}"

    def forward(self, images):
        return self.net(preprocess(images, self.resize))


def load_imagenet_classifier(path, key=KEY):
    """torchvision.models.resnet50 with the state dict at path (loaded with weights_only=True)."""
    from torchvision.models import resnet50

    if not path or not os.path.isfile(path):
        raise FileNotFoundError(f"{key}: no file at {path!r}; set it to {SOURCE}, or to null to leave class_acc "
                                f"empty")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{key}: cannot read {path} as a torch state dict ({err}); expected {SOURCE}") from err
    if not isinstance(state, dict):
        raise ValueError(f"{key}: {path} holds a {type(state).__name__}, expected {SOURCE}")
    net = resnet50(weights=None)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())  # torch's message spans lines
        raise ValueError(f"{key}: {path} is not a torchvision ResNet-50 state dict ({detail})") from err
    return ImageNetClassifier(net, file_sha256(path)).float().eval().requires_grad_(False)


@torch.no_grad()
def classify(model, batches, device="cpu"):
    """Predicted class of every uint8 NHWC batch, as int64 [N]; bf16 autocast on CUDA only."""
    device = torch.device(device)
    model = model.to(device)
    preds = []
    for batch in batches:
        images = torch.from_numpy(np.require(batch, requirements=["C", "W"])).to(device).permute(0, 3, 1, 2)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(images)
        preds.append(logits.float().argmax(1).cpu().numpy())
    return np.concatenate(preds).astype(np.int64)
