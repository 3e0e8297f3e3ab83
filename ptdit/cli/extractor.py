"""`ptdit train-extractor` and `ptdit make-reference`: the stand-in's feature network and reference
batch (design.md: on stand-in data, FID and friends are computed on a domain classifier's features
and reported under that extractor's name).

    ptdit train-extractor data/standin/train results/extractor/small_cnn.pt --image-size 32
    ptdit make-reference data/standin/val results/reference/standin_val.npz --image-size 32
"""

import os


def cmd_train_extractor(args):
    from evaluation.extractors.small_classifier import save_small_classifier, train_small_classifier
    from ptdit.data.imagenet import load_split

    images, labels = load_split(args.split_dir, args.image_size)
    num_classes = int(labels.max()) + 1
    model = train_small_classifier(images, labels, num_classes, epochs=args.epochs, seed=args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_small_classifier(model, args.out)
    print(f"small-cnn on {len(images)} images, {num_classes} classes, train accuracy "
          f"{train_accuracy(model, images, labels):.3f} -> {args.out}")


def train_accuracy(model, images, labels):
    """A sanity number for the log: a feature network that cannot classify its own training set
    would make every FID on it meaningless."""
    import numpy as np
    import torch

    with torch.no_grad():
        x = torch.from_numpy(images).permute(0, 3, 1, 2)
        pred = torch.cat([model.features(b).logits.argmax(1) for b in x.split(512)]).numpy()
    return float(np.mean(pred == labels))


def cmd_make_reference(args):
    import numpy as np

    from ptdit.atomic import atomic_write
    from ptdit.data.imagenet import load_split

    images, labels = load_split(args.split_dir, args.image_size)
    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, arr_0=images, arr_1=labels)

    atomic_write(args.out, write)
    print(f"reference batch of {len(images)} images ({images.shape[1]} px) -> {args.out}")


def add_parser(subparsers):
    t = subparsers.add_parser("train-extractor", help="train the stand-in's small CNN feature network")
    t.add_argument("split_dir", help="training split in ImageNet's layout (<wnid>/*.JPEG)")
    t.add_argument("out", help="weights file (.pt, plain tensors)")
    t.add_argument("--image-size", type=int, default=32)
    t.add_argument("--epochs", type=int, default=5)
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=cmd_train_extractor)

    r = subparsers.add_parser("make-reference", help="write a split as an ADM-format reference .npz")
    r.add_argument("split_dir")
    r.add_argument("out", help=".npz with arr_0 uint8 [N, S, S, 3] and arr_1 labels")
    r.add_argument("--image-size", type=int, default=32)
    r.set_defaults(func=cmd_make_reference)
