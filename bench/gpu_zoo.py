"""GPU check of the model zoo: every family runs on CUDA in fp32 and bf16 autocast, agrees with the
CPU fp32 output, keeps batch/timestep consistency, and how long one forward takes.

    PYTHONPATH=. python3 bench/gpu_zoo.py            # on a GPU machine, ~1 minute
    PYTHONPATH=. python3 bench/gpu_zoo.py --smoke    # CPU, tiny models (used by the tests)
"""

import argparse
import time

import torch

import ptdit

MODELS = ["DiT-XL/2", "SiT-XL/2", "DAM-S/2-n64", "Agent-DiT-S/2", "PT-DiT/S-Class", "PT-DiT/B-Class",
          "PT-DiT/L-Class", "PT-DiT/B-Class-released"]
TINY = dict(depth=2, hidden_size=64, num_heads=4)


def randomized(name, device, **overrides):
    torch.manual_seed(0)
    model = ptdit.create_model(name, **overrides)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    return model.to(device).eval()


def time_forward(model, inputs, device, repeats=10):
    with torch.no_grad():
        for _ in range(3):
            model(*inputs)
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            model(*inputs)
        if device == "cuda":
            torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats * 1e3


def check(name, device, overrides):
    cpu = randomized(name, "cpu", **overrides)
    model = randomized(name, device, **overrides)
    x = torch.randn(4, *cpu.config.input_shape)
    t = torch.tensor([1, 250, 500, 999]) if not name.startswith(("SiT", "DAM")) else torch.tensor([0.1, 0.4, 0.7, 0.95])
    y = torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        ref = cpu(x, t, y)
        out32 = model(x.to(device), t.to(device), y.to(device)).float().cpu()
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
            out16 = model(x.to(device), t.to(device), y.to(device)).float().cpu()
        alone = torch.cat([model(x[i:i + 1].to(device), t[i:i + 1].to(device), y[i:i + 1].to(device)).float().cpu()
                           for i in range(4)])
    rel = lambda a: ((a - ref).norm() / ref.norm()).item()  # noqa: E731
    ms = time_forward(model, (x.to(device), t.to(device), y.to(device)), device)
    return rel(out32), rel(out16), rel(alone), ms


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny models on the CPU")
    args = parser.parse_args()
    device = "cpu" if args.smoke or not torch.cuda.is_available() else "cuda"
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False   # compare fp32 against the CPU in true fp32
        torch.backends.cudnn.allow_tf32 = False
        print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}")
    overrides = TINY if args.smoke else {}
    print(f"{'model':26s} {'fp32 rel.err':>12s} {'bf16 rel.err':>12s} {'batch vs alone':>14s} {'ms/fwd (b=4)':>12s}")
    for name in MODELS:
        e32, e16, ealone, ms = check(name, device, overrides)
        print(f"{name:26s} {e32:12.2e} {e16:12.2e} {ealone:14.2e} {ms:12.2f}")


if __name__ == "__main__":
    main()
