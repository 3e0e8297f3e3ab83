"""GPU training cost of the three video attentions (issue 8), one card, < 5 minutes: 3-D full attention
(Full3D), 2-D + 1-D factorised (Factorized) and PT-DiT, class-conditional models of one size, at
256x256x16 (latents 4x16x32x32 through the 8x image VAE frame by frame) and at 512 px with 64 and 128
frames. bf16 autocast, PyTorch SDPA (flash / memory-efficient kernels), AdamW, MSE to a random target
(the cost of the diffusion loss up to a few elementwise ops). Per point: training steps/s, the
achieved TFLOP/s (3 x forward multiply-adds x 2, our GFLOPs counter), the peak CUDA memory
(max_memory_allocated, model + AdamW states + activations) and the part of it above the memory held
between steps (activations and workspace). A point that does not fit is recorded as OOM and the sweep
goes on. Needs only torch and numpy from the checkout:

    PYTHONPATH=. python3 bench/gpu_video.py --out docs/measurements/gpu_video.md
    PYTHONPATH=. python3 bench/gpu_video.py --smoke        # CPU, tiny models: checks the script
"""

import argparse
import gc
import os
import time

import torch

import ptdit
from evaluation.efficiency.flops import count_flops
from evaluation.efficiency.profile import is_oom, time_calls, training_step

ATTENTIONS = ("Full3D-{size}/2-Video", "Factorized-{size}/2-Video", "PT-DiT/{size}-Video")
# (pixels, frames, training batch): the rebuttal's 256x256x16, then long clips at 512 px.
POINTS = ((256, 16, 4), (512, 64, 1), (512, 128, 1))
SMOKE_POINTS = ((128, 4, 2), (128, 8, 1))
SMOKE_SHAPE = {"depth": 1, "hidden_size": 64, "num_heads": 2}


def release():
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def gflops(name, overrides):
    with torch.device("meta"):
        return count_flops(ptdit.create_model(name, **overrides)) / 1e9


def measure(name, overrides, batch, device, warmup, repeats, max_seconds):
    """Training steps/s and memory of one point; {"status": "OOM"} when it does not fit."""
    result = {"status": "ok"}
    model = step = None
    try:
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        model = ptdit.create_model(name, **overrides).to(device)
        step = training_step(model, batch, device, "bf16" if device == "cuda" else "fp32")
        step()                                            # AdamW states exist from here on
        if device == "cuda":
            torch.cuda.synchronize()
            result["held_gb"] = torch.cuda.memory_allocated() / 2**30
            torch.cuda.reset_peak_memory_stats()
        times = time_calls(step, device, warmup=warmup, repeats=repeats, max_seconds=max_seconds)
        result["steps_per_s"] = len(times) / sum(times)
        if device == "cuda":
            result["peak_gb"] = torch.cuda.max_memory_allocated() / 2**30
    except Exception as err:  # noqa: BLE001 - only OOM is recorded, anything else is a bug
        if not is_oom(err):
            raise
        result = {"status": "OOM", "message": str(err).splitlines()[0][:200]}
    finally:
        del model, step
        release()
    return result


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def table(rows, device_name, size, precision):
    lines = [f"device: {device_name}, torch {torch.__version__}, size {size}, {precision}, SDPA, AdamW", "",
             "| model | px | frames | tokens | batch | GFLOPs (fwd, b1) | train it/s | TFLOP/s | peak mem GB | "
             "above held GB | status |", "|" + "---|" * 11]
    for r in rows:
        tflops = None if r.get("steps_per_s") is None else 6 * r["gflops"] * r["batch"] * r["steps_per_s"] / 1e3
        above = None if r.get("peak_gb") is None else r["peak_gb"] - r["held_gb"]
        lines.append(f"| {r['model']} | {r['px']} | {r['frames']} | {r['tokens']} | {r['batch']} | "
                     f"{r['gflops']:.1f} | {fmt(r.get('steps_per_s'), '.3f')} | {fmt(tflops, '.1f')} | "
                     f"{fmt(r.get('peak_gb'), '.2f')} | {fmt(above, '.2f')} | {r['status']} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, fp32, tiny models: checks the script runs")
    parser.add_argument("--size", default="B", choices=("S", "B", "XL"), help="model size of all three (default B)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-seconds", type=float, default=15.0, help="stop repeating a point after this long")
    parser.add_argument("--out", help="also write the table (markdown) and the rows (JSON beside it)")
    args = parser.parse_args()
    device = "cpu" if args.smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on a GPU machine, or pass --smoke for a CPU check")
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    points = SMOKE_POINTS if args.smoke else POINTS
    shape = SMOKE_SHAPE if args.smoke else {}
    rows = []
    for px, frames, batch in points:
        for pattern in ATTENTIONS:
            name = pattern.format(size=args.size)
            overrides = {"input_size": px // 8, "num_frames": frames, **shape}
            f, h, w = ptdit.get_spec(name).build_config(**overrides).grid
            begin = time.perf_counter()
            result = measure(name, overrides, batch, device, warmup=1 if args.smoke else 2,
                             repeats=2 if args.smoke else args.repeats, max_seconds=args.max_seconds)
            rows.append({"model": name, "px": px, "frames": frames, "tokens": f * h * w, "batch": batch,
                         "gflops": gflops(name, overrides), **result})
            print(f"{name:22s} {px}px x {frames:3d} frames  {result['status']:4s} "
                  f"{fmt(result.get('steps_per_s'), '.3f')} it/s  {time.perf_counter() - begin:.0f} s", flush=True)
    device_name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    report = table(rows, device_name, "tiny (smoke)" if args.smoke else args.size,
                   "fp32" if args.smoke else "bf16 autocast")
    print("\n" + report)
    if args.out:
        from ptdit.atomic import atomic_json, atomic_text

        atomic_text(args.out, f"# GPU video training cost, {time.strftime('%Y-%m-%d')}\n\n"
                              f"`PYTHONPATH=. python3 bench/gpu_video.py --size {args.size}`\n\n{report}\n")
        atomic_json(os.path.splitext(args.out)[0] + ".json", {"device": device_name, "rows": rows})


if __name__ == "__main__":
    main()
