"""results/table_efficiency.csv from the per-point JSONs of evaluation/efficiency/profile.py, with the paper's
numbers beside ours (evaluation/report/paper_efficiency.py).

One row per measured point (model, resolution, device, dtype, compiled; video points also by frames,
from evaluation/efficiency/video.py), plus one "paper_only" row for every
paper number whose (model, resolution) was not profiled, so no published number is dropped.
`compiled` is true for a point timed as torch.compile(model): it sits beside the eager row of the
same point, and the paper's numbers sit on both rows.
A second, small table compares the paper's ratio claims (speed-ups, GFLOPs ratios) with ours, one
row per (device, dtype, compiled): a speed-up is eager / eager or compiled / compiled, never mixed.

    python -m evaluation.efficiency.table results/efficiency/*/*.json --out results/table_efficiency.csv
"""

import argparse
import csv
import glob
import json
import math

from evaluation.efficiency.attention_cost import attention_cost_pct
from evaluation.report.paper_efficiency import NUMBERS, RATIO_CLAIMS, paper_points, paper_values
from ptdit.atomic import atomic_write

# design.md's contract first, then what makes a row readable on its own.
COLUMNS = ["model", "resolution", "tokens", "params_M", "gflops", "paper_gflops", "train_steps_per_s",
           "infer_steps_per_s", "peak_mem_mb", "device", "compiled", "frames", "latent_frames", "status", "dtype",
           "gflops_no_attn", "act_mem_mb_est", "act_mem_fused_mb_est", "peak_mem_kind", "paper_params_M",
           "paper_train_steps_per_s", "paper_infer_steps_per_s", "attn_cost_pct", "paper_attn_cost_pct",
           "infer_batch", "infer_iqr_s", "throughput_batch", "throughput_samples_per_s", "train_batch",
           "train_iqr_s", "threads", "cpu_allocator", "device_name", "torch_version", "paper_source", "message"]
CLAIM_COLUMNS = ["claim", "paper", "ours", "device", "compiled", "numerator", "denominator", "quantity", "resolution",
                 "source"]


def load_points(paths):
    points = []
    for path in paths:
        with open(path) as f:
            points.append(json.load(f))
    return points


def _round(value, digits):
    return None if value is None else round(value, digits)


def flag(value):
    """A boolean as the CSV shows it (lowercase, as in the config and the JSON)."""
    return "true" if value else "false"


def measured_row(point):
    """Our columns of one profiled point."""
    row = {key: point.get(key) for key in ("model", "resolution", "tokens", "device", "dtype", "status",
                                          "device_name", "torch_version", "message", "frames", "latent_frames")}
    row["compiled"] = flag(point.get("compile"))
    if "params" in point:
        row["params_M"] = round(point["params"] / 1e6, 3)
    row["gflops"] = _round(point.get("gflops"), 3)
    row["gflops_no_attn"] = _round(point.get("gflops_no_attention"), 3)
    if "window" in point and point.get("tokens"):
        row["attn_cost_pct"] = round(attention_cost_pct(point["tokens"], math.prod(point["window"])), 2)
    for phase, prefix in (("infer", "infer"), ("train", "train")):
        if phase in point:
            row[f"{prefix}_steps_per_s"] = round(point[phase]["steps_per_s"], 4)
            row[f"{prefix}_batch"] = point[phase]["batch"]
            row[f"{prefix}_iqr_s"] = round(point[phase]["q3_s"] - point[phase]["q1_s"], 4)
    if "infer_throughput" in point:
        row["throughput_batch"] = point["infer_throughput"]["batch"]
        row["throughput_samples_per_s"] = round(point["infer_throughput"]["samples_per_s"], 4)
    if point.get("status") in ("ok", "oom") and point.get("peak_mem_mb") is not None:
        row["peak_mem_mb"] = round(point["peak_mem_mb"], 1)
        row["peak_mem_kind"] = point.get("peak_mem_kind")
    for key in ("act_mem_mb_est", "act_mem_fused_mb_est"):      # counted estimates (efficiency/video.py)
        row[key] = _round(point.get(key), 1)
    if point.get("torch_threads"):
        row["threads"] = point["torch_threads"]
    if point.get("device") == "cpu" and ("infer" in point or "train" in point):
        # timed CPU points: freed memory kept mapped or not (cpu_allocator.py); older points had glibc's defaults
        row["cpu_allocator"] = point.get("cpu_allocator", "system")
    if point.get("device") == "cpu" and point.get("cpu_capability"):
        # the ISA torch's kernels ran on: a VM's model name ("AMD EPYC") does not say it, and CPU timings
        # move with it (docs/measurements/cpu_compiled_launches_2026-12-04.md)
        row["device_name"] = f"{point.get('device_name')} ({point['cpu_capability']})"
    return row


