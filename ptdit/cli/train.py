"""`ptdit train RUN_DIR --data LATENTS ...`: argparse front of ptdit/train.py."""

import argparse
import logging
import os

import yaml


def parse_pairs(pairs):
    """["depth=2", "compression_ratio=[1,2,2]"] -> {"depth": 2, "compression_ratio": [1, 2, 2]} (YAML values)."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"expected KEY=VALUE, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def setup_logging():
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def cmd_train(args):
    from ptdit.train import NonFiniteLoss, TrainConfig, train

    setup_logging()
    fields = {}
    if args.config:
        with open(args.config) as f:
            fields.update(yaml.safe_load(f) or {})
    given = {"run_dir": args.run_dir, "data": args.data, "model": args.model, "objective": args.objective,
             "steps": args.steps, "global_batch_size": args.batch_size, "lr": args.lr,
             "lr_schedule": args.lr_schedule, "warmup_steps": args.warmup_steps,
             "ema_decay": args.ema_decay, "cond_dropout": args.cond_dropout, "ckpt_every": args.ckpt_every,
             "log_every": args.log_every,
             "seed": args.seed, "num_workers": args.num_workers, "device": args.device, "bf16": args.bf16,
             "tf32": args.tf32, "grad_checkpointing": args.grad_checkpointing, "compile": args.compile,
             "progress": args.progress}
    fields.update({k: v for k, v in given.items() if v is not None})
    if args.model_override:
        fields["model_overrides"] = {**fields.get("model_overrides", {}), **parse_pairs(args.model_override)}
    if args.objective_option:
        fields["objective_options"] = {**fields.get("objective_options", {}), **parse_pairs(args.objective_option)}
    if "data" not in fields:
        raise ValueError("--data (a `ptdit encode` / `ptdit encode-video` folder) is required")
    try:
        path = train(TrainConfig.from_dict(fields))
    except NonFiniteLoss as err:
        raise SystemExit(f"ptdit train: {err}")
    print(path)


def add_parser(subparsers):
    p = subparsers.add_parser("train", help="train a model on encoded latents/pixels; resumes an existing run")
    p.add_argument("run_dir", help="run folder: config.yaml, checkpoints/, log.csv, final.pt")
    p.add_argument("--config", help="YAML file of TrainConfig fields (flags given here override it)")
    p.add_argument("--data", help="`ptdit encode` or `ptdit encode-video` output folder")
    p.add_argument("--model", help="registered model name, e.g. DiT-S/2, PT-DiT/S-Class, PT-DiT/S-Video, PT-DiT/S-T2V")
    p.add_argument("--model-override", "-m", action="append", metavar="KEY=VALUE",
                   help="model config field, e.g. -m depth=2 -m hidden_size=64")
    p.add_argument("--objective", choices=["ddpm", "sit"])
    p.add_argument("--objective-option", "-o", action="append", metavar="KEY=VALUE",
                   help="create_diffusion / create_transport argument, e.g. -o path_type=GVP")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int, help="global batch size (all processes)")
    p.add_argument("--lr", type=float)
    p.add_argument("--lr-schedule", choices=["constant", "cosine"],
                   help="constant (default; DiT, SiT) or cosine decay from --lr to 0 at --steps")
    p.add_argument("--warmup-steps", type=int, help="linear warm-up to --lr over this many steps (default 0)")
    p.add_argument("--ema-decay", type=float)
    p.add_argument("--cond-dropout", type=float,
                   help="label / caption dropout for CFG (default: the model's class_dropout_prob, 0.1)")
    p.add_argument("--ckpt-every", type=int)
    p.add_argument("--log-every", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--num-workers", type=int)
    p.add_argument("--device", help="auto | cpu | cuda")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help="bf16 autocast on CUDA (default on)")
    p.add_argument("--tf32", action=argparse.BooleanOptionalAction, default=None, help="TF32 matmuls on CUDA (default on)")
    p.add_argument("--grad-checkpointing", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--compile", nargs="?", const="default", default=None,
                   choices=("default", "reduce-overhead", "max-autotune"),
                   help="torch.compile the model, in this mode (reduce-overhead: CUDA graphs); bare --compile: default")
    p.add_argument("--no-compile", dest="compile", action="store_const", const=False)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default on; off in workflow logs)")
    p.set_defaults(func=cmd_train)
    return p
