"""Time the ADM-protocol feature extraction on synthetic 256x256 images (images/s).

Run from the checkout: PYTHONPATH=. python3 bench/gpu_metrics.py [--quick] [--device cuda]
Needs torch and numpy only (not torch-fidelity): the InceptionV3 is evaluation/metrics/inception.py's,
randomly initialised (same architecture and cost as the real weights). Rows:
- inception fp32: the network alone, TF32 off (the protocol's setting);
- inception tf32: the same with TF32 on, for comparison only (not used for reported metrics);
- extract+stats:  evaluation.metrics.extract.extract, i.e. the network plus the streamed float64 statistics
                  (pool and spatial) on the CPU, as evaluate_samples runs it;
- prc 10k x 50k:  precision/recall distances for ADM's sizes (10k reference, 50k samples, 2048-d).
From the images/s an estimate for 50,000 samples is printed. Finishes in well under 5 minutes on one H100.
"""

import argparse
import contextlib
import time

import numpy as np
import torch

from evaluation.metrics.extract import exact_fp32, extract
from evaluation.metrics.inception import InceptionV3, calibrate_random_inception
from evaluation.metrics.precision_recall import precision_recall


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@torch.no_grad()
def time_network(model, images, batch_size, device, repeats, tf32):
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        if tf32:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        with exact_fp32() if not tf32 else contextlib.nullcontext():
            batch = images[:batch_size].to(device)
            model(batch)  # warm-up (cudnn autotune, allocations)
            sync(device)
            start = time.perf_counter()
            for _ in range(repeats):
                model(batch)
            sync(device)
            return repeats * batch_size / (time.perf_counter() - start)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def time_extract(model, images_nhwc, batch_size, device):
    batches = (images_nhwc[i : i + batch_size] for i in range(0, len(images_nhwc), batch_size))
    sync(device)
    start = time.perf_counter()
    extract(model, batches, len(images_nhwc), device, keep_pool=True, keep_logits=True, desc="extract")
    sync(device)
    return len(images_nhwc) / (time.perf_counter() - start)


def time_prc(n_ref, n_samples, device):
    gen = torch.Generator(device=device).manual_seed(0)
    ref = torch.randn(n_ref, 2048, generator=gen, device=device)
    samples = torch.randn(n_samples, 2048, generator=gen, device=device) + 0.1
    sync(device)
    start = time.perf_counter()
    precision_recall(ref, samples, device=device)
    sync(device)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script on a CPU")
    args = parser.parse_args()
    device = args.device
    quick = args.quick
    batch_sizes = [4] if quick else [50, 100, 200, 500]
    repeats = 1 if quick else 10
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"
    print(f"device: {name}, torch {torch.__version__}, synthetic 256x256 uint8 images, random-init InceptionV3")
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True

    torch.manual_seed(0)
    model = calibrate_random_inception(InceptionV3(), n_images=4).to(device).float().eval()
    n_images = max(batch_sizes)
    images = torch.randint(0, 256, (n_images, 3, 256, 256), dtype=torch.uint8)

    rows = []
    for bs in batch_sizes:
        rows.append(("inception fp32", bs, time_network(model, images, bs, device, repeats, tf32=False)))
    if device.startswith("cuda"):
        bs = 200
        rows.append(("inception tf32", bs, time_network(model, images, bs, device, repeats, tf32=True)))
    n_extract = 8 if quick else 5000
    nhwc = np.random.default_rng(0).integers(0, 256, size=(n_extract, 256, 256, 3), dtype=np.uint8)
    bs = 4 if quick else 200
    rows.append((f"extract+stats ({n_extract} img)", bs, time_extract(model, nhwc, bs, device)))

    print(f"\n{'what':<28} {'batch':>6} {'images/s':>10} {'50k images':>11}")
    for what, bs, rate in rows:
        print(f"{what:<28} {bs:>6} {rate:>10.1f} {50_000 / rate / 60:>9.1f} min")
    n_ref, n_samples = (64, 64) if quick else (10_000, 50_000)
    seconds = time_prc(n_ref, n_samples, device)
    print(f"{f'prc {n_ref} ref x {n_samples} samples':<28} {'':>6} {'':>10} {seconds:>9.1f} s")
    if device.startswith("cuda"):
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
