"""Pictures of the samples (issue 15): a grid per sample file, rows = classes, and one figure with every
table row's grid side by side, labelled.

    python -m evaluation.report.sample_grid grid SAMPLES.npz OUT.png          # <samples>.png beside the .npz
    python -m evaluation.report.sample_grid figure OUT.png LABEL=GRID.png ...  # results/figures/samples.png
"""

import argparse
import os

import numpy as np
from PIL import Image

from ptdit.atomic import atomic_write

MAX_CLASSES = 10   # ImageNet's 1000 classes: the first ten present
PER_CLASS = 8


def grid_array(images, labels, max_classes=MAX_CLASSES, per_class=PER_CLASS, pad=1):
    """uint8 (H', W', 3): row c = the first per_class samples of the c-th smallest label, black where
    a class has fewer; a pad-pixel grey line between images."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or len(labels) != len(images):
        raise ValueError(f"expected uint8 images (N, H, W, 3) and N labels, got {images.dtype} {images.shape} "
                         f"and {len(labels)} labels")
    classes = np.unique(labels)[:max_classes]
    h, w = images.shape[1:3]
    out = np.full((len(classes) * (h + pad) + pad, per_class * (w + pad) + pad, 3), 128, np.uint8)
    for r, c in enumerate(classes):
        for k, image in enumerate(images[labels == c][:per_class]):
            top, left = pad + r * (h + pad), pad + k * (w + pad)
            out[top:top + h, left:left + w] = image
    return out


def save_png(array, path, scale=1):
    image = Image.fromarray(array)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)

    def write(tmp):
        image.save(tmp, format="PNG")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, write)


def write_grid(samples_npz, out_png, scale=2):
    """The grid of an ADM-format sample file (arr_0 images, arr_1 labels)."""
    with np.load(samples_npz, allow_pickle=False) as z:
        if "arr_1" not in z.files:
            raise ValueError(f"{samples_npz} has no labels (arr_1); a class grid needs class-conditional samples")
        save_png(grid_array(z["arr_0"], z["arr_1"]), out_png, scale)
    return out_png


def write_figure(out_png, labelled):
    """labelled: [(label, grid png)], drawn side by side, each with its label above."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grids = [(label, np.asarray(Image.open(path).convert("RGB"))) for label, path in labelled]
    cols = min(4, len(grids))
    rows = -(-len(grids) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 4.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (label, grid) in zip(axes.flat, grids):
        ax.imshow(grid, interpolation="nearest")
        ax.set_title(label, fontsize=8)
    fig.suptitle("samples: rows = classes (conditioning label), first 8 per class", fontsize=9)
    fig.tight_layout()

    def write(tmp):
        fig.savefig(tmp, format="png", dpi=110)
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    atomic_write(out_png, write)
    plt.close(fig)
    return out_png


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m evaluation.report.sample_grid", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    g = sub.add_parser("grid")
    g.add_argument("samples")
    g.add_argument("out")
    f = sub.add_parser("figure")
    f.add_argument("out")
    f.add_argument("grids", nargs="+", help="LABEL=PATH.png")
    args = p.parse_args(argv)
    if args.what == "grid":
        write_grid(args.samples, args.out)
    else:
        bad = [g for g in args.grids if "=" not in g]
        if bad:
            raise SystemExit(f"figure inputs are LABEL=PATH.png, got {bad}")
        write_figure(args.out, [tuple(g.rsplit("=", 1)) for g in args.grids])


if __name__ == "__main__":
    main()
