"""`ptdit sample CHECKPOINT OUT.npz ...`: argparse front of ptdit/sample.py."""

from ptdit.cli.train import parse_pairs, setup_logging


def cmd_sample(args):
    from ptdit.sample import SampleConfig, sample

    setup_logging()
    config = SampleConfig(
        checkpoint=args.checkpoint, out=args.out, num_samples=args.num_samples, batch_size=args.batch_size,
        cfg_scale=args.cfg_scale, num_steps=args.num_steps, sampler=args.sampler,
        sampler_options=parse_pairs(args.sampler_option), labels=args.labels, seed=args.seed,
        weights=args.weights, decoder=args.decoder, captions=args.captions, model=args.model,
        model_overrides=parse_pairs(args.model_override), objective=args.objective,
        objective_options=parse_pairs(args.objective_option), device=args.device, keep_shards=args.keep_shards)
    print(sample(config))


def add_parser(subparsers):
    p = subparsers.add_parser("sample", help="sample to an ADM-format .npz, or a video .npz (torchrun for several GPUs)")
    p.add_argument("checkpoint", help="a run's final.pt / checkpoint, or an official DiT/SiT/DAM .pt")
    p.add_argument("out", help="the .npz to write (shards go to OUT.shards/ meanwhile)")
    p.add_argument("--num-samples", type=int, default=50_000)
    p.add_argument("--batch-size", type=int, default=32, help="samples per shard and per forward pass")
    p.add_argument("--cfg-scale", type=float, default=1.0)
    p.add_argument("--num-steps", type=int, default=250)
    p.add_argument("--sampler", choices=["ddpm", "ddim", "sde", "ode"], help="default: ddpm / sde")
    p.add_argument("--sampler-option", "-s", action="append", metavar="KEY=VALUE",
                   help="e.g. -s sampling_method=Heun, -s eta=0.0")
    p.add_argument("--labels", choices=["uniform", "balanced"], default="uniform")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", choices=["ema", "model"], default="ema")
    p.add_argument("--decoder", default="auto", help="auto (from the run's data) | pixel | a local VAE folder")
    p.add_argument("--captions", help="text models: `ptdit encode-video msrvtt ... --split test` folder; sample i "
                                      "uses the eval caption of clip i mod N")
    p.add_argument("--model", help="model name, needed for official checkpoints (DiT-XL/2, SiT-XL/2, DAM-...)")
    p.add_argument("--model-override", "-m", action="append", metavar="KEY=VALUE")
    p.add_argument("--objective", choices=["ddpm", "sit"])
    p.add_argument("--objective-option", "-o", action="append", metavar="KEY=VALUE")
    p.add_argument("--device", default="auto")
    p.add_argument("--keep-shards", action="store_true")
    p.set_defaults(func=cmd_sample)
    return p
