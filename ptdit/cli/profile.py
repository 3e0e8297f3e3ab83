"""`ptdit profile`: the command line of evaluation/efficiency/profile.py (argparse only; the work is there).

    ptdit profile --model PT-DiT/B-Class --resolution 512 --out point.json
    ptdit profile --model DiT-S/2 PT-DiT/S-Class --resolution 256 512 --out-dir results/efficiency/cpu-fp32
    ptdit profile --model DiT-B/2 --resolution 2048 --no-timing --out gflops_only.json
"""


def cmd_profile(args):
    from evaluation.efficiency.profile import profile_point, run_isolated, sweep, write_json_atomic

    kwargs = {"device": args.device, "dtype": args.dtype, "infer_batch": args.batch,
              "throughput_batch": args.throughput_batch, "train_batch": args.train_batch,
              "timing": not args.no_timing, "compile": args.compile, "warmup": args.warmup,
              "repeats": args.repeats, "max_seconds": args.max_seconds}
    # Counting only (meta device) allocates nothing, so it needs no process of its own.
    isolate = not args.no_isolate and not args.no_timing
    if args.out_dir:
        points = sweep(args.model, args.resolution, args.out_dir, isolate=isolate, threads=args.threads, **kwargs)
    else:
        if len(args.model) * len(args.resolution) != 1:
            raise ValueError("--out takes one point (one --model, one --resolution); use --out-dir for a sweep")
        point_args = {"model_name": args.model[0], "resolution": args.resolution[0], **kwargs}
        if args.threads and not isolate:
            import torch
            torch.set_num_threads(args.threads)
        point = run_isolated(threads=args.threads, **point_args) if isolate else profile_point(**point_args)
        write_json_atomic(args.out, point)
        points = [point]
    for point in points:
        print(summary_line(point))


def summary_line(point):
    """One readable line per point for the terminal."""
    mode = " compiled" if point.get("compile") else ""
    head = f"{point['model']:22s} {point['resolution']:5d}px {point['device']}/{point['dtype']}{mode} {point['status']:8s}"
    if point["status"] == "invalid" or "gflops" not in point:
        return f"{head} {point.get('message', '')}"
    parts = [f"{point['params'] / 1e6:8.2f}M", f"{point['gflops']:9.2f} GFLOPs"]
    for phase in ("infer", "infer_throughput", "train"):
        if phase in point:
            p = point[phase]
            parts.append(f"{phase}(b{p['batch']}) {p['steps_per_s']:.3g} it/s")
    if "peak_mem_mb" in point:
        parts.append(f"peak {point['peak_mem_mb']:.0f} MB")
    tail = f" {point['message']}" if point.get("message") else ""
    return f"{head} {'  '.join(parts)}{tail}"


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "profile", help="params, GFLOPs, inference/training steps/s and peak memory of models at resolutions")
    parser.add_argument("--model", nargs="+", required=True, help="registered model name(s), e.g. PT-DiT/B-Class")
    parser.add_argument("--resolution", nargs="+", type=int, required=True, help="image size(s) in pixels (latent = px/8)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32", help="bf16 = autocast mixed precision")
    parser.add_argument("--batch", type=int, default=1, help="inference batch for latency (default 1)")
    parser.add_argument("--throughput-batch", type=int, default=None, help="inference batch for throughput")
    parser.add_argument("--train-batch", type=int, default=None, help="training batch (forward+backward+AdamW)")
    parser.add_argument("--no-timing", action="store_true", help="params and GFLOPs only (meta device, instant)")
    parser.add_argument("--compile", action="store_true", help="time torch.compile(model)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls before timing")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls (median and spread reported)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="stop repeating after this much timed work")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in the profiling process")
    parser.add_argument("--no-isolate", action="store_true",
                        help="profile in this process (CPU peak memory then includes earlier points)")
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", help="JSON file of the one point")
    out.add_argument("--out-dir", help="folder for one JSON per point (MODEL_RESOLUTION.json, '/' -> '_'; "
                          "MODEL_RESOLUTION-compiled.json with --compile)")
    parser.set_defaults(func=cmd_profile)
    return parser

