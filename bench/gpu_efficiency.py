"""GPU efficiency of DiT, DAM and PT-DiT (S and B sizes) at 256 / 512 / 1024 px in bf16: training and
inference steps/s, peak memory and MFU, as one short table (issue 3). Needs only torch (and numpy
through the zoo): run from the checkout with PYTHONPATH=. (bench/gpu_efficiency.sh does).

MFU = achieved FLOP/s / the card's bf16 matmul rate measured here (a large square matmul), with
achieved FLOP/s = 2 x multiply-adds (our GFLOPs counter, DiT convention) x batch x steps/s, and a
training step counted as 3 forward passes (forward + backward, the usual 1:2 rule).

Training batches shrink with resolution (32 / 8 / 2 at 256 / 512 / 1024 px: the same tokens per
batch), so 1024 px full attention fits one card. A point that does not fit is printed as OOM.

    PYTHONPATH=. python bench/gpu_efficiency.py --out docs/measurements/gpu_efficiency.md
    PYTHONPATH=. python bench/gpu_efficiency.py --smoke        # CPU, tiny models: checks the script
"""

import argparse
import json
import os
import time

import torch

from evaluation.efficiency.profile import profile_point

MODELS = ["DiT-S/2", "DAM-S/2-n64", "PT-DiT/S-Class", "DiT-B/2", "DAM-B/2-n64", "PT-DiT/B-Class"]
RESOLUTIONS = [256, 512, 1024]
TOKENS_PER_TRAIN_BATCH = 32 * 256          # batch 32 at 256 px (the paper's speed claim)
SMOKE = {"models": ["DiT-S/2", "DAM-S/2-n64", "PT-DiT/S-Class"], "resolutions": [128],
         "overrides": {"depth": 1, "hidden_size": 64, "num_heads": 2}}


def matmul_peak_tflops(device, dtype, n=8192, repeats=20):
    """Measured dense bf16 matmul rate of this device (TFLOP/s), the denominator of MFU."""
    if device == "cpu":
        n, repeats = 512, 3
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    begin = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * n ** 3 * repeats / (time.perf_counter() - begin) / 1e12


def train_batch(resolution):
    return max(1, TOKENS_PER_TRAIN_BATCH // (resolution // 16) ** 2)


def mfu(point, phase, peak_tflops, passes):
    if phase not in point:
        return None
    stats = point[phase]
    achieved = 2 * point["gflops"] * 1e9 * passes * stats["batch"] * stats["steps_per_s"]
    return achieved / (peak_tflops * 1e12)


def row(point, peak):
    if point["status"] not in ("ok", "oom"):
        return {"model": point["model"], "px": point["resolution"], "status": point["status"]}
    get = lambda phase, key: point.get(phase, {}).get(key)  # noqa: E731
    return {"model": point["model"], "px": point["resolution"], "status": point["status"],
            "gflops": point["gflops"], "infer_b1": get("infer", "steps_per_s"),
            "infer_tput": get("infer_throughput", "samples_per_s"), "train_b": get("train", "batch"),
            "train": get("train", "steps_per_s"), "mem_gb": point.get("peak_mem_mb", 0) / 1024,
            "mfu_infer": mfu(point, "infer_throughput", peak, 1), "mfu_train": mfu(point, "train", peak, 3)}


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def table(rows, peak, device_name):
    lines = [f"device: {device_name}, bf16 matmul peak (measured) {peak:.1f} TFLOP/s", "",
             "| model | px | GFLOPs | infer it/s (b1) | infer img/s (big batch) | train b | train it/s | "
             "peak mem GB | MFU infer | MFU train | status |", "|" + "---|" * 11]
    for r in rows:
        lines.append(f"| {r['model']} | {r['px']} | {fmt(r.get('gflops'), '.1f')} | {fmt(r.get('infer_b1'), '.2f')} | "
                     f"{fmt(r.get('infer_tput'), '.1f')} | {fmt(r.get('train_b'), 'd')} | {fmt(r.get('train'), '.2f')} | "
                     f"{fmt(r.get('mem_gb'), '.2f')} | {fmt(r.get('mfu_infer'), '.1%')} | "
                     f"{fmt(r.get('mfu_train'), '.1%')} | {r['status']} |")
    return "\n".join(lines)


def ratios(rows):
    """Wall-clock ratios the paper claims, from this run: S-Class vs DiT-S at 256, B at 1024."""
    by = {(r["model"], r["px"]): r for r in rows}
    out = []
    for base, cand, px, paper in (("DiT-S/2", "PT-DiT/S-Class", 256, "train x1.19, infer x1.37"),
                                  ("DiT-B/2", "PT-DiT/B-Class", 1024, "GFLOPs x2.4")):
        b, c = by.get((base, px)), by.get((cand, px))
        if not b or not c or b.get("train") is None or c.get("train") is None:
            continue
        out.append(f"{cand} over {base} at {px} px: train x{c['train'] / b['train']:.2f}, infer(b1) "
                   f"x{c['infer_b1'] / b['infer_b1']:.2f}, GFLOPs x{b['gflops'] / c['gflops']:.2f} "
                   f"(paper: {paper})")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, fp32, tiny models: checks the script runs")
    parser.add_argument("--compile", action="store_true", help="time torch.compile(model)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", help="also write the table (markdown) and the points (JSON beside it)")
    args = parser.parse_args()

    device, dtype = ("cpu", "fp32") if args.smoke else ("cuda", "bf16")
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on a GPU machine, or pass --smoke for a CPU check")
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    models = SMOKE["models"] if args.smoke else MODELS
    resolutions = SMOKE["resolutions"] if args.smoke else RESOLUTIONS
    overrides = SMOKE["overrides"] if args.smoke else None
    peak = matmul_peak_tflops(device, torch.float32 if args.smoke else torch.bfloat16)
    points, rows = [], []
    for resolution in resolutions:
        for model in models:
            point = profile_point(model, resolution, device=device, dtype=dtype, infer_batch=1,
                                  throughput_batch=2 if args.smoke else 32, train_batch=2 if args.smoke else
                                  train_batch(resolution), compile=args.compile, warmup=1 if args.smoke else 3,
                                  repeats=2 if args.smoke else args.repeats, max_seconds=10, overrides=overrides)
            points.append(point)
            rows.append(row(point, peak))
            print(f"{model:16s} {resolution:5d}px {point['status']}", flush=True)
    device_name = points[0].get("device_name", device) if points else device
    report = "\n".join([table(rows, peak, device_name), "", *ratios(rows)])
    print("\n" + report)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(f"# GPU efficiency, {time.strftime('%Y-%m-%d')}, torch {torch.__version__}\n\n{report}\n")
        with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
            json.dump({"peak_tflops": peak, "points": points}, f, indent=2)


if __name__ == "__main__":
    main()
