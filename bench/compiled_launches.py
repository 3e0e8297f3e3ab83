"""Does a compiler take PT-DiT under 2x DiT's launches? Kernels per training step, eager and compiled.

Eager PT-DiT/B-Class issues 2.4x DiT-B/2's kernels per forward + backward (bench/pt_dit_launches.py):
five wrapped sub-layers per block (GIIM's proxy self-attention and cross-attention, window attention,
shifted windows, MLP) to DiT's two, each wrapper a LayerNorm, a modulation, a gate and a residual.
docs/measurements/cpu_window_major_2026-12-03.md argued that only a compiler that fuses those
elementwise ops into neighbouring kernels can take the method under 2x. This script measures it on
the CPU with torch.compile's own backend (Inductor, C++ kernels): the same narrow models as
bench/pt_dit_launches.py (hidden 64, 2 heads, depth 12, batch 2, one thread), eager and compiled.

- kernels: what one forward + loss + backward runs, counted with torch.profiler as the top-level
  calls that do work: Inductor's fused C++ kernels, the library calls it keeps (mm, addmm, SDPA) and,
  eager, every aten op that is not a view, an allocation or a composite of other ops. The same count
  for both modes. On a GPU
  each of these is one kernel launch (Inductor emits one Triton kernel where it emits one C++ kernel
  here; the fusion decisions are the scheduler's, shared by both backends).
- time: seconds per training step (forward, backward, AdamW), the models timed in turn, ratio to
  DiT-B/2 the median of per-pair ratios. Eager at 1 thread is the dispatch-bound proxy that predicted
  the H200's eager ratio; compiled it shows what is left once the wrappers are fused. A 2-core VM
  drifts 20-40 % between runs: compare ratios from several runs, not one.

    PYTHONPATH=. python bench/compiled_launches.py [--repeats 7] [--input-size 32]   # ~10 min (compiling)
    PYTHONPATH=. python bench/compiled_launches.py --blocks    # block 0 alone, kernels by kind, ~2 min
"""

import argparse
import collections
import functools
import os
import statistics
import sys
import time

import torch
from torch.profiler import profile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pt_dit_launches import MODELS, SMALL, block_inputs, build, training_inputs  # noqa: E402
from cpu_ratio import alternate  # noqa: E402
from evaluation.efficiency.profile import cpu_capability, device_name  # noqa: E402

# aten ops that launch no kernel: views (metadata only) and allocations (the caching allocator's work
# on a GPU). Inductor's wrapper calls these too (reinterpret_tensor is as_strided, empty_strided).
NO_KERNEL = {
    "aten::" + name for name in (
        "view", "_unsafe_view", "reshape", "_reshape_alias", "as_strided", "transpose", "t", "permute",
        "expand", "unsqueeze", "squeeze", "select", "slice", "split", "split_with_sizes", "unbind",
        "chunk", "narrow", "detach", "alias", "lift_fresh", "resolve_conj", "resolve_neg", "view_as",
        "expand_as", "empty", "empty_strided", "empty_like", "resize_", "set_", "contiguous")}


@functools.lru_cache(maxsize=None)
def is_composite(name):
    """aten ops with a CompositeImplicitAutograd kernel (matmul, linear, layer_norm, softmax, ...) run
    no kernel of their own: they call other aten ops, which are counted instead. Judged by the op's
    first overload (the main one: add.Tensor, sum.dim_IntList)."""
    packet = getattr(torch.ops.aten, name.removeprefix("aten::"), None)
    if packet is None:
        return False
    overload = packet.overloads()[0]
    qualified = name + ("" if overload == "default" else "." + overload)
    return torch._C._dispatch_has_kernel_for_dispatch_key(qualified, "CompositeImplicitAutograd")


def is_kernel(name):
    """A profiler event that does work: an Inductor C++ kernel (its name holds `cpp_fused`, with
    config.cpp.enable_kernel_profile) or an aten op that is neither a view, an allocation nor a
    composite of other ops."""
    if "cpp_fused" in name:
        return True
    return name.startswith("aten::") and name not in NO_KERNEL and not is_composite(name)


def top_level_kernels(events):
    """Counter of kernel events with no kernel event above them: an aten op's inner calls (addmm's
    copy, zeros' fill) are part of its one launch, as they are in bench/pt_dit_launches.py's count
    below autograd."""
    counts = collections.Counter()
    for event in events:
        if not is_kernel(event.name):
            continue
        parent = event.cpu_parent
        while parent is not None and not is_kernel(parent.name):
            parent = parent.cpu_parent
        if parent is None:
            counts[event.name] += 1
    return counts


def count_kernels(fn):
    """Top-level kernels of one call of fn (call it warm: compiled code is built on the first calls)."""
    with profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return top_level_kernels(prof.events())


def kernel_profiling():
    """Inductor emits a profiler record per C++ kernel only with this set (before compiling)."""
    import torch._inductor.config as inductor_config
    inductor_config.cpp.enable_kernel_profile = True


def forward_backward(model, inputs):
    def step():
        model(*inputs).square().mean().backward()
        for p in model.parameters():
            p.grad = None
    return step


