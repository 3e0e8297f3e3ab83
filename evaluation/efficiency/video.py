"""Cost of the three video attentions against frame count (the shape of the paper's Fig. 9): GFLOPs
(DiT convention, evaluation/efficiency/flops.py), peak memory where it can be measured, and a counted estimate
of activation memory where it cannot. One JSON per (model, resolution, frames) point, read by
evaluation/efficiency/table.py into results/table_efficiency.csv (column `frames`).

Frames are video frames; latent frames = frames / temporal_compression: 1 for the image VAE applied
frame by frame (the default), 4 for a causal 3-D VAE (Open-Sora-Plan's, PT-DiT's released inference),
whose extra first latent frame (1 + (F - 1) / 4) is left out here so that pf = 4 windows tile.

What each memory column is:
- peak_mem_mb: MEASURED, CUDA only (torch.cuda.max_memory_allocated over inference at batch 1 and
  training steps with AdamW, evaluation/efficiency/profile.py). Empty on the CPU: the profiled peak RSS of a
  process at 16-240 frames would take hours and hundreds of GB for full 3-D attention.
- act_mem_mb_est: an ESTIMATE, counted not measured: bytes of the tensors autograd saves for backward
  in one training forward at batch 1, fp32, with eager attention (the softmax matrices are kept),
  found by running the model on the meta device; parameters excluded, shared storages counted once.
- act_mem_fused_mb_est: the same count with a fused attention kernel (flash / memory-efficient SDPA
  keep q, k, v, the output and a float32 log-sum-exp per query, and recompute the softmax).

    python -m evaluation.efficiency.video count --model Full3D-XL/2-Video PT-DiT/XL-Video \
        --resolution 256 512 --frames 16 32 64 128 240 --out-dir results/efficiency/video-cpu-fp32
    python -m evaluation.efficiency.video point --model PT-DiT/XL-Video --resolution 256 --frames 16 \
        --device cuda --dtype bf16 --train-batch 1 --out point.json
"""

import argparse
import os

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from evaluation.efficiency.flop_breakdown import split_attention
from evaluation.efficiency.point_files import model_slug
from evaluation.efficiency.profile import environment, latent_size, make_inputs, profile_point, write_json_atomic

ATTENTIONS = {"3-D full": "Full3D-{size}/2-Video", "2-D + 1-D": "Factorized-{size}/2-Video",
              "PT-DiT": "PT-DiT/{size}-Video"}
CPU_MEMORY_NOTE = ("peak memory not measured on the CPU (hours and hundreds of GB at these sizes); "
                   "measured on CUDA by the video cuda points or bench/gpu_video.py; act_mem_*_est are counted estimates")


def video_point_filename(model_name, resolution, frames):
    """'PT-DiT/XL-Video', 256, 16 -> 'PT-DiT_XL-Video_256x16.json' (image points: MODEL_PX.json)."""
    return f"{model_slug(model_name)}_{resolution}x{frames}.json"


def latent_frames(frames, temporal_compression=1):
    if frames % temporal_compression:
        raise ValueError(f"{frames} frames do not divide by the VAE's temporal compression {temporal_compression}")
    return frames // temporal_compression


def build(model_name, resolution, frames, temporal_compression=1, device="meta", overrides=None):
    from ptdit import create_model

    with torch.device(device):
        return create_model(model_name, input_size=latent_size(resolution),
                            num_frames=latent_frames(frames, temporal_compression), **(overrides or {}))


def nbytes(t):
    return t.numel() * t.element_size()


class SavedTensors:
    """Bytes of the tensors autograd saves for backward, each storage once, parameters left out."""

    def __init__(self, model):
        self.seen = {p.untyped_storage()._cdata for p in list(model.parameters()) + list(model.buffers())}
        self.kept = []        # counted tensors stay alive: a freed storage's address could be reused
        self.total = 0

    def add(self, t):
        key = t.untyped_storage()._cdata
        if key not in self.seen:
            self.seen.add(key)
            self.kept.append(t)
            self.total += t.untyped_storage().nbytes()

    def hooks(self):
        def pack(t):
            self.add(t)
            return t
        return torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)


class FusedAttention(TorchFunctionMode):
    """Runs SDPA without recording it and counts what a fused kernel saves for its backward instead
    (q, k, v, output, float32 log-sum-exp per query and head); the output re-enters the graph."""

    def __init__(self, saved):
        super().__init__()
        self.saved = saved

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.scaled_dot_product_attention:
            return func(*args, **kwargs)
        q, k, v = args[:3]
        with torch.no_grad():
            out = func(*args, **kwargs)
        for t in (q, k, v, out):
            self.saved.add(t)
        self.saved.total += q.shape[0] * q.shape[1] * q.shape[2] * 4
        return out.requires_grad_()


