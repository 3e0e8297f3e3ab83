"""Is PT-DiT as efficient per FLOP as DiT on this CPU? (issue 3, "Performance it must reach")

PT-DiT/B-Class vs DiT-B/2 at 512 px, fp32: wall-time ratio of one inference forward at batch 1 and
of one training step (forward + backward + AdamW) at batch 4, against their GFLOPs ratio. The
requirement: time(PT-DiT) / time(DiT) <= GFLOPs ratio / 0.85, i.e. per-FLOP efficiency >= 0.85 x DiT's.

The two models are timed alternately (DiT, PT-DiT, DiT, ...), so load from other processes on a
shared machine hits both alike; the ratio is the median of the per-pair ratios, and the ratio of
the two fastest calls (the least disturbed ones) is printed beside it. On a loaded machine use
--threads 1: OpenMP threads that wait on each other make 2-thread timings swing by 2-3x.

The script restarts itself with freed memory kept mapped (evaluation/efficiency/cpu_allocator.py):
with glibc's defaults every full-width training step re-faults its large activations, which costs
PT-DiT relatively more system time than DiT and is nothing a GPU's caching allocator pays.
`--allocator system` times with glibc's defaults.

    PYTHONPATH=. python bench/cpu_ratio.py [--threads 2] [--repeats 5] [--profile] [--allocator system]
"""

import argparse
import json
import statistics
import sys
import time

import torch

from evaluation.efficiency.cpu_allocator import CHOICES, allocator_in_use, restart_with
from evaluation.efficiency.flops import model_gflops
from evaluation.efficiency.profile import (build, cpu_capability, device_name, environment, inference_step,
                                           training_step)

REQUIRED = 0.85


def alternate(steps, repeats):
    """Seconds per call of each step, timed in turn; one warm-up call each first."""
    for step in steps:
        step()
    times = [[] for _ in steps]
    for _ in range(repeats):
        for step, out in zip(steps, times):
            begin = time.perf_counter()
            step()
            out.append(time.perf_counter() - begin)
    return times


def compare(baseline_times, candidate_times, gflops_ratio):
    pair_ratios = [c / b for b, c in zip(baseline_times, candidate_times)]
    time_ratio = statistics.median(pair_ratios)
    return {"baseline_median_s": statistics.median(baseline_times),
            "candidate_median_s": statistics.median(candidate_times),
            "time_ratio": time_ratio, "time_ratio_min": min(pair_ratios), "time_ratio_max": max(pair_ratios),
            "fastest_call_ratio": min(candidate_times) / min(baseline_times),
            "baseline_times_s": baseline_times, "candidate_times_s": candidate_times,
            "gflops_ratio": gflops_ratio,
            # per-FLOP efficiency of the candidate relative to the baseline (1.0 = same FLOP/s)
            "efficiency": gflops_ratio / time_ratio, "passes": gflops_ratio / time_ratio >= REQUIRED}


def profile_ops(model, batch, mode, top=15):
    """Self-time per op of one call (torch.profiler), to say where the time goes."""
    step = (inference_step if mode == "infer" else training_step)(model, batch, "cpu", "fp32")
    step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=False) as prof:
        step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="DiT-B/2")
    parser.add_argument("--candidate", default="PT-DiT/B-Class")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--infer-batch", type=int, default=1)
    parser.add_argument("--train-batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--profile", action="store_true", help="print torch.profiler op tables of both models")
    parser.add_argument("--profile-train", action="store_true", help="the same for one training step")
    parser.add_argument("--allocator", choices=CHOICES, default="retain",
                        help="retain: freed memory stays mapped, no page faults (default); system: glibc's defaults")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    restart_with(args.allocator, [sys.executable, *sys.argv])
    print(f"CPU allocator: {allocator_in_use()}; CPU {device_name('cpu')} ({cpu_capability()})", flush=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    size = args.resolution // 8
    gflops = {name: model_gflops(name, input_size=size)[1] for name in (args.baseline, args.candidate)}
    ratio = gflops[args.candidate] / gflops[args.baseline]
    models = [build(name, args.resolution, "cpu") for name in (args.baseline, args.candidate)]
    result = {"baseline": args.baseline, "candidate": args.candidate, "resolution": args.resolution,
              "gflops": gflops, **environment("cpu")}

    steps = [inference_step(m, args.infer_batch, "cpu", "fp32") for m in models]
    base, cand = alternate(steps, args.repeats)
    result["infer"] = {"batch": args.infer_batch, **compare(base, cand, ratio)}
    print_row("inference", result["infer"])
    if not args.skip_train:
        steps = [training_step(m, args.train_batch, "cpu", "fp32") for m in models]
        base, cand = alternate(steps, args.repeats)
        result["train"] = {"batch": args.train_batch, **compare(base, cand, ratio)}
        print_row("training", result["train"])
    for wanted, mode, batch in ((args.profile, "infer", args.infer_batch), (args.profile_train, "train", args.train_batch)):
        if wanted:
            for name, model in zip((args.baseline, args.candidate), models):
                print(f"\n== {name}, {mode} batch {batch}, self CPU time per op ==")
                print(profile_ops(model, batch, mode))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


def print_row(label, r):
    verdict = "PASS" if r["passes"] else "FAIL"
    print(f"{label:9s} batch {r['batch']}: DiT {r['baseline_median_s']:.3f} s, PT-DiT {r['candidate_median_s']:.3f} s, "
          f"time ratio {r['time_ratio']:.3f} (pairs {r['time_ratio_min']:.3f}-{r['time_ratio_max']:.3f}, "
          f"fastest calls {r['fastest_call_ratio']:.3f}), "
          f"GFLOPs ratio {r['gflops_ratio']:.3f}, per-FLOP efficiency {r['efficiency']:.2f} x "
          f"(need >= {REQUIRED}) {verdict}", flush=True)


if __name__ == "__main__":
    main()