def training_step(model, inputs, parameters):
    opt = torch.optim.AdamW(parameters, lr=1e-4)

    def step():
        model(*inputs).square().mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def measure(repeats, compile_mode="default"):
    torch.set_num_threads(1)
    kernel_profiling()
    rows, steps = {}, []
    for name in MODELS:
        model = build(name)
        inputs = training_inputs(model)
        compiled = torch.compile(model, mode=compile_mode)
        row = {}
        for mode, module in (("eager", model), ("compiled", compiled)):
            fb = forward_backward(module, inputs)
            begin = time.perf_counter()
            fb()
            fb()
            if mode == "compiled":
                row["compile_s"] = time.perf_counter() - begin
            row[f"{mode}_kernels"] = count_kernels(fb)
            steps.append(training_step(module, inputs, model.parameters()))
        rows[name] = row
        print(f"{name}: counted (compile {row['compile_s']:.0f} s)", file=sys.stderr, flush=True)
    for step in steps:          # AdamW's state (the optimizer runs eager in both modes)
        step()
    times = alternate(steps, repeats)
    for i, name in enumerate(MODELS):
        rows[name]["eager_s"], rows[name]["compiled_s"] = times[2 * i], times[2 * i + 1]
    return rows


def ratios(rows, key, baseline=MODELS[0]):
    """Median over alternated pairs of (model time / DiT time)."""
    return {name: statistics.median(c / b for b, c in zip(rows[baseline][key], row[key]))
            for name, row in rows.items()}


def table(rows, title):
    base = MODELS[0]
    eager_ratio, compiled_ratio = ratios(rows, "eager_s"), ratios(rows, "compiled_s")
    lines = [title,
             f"{'model':26s}{'kernels eager':>14s}{'compiled':>9s}{'/ DiT eager':>12s}{'compiled':>9s}"
             f"{'step s eager':>13s}{'compiled':>9s}{'time / DiT eager':>17s}{'compiled':>9s}{'compile s':>10s}"]
    for name, r in rows.items():
        ke, kc = sum(r["eager_kernels"].values()), sum(r["compiled_kernels"].values())
        be, bc = sum(rows[base]["eager_kernels"].values()), sum(rows[base]["compiled_kernels"].values())
        lines.append(f"{name:26s}{ke:>14d}{kc:>9d}{ke / be:>12.2f}{kc / bc:>9.2f}"
                     f"{statistics.median(r['eager_s']):>13.3f}{statistics.median(r['compiled_s']):>9.3f}"
                     f"{eager_ratio[name]:>17.2f}{compiled_ratio[name]:>9.2f}{r['compile_s']:>10.0f}")
    return "\n".join(lines)


def kernel_mix(rows, top=12):
    """The compiled step's kernels by kind: fused C++ kernels and each library call."""
    lines = []
    for name, r in rows.items():
        kinds = collections.Counter()
        for kernel, n in r["compiled_kernels"].items():
            kinds["fused C++" if "cpp_fused" in kernel else kernel] += n
        lines.append(f"{name} compiled: " + ", ".join(f"{k} {v}" for k, v in kinds.most_common(top)))
    return "\n".join(lines)


def kinds(counts):
    """Kernels by what they are: fused elementwise / reduction code, matrix products, attention, other."""
    out = collections.Counter()
    for name, n in counts.items():
        if "cpp_fused" in name:
            out["fused"] += n
        elif name in ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"):
            out["matmul"] += n
        elif "scaled_dot_product" in name:
            out["attention"] += n
        else:
            out["other"] += n
    return out


def block_table(compile_mode="default"):
    """Kernels of block 0's forward + backward alone, eager and compiled, by kind: what a compiler
    fuses (the wrappers' elementwise work) and what it cannot merge (each Linear's matmuls, each
    attention call)."""
    torch.set_num_threads(1)
    kernel_profiling()
    lines = [f"block 0 forward + backward, input_size {SMALL['input_size']}: kernels (fused / matmul / attention / other)",
             f"{'model':26s}{'eager':>24s}{'compiled':>24s}"]
    for name in MODELS:
        model = build(name)
        block = model.blocks[0]
        x, c = block_inputs(model)
        cells = []
        for runner in (block, torch.compile(block, mode=compile_mode)):
            def step(runner=runner):
                runner(x, c).sum().backward()
                x.grad = None
                for p in block.parameters():
                    p.grad = None
            step()
            step()
            k = kinds(count_kernels(step))
            cells.append(f"{sum(k.values())} ({k['fused']} / {k['matmul']} / {k['attention']} / {k['other']})")
        lines.append(f"{name:26s}{cells[0]:>24s}{cells[1]:>24s}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--input-size", type=int, default=SMALL["input_size"],
                        help="latent size (64 = 512 px, 32 = 256 px)")
    parser.add_argument("--depth", type=int, default=SMALL["depth"], help="blocks (1 for a quick check of the script)")
    parser.add_argument("--mode", default="default", help="torch.compile mode (default, max-autotune, ...)")
    parser.add_argument("--blocks", action="store_true", help="only block 0's kernels by kind, eager and compiled (no timing)")
    args = parser.parse_args()
    SMALL.update(input_size=args.input_size, depth=args.depth)
    if args.blocks:
        print(block_table(args.mode))
        return
    rows = measure(args.repeats, args.mode)
    print(table(rows, f"torch {torch.__version__}, CPU ({device_name('cpu')}, {cpu_capability()}) fp32, 1 thread, input_size {args.input_size}, "
                      f"hidden {SMALL['hidden_size']}, depth {SMALL['depth']}, batch 2, compile mode {args.mode}"))
    print(kernel_mix(rows))


if __name__ == "__main__":
    main()