def add_paper_columns(row):
    values = paper_values(row["model"], row["resolution"])
    for quantity, number in values.items():
        row[f"paper_{quantity}"] = number.value
    sources = {n.source for n in values.values() if n.quantity != "attn_cost_pct"}
    if sources:
        row["paper_source"] = "; ".join(sorted(sources))
    return row


def model_order():
    """Models in the order the paper numbers list them (baselines before PT-DiT)."""
    order = []
    for number in NUMBERS:
        if "*" not in number.model and number.model not in order:
            order.append(number.model)
    return order


def family(model):
    """'DAM-S/2-n64' -> 'DAM', 'PT-DiT/S-Class' -> 'PT-DiT/Class', 'PT-DiT/L-T2I' -> 'PT-DiT/T2I'."""
    head, _, tail = model.partition("/")
    return f"{head}/{tail.rsplit('-', 1)[-1]}" if head == "PT-DiT" else head.split("-")[0]


def model_rank(model, order):
    """Listed models keep the paper's order; others go just after the last one of their family."""
    if model in order:
        return (order.index(model), 0)
    same = [i for i, m in enumerate(order) if family(m) == family(model)]
    return (same[-1] if same else len(order), 1)


def build_rows(points):
    rows = [add_paper_columns(measured_row(p)) for p in points]
    measured = {(r["model"], r["resolution"]) for r in rows}
    for model, resolution in paper_points():
        if (model, resolution) not in measured:
            rows.append(add_paper_columns({"model": model, "resolution": resolution, "status": "paper_only",
                                           "message": "not profiled (or not in the zoo)"}))
    order = model_order()
    rows.sort(key=lambda r: (model_rank(r["model"], order), r["model"], r["resolution"], r.get("frames") or 0,
                             r.get("device") or "", r.get("dtype") or "", r.get("compiled") or ""))
    return rows


def claim_rows(rows):
    """The paper's ratio claims against ours, for every (device, dtype, compiled) that measured both
    sides: numerator and denominator always come from the same setting."""
    out = []
    for claim, paper, top, bottom, quantity, resolution, source in RATIO_CLAIMS:
        ours = {}
        for row in rows:
            if row["resolution"] == resolution and row.get(quantity) not in (None, ""):
                setting = (row.get("device"), row.get("dtype"), row.get("compiled"))
                ours.setdefault(setting, {})[row["model"]] = row[quantity]
        # GFLOPs do not depend on the device or on compiling: one row is enough.
        found = [(k, v) for k, v in ours.items() if top in v and bottom in v]
        counted = quantity.startswith("gflops")
        if counted:
            found = found[:1]
        if not found:
            found = [((None, None, None), None)]
        for (device, dtype, compiled), values in found:
            value = round(values[top] / values[bottom], 3) if values else None
            where = "counter" if counted and values else (f"{device}-{dtype}" if device else None)
            out.append({"claim": claim, "paper": paper, "ours": value, "device": where,
                        "compiled": None if counted or not values else compiled, "numerator": top,
                        "denominator": bottom, "quantity": quantity, "resolution": resolution, "source": source})
    return out


def write_csv(path, rows, columns):
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})

    atomic_write(path, write)


def write_tables(json_paths, out, claims_out=None):
    rows = build_rows(load_points(json_paths))
    write_csv(out, rows, COLUMNS)
    if claims_out:
        write_csv(claims_out, claim_rows(rows), CLAIM_COLUMNS)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description="assemble results/table_efficiency.csv from profile JSONs")
    parser.add_argument("points", nargs="*", help="point JSONs (default: results/efficiency/*/*.json)")
    parser.add_argument("--out", default="results/table_efficiency.csv")
    parser.add_argument("--claims", default=None, help="also write the ratio claims table here")
    args = parser.parse_args(argv)
    paths = args.points or sorted(glob.glob("results/efficiency/*/*.json"))
    rows = write_tables(paths, args.out, args.claims)
    print(f"{args.out}: {len(rows)} rows from {len(paths)} points")


if __name__ == "__main__":
    main()
