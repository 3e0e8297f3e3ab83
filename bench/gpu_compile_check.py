"""Why PT-DiT trains slower than DiT on a GPU despite fewer FLOPs (docs/measurements/gpu_efficiency_*):
DiT-B/2 vs PT-DiT/B-Class at 512 px, bf16, training batch 8, eager and torch.compile, plus the top
CUDA kernels of one PT-DiT eager training step. One short table; < 4 minutes on one H100/H200.

    PYTHONPATH=. python3 bench/gpu_compile_check.py          # GPU
    PYTHONPATH=. python3 bench/gpu_compile_check.py --smoke  # CPU, tiny models (tests)
"""

import argparse
import time

import torch

from evaluation.efficiency.profile import build, make_inputs

MODELS = ["DiT-B/2", "PT-DiT/B-Class"]


def train_rate(model, inputs, steps, device, dtype):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        with torch.autocast(device, dtype=dtype, enabled=device == "cuda"):
            out = model(*inputs)
        out.float().square().mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start), step


def top_kernels(step, device, rows=12):
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if device == "cuda" else [])
    with torch.profiler.profile(activities=activities) as prof:
        step()
        if device == "cuda":
            torch.cuda.synchronize()
    key = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    device = "cpu" if args.smoke or not torch.cuda.is_available() else "cuda"
    overrides = {"depth": 1, "hidden_size": 64, "num_heads": 2} if args.smoke else None
    px, batch, steps = (256, 2, 2) if args.smoke else (512, 8, 20)
    dtype = torch.bfloat16
    print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}  torch {torch.__version__}")
    print(f"{'model':16s} {'eager it/s':>10s} {'compiled it/s':>13s} {'compile s':>9s}")
    last_step = None
    for name in MODELS:
        model = build(name, px, device, overrides=overrides).train()
        inputs = make_inputs(model, batch, device)
        eager, last_step = train_rate(model, inputs, steps, device, dtype)
        if args.smoke:      # torch.compile on the CPU needs a C compiler and a minute: not in the tests
            print(f"{name:16s} {eager:10.2f} {'-':>13s} {'-':>9s}", flush=True)
            continue
        begin = time.perf_counter()
        compiled, _ = train_rate(torch.compile(model), inputs, steps, device, dtype)
        print(f"{name:16s} {eager:10.2f} {compiled:13.2f} {time.perf_counter() - begin:9.0f}", flush=True)
    print("\nPT-DiT/B-Class eager, one training step, top kernels:")
    print(top_kernels(last_step, device))


if __name__ == "__main__":
    main()
