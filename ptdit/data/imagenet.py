"""ImageNet in its on-disk layout: <split>/<wnid>/*.JPEG, class index = position in the sorted wnids.

Preprocessing is ADM's center_crop_arr (openai/guided-diffusion guided_diffusion/image_datasets.py,
also in facebookresearch/DiT train.py): halve with a BOX filter while the short side is at least
twice the target, resize the short side to the target with BICUBIC, then crop the centre. The random
flip is not done here: `ptdit encode` stores both orientations and training picks one per sample per
step (ptdit/data/latents.py).

An unreadable file stops with an error that names it, or, with skip_unreadable=True, the item is None
and the caller counts and logs it (ptdit/data/latents.py does).
"""

import logging
import os

import numpy as np
import torch
from PIL import Image

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")


class UnreadableImage(ValueError):
    """An image file that PIL cannot decode (truncated, corrupt, not an image)."""


def center_crop_arr(pil_image, image_size):
    """ADM's center crop: a square image_size x image_size uint8 array (H, W, 3)."""
    while min(*pil_image.size) >= 2 * image_size:
        half = tuple(side // 2 for side in pil_image.size)
        pil_image = pil_image.resize(half, resample=Image.BOX)
    scale = image_size / min(*pil_image.size)
    pil_image = pil_image.resize(tuple(round(side * scale) for side in pil_image.size), resample=Image.BICUBIC)
    arr = np.array(pil_image)
    top = (arr.shape[0] - image_size) // 2
    left = (arr.shape[1] - image_size) // 2
    return arr[top: top + image_size, left: left + image_size]


def list_classes(split_dir):
    """The wnid folders of a split, sorted: their positions are the class indices (as ImageFolder)."""
    if not os.path.isdir(split_dir):
        raise FileNotFoundError(f"image folder '{split_dir}' does not exist; expected ImageNet's layout "
                                f"<split>/<wnid>/*.JPEG (make a stand-in with `ptdit prepare-standin`)")
    classes = sorted(e.name for e in os.scandir(split_dir) if e.is_dir())
    if not classes:
        raise FileNotFoundError(f"image folder '{split_dir}' has no class folders (<wnid>/*.JPEG)")
    return classes


def list_images(split_dir, classes):
    """(path, class index) of every image, classes in order, files sorted within each class."""
    items = []
    for index, wnid in enumerate(classes):
        folder = os.path.join(split_dir, wnid)
        names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
        items.extend((os.path.join(folder, n), index) for n in names)
    return items


def read_image(path, image_size):
    """Decode to RGB and center-crop; any decoding failure names the file."""
    try:
        with Image.open(path) as img:
            img.load()  # decode now: a truncated JPEG fails here, not later in a worker
            arr = center_crop_arr(img.convert("RGB"), image_size)
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
        raise UnreadableImage(f"cannot read image '{path}': {type(err).__name__}: {err}. Replace or delete "
                              f"the file, or allow skipping (skip_unreadable / --skip-unreadable)") from err
    return arr


class ImageNetFolder(torch.utils.data.Dataset):
    """Images of one split as (float tensor (3, S, S) in [-1, 1], class index), or None if unreadable
    and skip_unreadable (the caller filters and counts Nones)."""

    def __init__(self, split_dir, image_size, skip_unreadable=False):
        self.split_dir, self.image_size, self.skip_unreadable = split_dir, image_size, skip_unreadable
        self.classes = list_classes(split_dir)
        self.items = list_images(split_dir, self.classes)
        if not self.items:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under '{split_dir}'")

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        path, label = self.items[index]
        try:
            arr = read_image(path, self.image_size)
        except UnreadableImage as err:
            if not self.skip_unreadable:
                raise
            log.warning("skipping %s", err)
            return None
        # ToTensor + Normalize(0.5, 0.5) of DiT train.py: uint8 -> [-1, 1].
        x = torch.from_numpy(arr).permute(2, 0, 1).float().div(127.5).sub(1.0)
        return x, label, index


def load_split(split_dir, image_size):
    """Every image of a split as (uint8 [N, S, S, 3], int64 labels [N]): for small splits only (the
    stand-in's feature-network training set and reference batch)."""
    items = list_images(split_dir, list_classes(split_dir))
    if not items:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under '{split_dir}'")
    images = np.stack([read_image(path, image_size) for path, _ in items])
    return images, np.array([label for _, label in items], dtype=np.int64)
