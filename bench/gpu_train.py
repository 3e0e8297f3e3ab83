"""GPU training and sampling throughput (issue 4), one card, < 5 minutes, printing a short table:
DiT-XL/2 and PT-DiT/L-Class at 256 px (4x32x32 latents), bf16 autocast, DiT's DDPM objective,
batch 32, AdamW; training steps/s, images/s and MFU (model FLOPs = 3 x forward, over the card's
measured bf16 matmul rate); sampling images/s for 250 respaced DDPM steps (timed over a few steps
at batch 64 and scaled to 250). Anchor: fast-DiT reached 0.84 steps/s at batch 128 for DiT-XL/2 on
an A100 (~24 % MFU).

    PYTHONPATH=. python3 bench/gpu_train.py            # on the GPU machine
    PYTHONPATH=. python3 bench/gpu_train.py --smoke    # CPU, tiny models (tests)
"""

import argparse
import os
import sys
import time

import torch

import ptdit
from evaluation.efficiency.flops import count_flops
from ptdit.diffusion import create_diffusion

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_efficiency import matmul_peak_tflops  # noqa: E402

MODELS = ["DiT-XL/2", "PT-DiT/L-Class"]
TINY = {"depth": 1, "hidden_size": 64, "num_heads": 2}


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, warmup, repeats):
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeats


def train_rate(model, diffusion, batch, device, dtype, warmup, repeats):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0)
    x = torch.randn(batch, *model.config.input_shape, device=device)
    y = torch.randint(0, model.config.num_classes, (batch,), device=device)

    def step():
        t = torch.randint(0, diffusion.num_timesteps, (batch,), device=device)
        with torch.autocast(device_type=device, dtype=dtype, enabled=device == "cuda"):
            loss = diffusion.training_losses(model, x, t, dict(y=y))["loss"].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return 1.0 / timed(step, device, warmup, repeats)


def sample_rate(model, batch, device, dtype, steps_timed):
    """Images/s of a 250-step respaced DDPM run, from the time of `steps_timed` of its steps."""
    diffusion = create_diffusion("250")
    x = torch.randn(batch, *model.config.input_shape, device=device)
    y = torch.randint(0, model.config.num_classes, (batch,), device=device)

    def one_step():
        t = torch.full((batch,), 125, device=device, dtype=torch.long)
        with torch.no_grad(), torch.autocast(device_type=device, dtype=dtype, enabled=device == "cuda"):
            diffusion.p_sample(model, x, t, clip_denoised=False, model_kwargs=dict(y=y))
    per_step = timed(one_step, device, 2, steps_timed)
    return batch / (250 * per_step)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    device = "cpu" if args.smoke or not torch.cuda.is_available() else "cuda"
    dtype = torch.bfloat16
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}")
    overrides = TINY if args.smoke else {}
    batch = 2 if args.smoke else args.batch
    peak = matmul_peak_tflops(device, dtype if device == "cuda" else torch.float32)
    print(f"measured matmul peak: {peak:.1f} TFLOP/s")
    print(f"{'model':16s} {'GFLOPs':>8s} {'train it/s':>10s} {'img/s':>8s} {'MFU':>6s} {'sample img/s (250 steps)':>25s}")
    for name in MODELS:
        with torch.device("meta"):
            gflops = count_flops(ptdit.create_model(name, **overrides)) / 1e9
        model = ptdit.create_model(name, **overrides).to(device)
        rate = train_rate(model.train(), create_diffusion(""), batch, device, dtype, 2 if args.smoke else 5,
                          2 if args.smoke else 20)
        mfu = 3 * 2 * gflops * 1e9 * batch * rate / (peak * 1e12)
        images = sample_rate(model.eval(), 2 if args.smoke else 64, device, dtype, 2 if args.smoke else 10)
        print(f"{name:16s} {gflops:8.1f} {rate:10.2f} {rate * batch:8.1f} {mfu:6.1%} {images:25.2f}")
        del model
        if device == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
