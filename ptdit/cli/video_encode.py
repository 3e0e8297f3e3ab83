"""`ptdit encode-video {ucf101,msrvtt} ROOT OUT_DIR`: argparse front of ptdit/data/video_latents.py."""

from ptdit.cli.train import setup_logging


def cmd_encode_video(args):
    from ptdit.data.video_latents import encode_video

    setup_logging()
    meta = encode_video(args.dataset, args.root, args.out_dir, split=args.split, fold=args.fold,
                        num_frames=args.num_frames, frame_stride=args.frame_stride, image_size=args.image_size,
                        skip_unreadable=args.skip_unreadable, vae=args.vae, vae_kind=args.vae_kind,
                        text_encoder=args.text_encoder, text_encoder_path=args.text_encoder_path,
                        max_tokens=args.max_tokens, max_captions=args.max_captions, shard_size=args.shard_size,
                        batch_size=args.batch_size, num_workers=args.num_workers, device=args.device)
    text = f", {meta['captions_per_clip']} captions/clip" if meta["text_encoder"] else ""
    print(f"{meta['num_samples']} clips ({meta['mode']}, {'x'.join(map(str, meta['shape']))}{text}), "
          f"{meta['skipped_unreadable']} unreadable skipped -> {args.out_dir}")


def add_parser(subparsers):
    p = subparsers.add_parser("encode-video", help="encode a UCF-101 / MSR-VTT split once into video shards "
                                                   "(pixels or VAE latents, + caption features) for training")
    p.add_argument("dataset", choices=["ucf101", "msrvtt"])
    p.add_argument("root", help="the dataset's on-disk layout (UCF-101/ + ucfTrainTestlist/, or MSR-VTT videos + JSON)")
    p.add_argument("out_dir")
    p.add_argument("--split", choices=["train", "test"], default="train")
    p.add_argument("--fold", type=int, default=1, help="UCF-101 split fold 1..3")
    p.add_argument("--num-frames", type=int, default=16)
    p.add_argument("--frame-stride", type=int, default=1)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--vae", help="local VAE folder; omit for pixel space")
    p.add_argument("--vae-kind", choices=["image", "causal3d"], default="image",
                   help="image: AutoencoderKL (sd-vae-ft-ema) frame by frame; causal3d: AutoencoderKLCogVideoX")
    p.add_argument("--text-encoder", choices=["t5", "minilm", "tiny-t5"], default="minilm",
                   help="MSR-VTT captions: t5 (local folder), minilm (offline wheel), tiny-t5 (tests)")
    p.add_argument("--text-encoder-path", help="t5: local folder of t5-v1_1-xxl (or a PixArt pipeline folder)")
    p.add_argument("--max-tokens", type=int, help="caption length L (default: t5 120, minilm 32, tiny-t5 16)")
    p.add_argument("--max-captions", type=int, default=20, help="captions stored per clip (MSR-VTT has 20)")
    p.add_argument("--shard-size", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=8, help="clips per encoder call")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--skip-unreadable", action="store_true", help="skip and count unreadable videos")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_encode_video)
    return p
