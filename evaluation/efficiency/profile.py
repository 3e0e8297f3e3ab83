"""Efficiency of one model at one resolution on one device: params, GFLOPs, inference and training
steps/s, peak memory. One JSON per point.

    point = profile_point("PT-DiT/B-Class", 512, device="cpu", dtype="fp32")
    write_json_atomic("results/efficiency/cpu-fp32/PT-DiT_B-Class_512.json", point)

A point never raises for a resolution the model cannot take (status "invalid") or a batch that does
not fit (status "oom"): a sweep records it and carries on. An unknown device is the caller's
mistake and raises ValueError.

Timing: warm-up calls first (allocator, oneDNN/cuBLAS heuristics, torch.compile), then repeated
timed calls; the median is reported with its spread (quartiles, min, max). On CUDA each call is
timed with CUDA events after a synchronize, so asynchronous launches are not mistaken for work.
On the CPU the peak memory is the peak RSS of a fresh process per point (run_isolated), so one
point's allocations never inflate the next one's. That process keeps freed memory mapped
(cpu_allocator.py), so the timed steps pay no page faults, as on a GPU's caching allocator.
"""

import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

import torch
import torch.nn.functional as F

from evaluation.efficiency.cpu_allocator import allocator_in_use, environment_for
from evaluation.efficiency.point_files import point_filename
from ptdit.atomic import atomic_json

DEVICES = ("cpu", "cuda")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
VAE_FACTOR = 8          # SD-VAE: 8x downsampling, so 256 px -> 32x32 latents


# --- inputs ---------------------------------------------------------------------------------------
def latent_size(resolution):
    """Pixel resolution -> latent input_size of the zoo (px / 8)."""
    if resolution % VAE_FACTOR:
        raise ValueError(f"resolution {resolution} px is not a multiple of the VAE factor {VAE_FACTOR}")
    return resolution // VAE_FACTOR


def check_device(device):
    if device not in DEVICES:
        raise ValueError(f"unknown device '{device}'; choose one of {DEVICES}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch.cuda.is_available() is False on this machine")


def check_dtype(dtype):
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype '{dtype}'; choose one of {tuple(DTYPES)}")


def make_inputs(model, batch, device):
    """Random inputs of one forward call. A model may define example_inputs(batch, device) (the text
    models do); otherwise the class-conditional (x, t, y) of DiT."""
    if hasattr(model, "example_inputs"):
        return model.example_inputs(batch, device)
    x = torch.randn(batch, *model.config.input_shape, device=device)
    t = torch.randint(0, 1000, (batch,), device=device).float()
    y = torch.randint(0, model.config.num_classes, (batch,), device=device)
    return x, t, y


def build(model_name, resolution, device="meta", overrides=None):
    """A zoo model for `resolution` px (overrides: other config fields, e.g. a tiny depth for
    tests); ValueError if the model cannot take it."""
    from ptdit import create_model
    with torch.device(device):
        return create_model(model_name, input_size=latent_size(resolution), **(overrides or {}))


def num_tokens(model):
    f, h, w = model.config.grid
    return f * h * w


# --- timing ---------------------------------------------------------------------------------------
def synchronize(device):
    if device == "cuda":
        torch.cuda.synchronize()


def time_calls(fn, device, warmup=1, repeats=5, max_seconds=60.0):
    """Seconds per call of fn(): `warmup` untimed calls, then up to `repeats` timed ones (at least
    two, fewer than `repeats` once `max_seconds` of timed calls have passed: slow CPU points)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times, spent = [], 0.0
    while len(times) < repeats and (len(times) < 2 or spent < max_seconds):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            seconds = start.elapsed_time(end) / 1e3
        else:
            begin = time.perf_counter()
            fn()
            seconds = time.perf_counter() - begin
        times.append(seconds)
        spent += seconds
    return times


def summarize(times, batch):
    """Median seconds per call with its spread; steps/s is calls per second (the paper's unit)."""
    quartiles = statistics.quantiles(times, n=4, method="inclusive") if len(times) > 1 else [times[0]] * 3
    median = statistics.median(times)
    return {"batch": batch, "n": len(times), "median_s": median, "q1_s": quartiles[0],
            "q3_s": quartiles[2], "min_s": min(times), "max_s": max(times),
            "steps_per_s": 1.0 / median, "samples_per_s": batch / median}


def autocast(device, dtype):
    """bf16 runs under autocast (fp32 weights, bf16 matmuls): the usual mixed-precision recipe."""
    return torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=dtype == "bf16")