def count_video_point(model_name, resolution, frames, temporal_compression=1, overrides=None):
    """Params, GFLOPs and the two activation-memory estimates of one point, on the meta device."""
    from evaluation.efficiency.flops import count_params

    point = {"model": model_name, "resolution": resolution, "frames": frames,
             "temporal_compression": temporal_compression, "device": "cpu", "dtype": "fp32",
             **({"overrides": overrides} if overrides else {}), **environment("cpu")}
    try:
        model = build(model_name, resolution, frames, temporal_compression, overrides=overrides)
    except ValueError as err:
        return {**point, "status": "invalid", "message": str(err)}
    f, h, w = model.config.grid
    point.update(latent_frames=model.config.num_frames, input_size=latent_size(resolution), tokens=f * h * w,
                 params=count_params(model))
    if hasattr(model.config, "window"):
        point["window"] = list(model.config.window)
    inputs = make_inputs(model, 1, "meta")
    model.train()
    eager = SavedTensors(model)
    # One training-mode forward gives the GFLOPs (DiT convention: forward, MATH backend so that the
    # attention matmuls are seen) and the saved tensors of eager attention; dropout-free models, so
    # train mode computes what eval mode does (the label drop only swaps an embedding row).
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter, eager.hooks():
        model(*inputs)
    by_op = {str(op): n / 2 for op, n in counter.get_flop_counts()["Global"].items()}
    attention, other = split_attention(by_op)
    fused = SavedTensors(model)
    with fused.hooks(), FusedAttention(fused):
        model(*inputs)
    point.update(gflops=(attention + other) / 1e9, gflops_no_attention=other / 1e9,
                 act_mem_mb_est=eager.total / 2**20, act_mem_fused_mb_est=fused.total / 2**20,
                 status="counted", message=CPU_MEMORY_NOTE)
    return point


def measure_video_point(model_name, resolution, frames, temporal_compression=1, device="cuda", dtype="bf16",
                        train_batch=1, overrides=None, **timing):
    """profile_point (evaluation/efficiency/profile.py) on a video model: measured steps/s and, on CUDA, peak
    memory; OOM is recorded as status "oom", the phases measured before it kept."""
    num_frames = latent_frames(frames, temporal_compression)
    point = profile_point(model_name, resolution, device=device, dtype=dtype, infer_batch=1, train_batch=train_batch,
                          overrides={"num_frames": num_frames, **(overrides or {})}, **timing)
    return {**point, "frames": frames, "latent_frames": num_frames, "temporal_compression": temporal_compression}


def count_sweep(models, resolutions, frames, out_dir, temporal_compression=1, overrides=None):
    """One counted JSON per (model, resolution, frames) in out_dir; returns the points."""
    points = []
    grid = [(m, r, f) for m in models for r in resolutions for f in frames]
    for model_name, resolution, n in tqdm(grid, desc="video GFLOPs and activation counts", leave=False):
        point = count_video_point(model_name, resolution, n, temporal_compression, overrides)
        write_json_atomic(os.path.join(out_dir, video_point_filename(model_name, resolution, n)), point)
        points.append(point)
    return points


def summary_line(point):
    head = f"{point['model']:24s} {point['resolution']:4d}px x {point['frames']:3d} frames {point['status']:8s}"
    if "gflops" not in point:
        return f"{head} {point.get('message', '')}"
    parts = [f"{point['tokens']:7d} tokens", f"{point['gflops']:11.1f} GFLOPs"]
    if "act_mem_mb_est" in point:
        parts.append(f"act est {point['act_mem_mb_est']:10.0f} MB eager / {point['act_mem_fused_mb_est']:8.0f} MB fused")
    if point.get("peak_mem_mb") is not None and point["device"] == "cuda":
        parts.append(f"peak {point['peak_mem_mb']:.0f} MB")
    return f"{head} {'  '.join(parts)}"


def main(argv=None):
    parser = argparse.ArgumentParser(description="GFLOPs and memory of video models against frame count")
    parser.add_argument("mode", choices=("count", "point"), help="count: meta-device sweep; point: one measured point")
    parser.add_argument("--model", nargs="+", required=True)
    parser.add_argument("--resolution", nargs="+", type=int, required=True)
    parser.add_argument("--frames", nargs="+", type=int, required=True)
    parser.add_argument("--temporal-compression", type=int, default=1, help="1: image VAE per frame; 4: causal 3-D VAE")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda", help="point mode")
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="bf16", help="point mode")
    parser.add_argument("--train-batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--out-dir", help="count mode: one JSON per point")
    parser.add_argument("--out", help="point mode: the JSON of the point")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.mode == "count":
        if not args.out_dir:
            parser.error("count mode writes one JSON per point: give --out-dir")
        points = count_sweep(args.model, args.resolution, args.frames, args.out_dir, args.temporal_compression)
    else:
        if not args.out or len(args.model) * len(args.resolution) * len(args.frames) != 1:
            parser.error("point mode measures one point: one --model, --resolution, --frames and --out")
        point = measure_video_point(args.model[0], args.resolution[0], args.frames[0], args.temporal_compression,
                                    args.device, args.dtype, args.train_batch, warmup=args.warmup,
                                    repeats=args.repeats, max_seconds=args.max_seconds)
        write_json_atomic(args.out, point)
        points = [point]
    for point in points:
        print(summary_line(point))


if __name__ == "__main__":
    main()