def inference_step(model, batch, device, dtype):
    """A closure running one denoiser forward pass at `batch` (eval mode, no grad)."""
    model.eval()
    inputs = make_inputs(model, batch, device)

    @torch.no_grad()
    def step():
        with autocast(device, dtype):
            model(*inputs)
    return step


def training_step(model, batch, device, dtype):
    """A closure running forward + backward + AdamW step; loss = MSE of the output against a random
    target (the cost of a real diffusion loss is the same up to a few elementwise ops)."""
    model.train()
    inputs = make_inputs(model, batch, device)
    # The target's shape comes from the eager module: through torch.compile this no-grad call would
    # compile (and, with CUDA graphs, record) a second graph that the timed steps never use.
    eager = getattr(model, "_orig_mod", model)
    with torch.no_grad(), autocast(device, dtype):
        target = torch.randn_like(eager(*inputs).float())
    # fused on CUDA, as ptdit/train.py trains: one kernel for the whole update, not a few per tensor
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4,
                                  fused=str(device).startswith("cuda"))

    def step():
        with autocast(device, dtype):
            loss = F.mse_loss(model(*inputs).float(), target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def time_inference(model, batch, device, dtype, **timing):
    return summarize(time_calls(inference_step(model, batch, device, dtype), device, **timing), batch)


def time_training(model, batch, device, dtype, **timing):
    return summarize(time_calls(training_step(model, batch, device, dtype), device, **timing), batch)


# --- memory and environment -----------------------------------------------------------------------
def peak_rss_mb():
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if platform.system() == "Darwin" else peak / 2**10


def device_name(device):
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_capability():
    """The instruction set torch's CPU kernels dispatch to (AVX2, AVX512, AMX...): two machines with
    the same 'model name' (a VM may only say "AMD EPYC") time attention and matmuls differently by it."""
    return torch.backends.cpu.get_cpu_capability()


def environment(device):
    return {"device_name": device_name(device), "cpu_capability": cpu_capability(), "torch_version": torch.__version__,
            "cuda_version": torch.version.cuda, "host": platform.node(),
            "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "mkl_num_threads": os.environ.get("MKL_NUM_THREADS"), "cpu_count": os.cpu_count(),
            "cpu_allocator": allocator_in_use(),
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def is_oom(err):
    if isinstance(err, torch.OutOfMemoryError):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


# --- one point ------------------------------------------------------------------------------------
def profile_point(model_name, resolution, device="cpu", dtype="fp32", infer_batch=1, throughput_batch=None,
                  train_batch=None, timing=True, compile=False, warmup=1, repeats=5, max_seconds=60.0,
                  overrides=None):
    """Everything about one (model, resolution, device, dtype) point, as a JSON-ready dict.

    status: "ok", "invalid" (the model cannot take this resolution), "oom" (a batch did not fit;
    the phases measured before it are kept) or "counted" (timing=False: params and GFLOPs only).
    """
    from evaluation.efficiency.flop_breakdown import count_flops_by_op, split_attention
    from evaluation.efficiency.flops import count_params

    check_device(device)
    check_dtype(dtype)
    point = {"model": model_name, "resolution": resolution, "device": device, "dtype": dtype,
             "compile": compile, **({"overrides": overrides} if overrides else {}), **environment(device)}
    try:
        meta_model = build(model_name, resolution, overrides=overrides)
    except ValueError as err:
        return {**point, "status": "invalid", "message": str(err)}
    point.update(input_size=latent_size(resolution), tokens=num_tokens(meta_model),
                 params=count_params(meta_model))
    if hasattr(meta_model.config, "window"):          # PT-DiT: windows = compression ratio
        point["window"] = list(meta_model.config.window)
    attention, other = split_attention(count_flops_by_op(meta_model, make_inputs(meta_model, 1, "meta")))
    point["gflops"] = (attention + other) / 1e9
    point["gflops_no_attention"] = other / 1e9      # the convention of the paper's Fig. 2 (flop_breakdown.py)
    del meta_model
    if not timing:
        return {**point, "status": "counted", "message": ""}

    point.update(status="ok", message="", rss_before_model_mb=peak_rss_mb())
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    timing_args = {"warmup": warmup, "repeats": repeats, "max_seconds": max_seconds}
    phases = [("infer", infer_batch, time_inference), ("infer_throughput", throughput_batch, time_inference),
              ("train", train_batch, time_training)]
    current = "build"
    try:
        model = build(model_name, resolution, device, overrides)
        runner = torch.compile(model) if compile else model
        for phase, batch, measure in phases:
            if not batch:
                continue
            current = phase
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            point[phase] = measure(runner, batch, device, dtype, **timing_args)
            if device == "cuda":
                point[phase]["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
    except Exception as err:  # noqa: BLE001 - only OOM is recorded, anything else is a real bug
        if not is_oom(err):
            raise
        point.update(status="oom", message=f"{current} phase: {str(err).splitlines()[0]}")
        model = runner = None          # drop the references so that empty_cache can free the memory
        if device == "cuda":
            torch.cuda.empty_cache()
    peaks = [point[p]["peak_mem_mb"] for p, _, _ in phases if "peak_mem_mb" in point.get(p, {})]
    if device == "cuda":
        point["peak_mem_mb"] = max(peaks) if peaks else None
        point["peak_mem_kind"] = "cuda max_memory_allocated"
    else:
        point["peak_mem_mb"] = peak_rss_mb()
        point["peak_mem_kind"] = "peak RSS of the profiling process"
    return point


# --- isolation and output -------------------------------------------------------------------------
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _child_main(path):
    """Entry point of the fresh process: kwargs in the JSON file at `path`, the point written back."""
    with open(path) as f:
        request = json.load(f)
    threads = request.pop("threads", None)
    if threads:
        torch.set_num_threads(threads)
    write_json_atomic(path, {**profile_point(**request), "isolated": True})


def run_isolated(threads=None, **kwargs):
    """profile_point in a fresh Python process (nothing inherited from this one, so its peak RSS is
    the point's own). A child killed by SIGKILL (the out-of-memory killer) is recorded as status
    "oom"; any other failure raises here with the child's error."""
    check_device(kwargs.get("device", "cpu"))
    check_dtype(kwargs.get("dtype", "fp32"))
    handle, path = tempfile.mkstemp(prefix="ptdit-profile-", suffix=".json")
    with os.fdopen(handle, "w") as f:
        json.dump({**kwargs, "threads": threads}, f)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")]))}
    if kwargs.get("device", "cpu") == "cpu":
        env = environment_for("retain", env)      # no page faults in the timed steps (cpu_allocator.py)
    code = "import sys; from evaluation.efficiency.profile import _child_main; _child_main(sys.argv[1])"
    try:
        done = subprocess.run([sys.executable, "-c", code, path], env=env, capture_output=True, text=True)
        if done.returncode == 0:
            with open(path) as f:
                return json.load(f)
    finally:
        os.unlink(path)
    if done.returncode == -signal.SIGKILL:
        return {"model": kwargs.get("model_name"), "resolution": kwargs.get("resolution"),
                "device": kwargs.get("device", "cpu"), "dtype": kwargs.get("dtype", "fp32"),
                "compile": kwargs.get("compile", False), **environment("cpu"), "status": "oom",
                "message": "profiling process killed by SIGKILL, most likely by the out-of-memory killer"}
    raise RuntimeError(f"profiling {kwargs.get('model_name')} at {kwargs.get('resolution')} px failed "
                       f"(exit code {done.returncode}):\n{done.stderr[-3000:]}")


def write_json_atomic(path, data):
    """One point's JSON, written atomically (ptdit/atomic.py)."""
    atomic_json(path, data)


def sweep(models, resolutions, out_dir, isolate=True, threads=None, **kwargs):
    """Profile every (model, resolution); one JSON each in out_dir (compiled ones with their own
    suffix, point_files.py). Impossible and OOM points are recorded, not raised. Returns the points."""
    if threads and not isolate:
        torch.set_num_threads(threads)
    points = []
    for model_name in models:
        for resolution in resolutions:
            args = {"model_name": model_name, "resolution": resolution, **kwargs}
            point = run_isolated(threads=threads, **args) if isolate else profile_point(**args)
            name = point_filename(model_name, resolution, kwargs.get("compile"))
            write_json_atomic(os.path.join(out_dir, name), point)
            points.append(point)
    return points
