"""Figures of results/table_efficiency.csv: GFLOPs, peak memory and throughput against resolution,
ours as filled markers on lines, the paper's numbers as hollow markers of the same colour; for the
video rows (a `frames` value, evaluation/efficiency/video.py) GFLOPs and memory against frame count,
one panel per resolution (the shape of the paper's Fig. 9).

Attention cost grows with the square of the token count, so GFLOPs and (for full attention) memory
and time are drawn on log axes; resolution is on a log2 axis (each tick doubles the side).

    python -m evaluation.efficiency.figures results/table_efficiency.csv --out-dir results/figures
"""

import argparse
import csv
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import matplotlib.ticker  # noqa: E402

from evaluation.report.figure_files import save_figure  # noqa: E402

FIGURES = ("gflops_vs_resolution", "memory_vs_resolution", "throughput_vs_resolution")
VIDEO_FIGURES = ("gflops_vs_frames", "memory_vs_frames")
TEXT_MODELS = ("PixArt-alpha-0.6B", "PT-DiT/L-T2I", "Lumina-Next-1.7B", "PT-DiT/H-T2I")
# One hue per family, darker for bigger models: the eye groups families, the legend names sizes.
FAMILY_COLOURS = {"DiT": plt.cm.Blues, "SiT": plt.cm.Blues, "DAM": plt.cm.Greens, "Agent": plt.cm.Purples,
                  "PT-DiT": plt.cm.Oranges, "PixArt": plt.cm.Blues, "Lumina": plt.cm.Greens}
SIZE_SHADE = {"S": 0.45, "B": 0.6, "L": 0.75, "XL": 0.9, "H": 0.95, "0.6B": 0.75, "1.7B": 0.85}
MARKERS = {"DiT": "o", "SiT": "o", "DAM": "s", "Agent": "D", "PT-DiT": "^", "PixArt": "o", "Lumina": "s"}


def read_rows(path):
    def number(value):
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    with open(path) as f:
        rows = [{k: (v if k in ("model", "device", "dtype", "status", "compiled") else number(v)) for k, v in row.items()}
                for row in csv.DictReader(f)]
    for row in rows:        # eager unless the table says otherwise (paper-only rows, tables before the column)
        row["compiled"] = row.get("compiled") or "false"
    return rows


def family(model):
    for name in ("PT-DiT", "DiT", "SiT", "DAM", "Agent", "PixArt", "Lumina"):
        if model.startswith(name):
            return name
    return "other"


def style(model):
    fam = family(model)
    size = next((s for s in ("XL", "0.6B", "1.7B", "S", "B", "L", "H") if f"/{s}" in model or f"-{s}" in model), "B")
    colour = FAMILY_COLOURS.get(fam, plt.cm.Greys)(SIZE_SHADE.get(size, 0.7))
    return {"color": colour, "marker": MARKERS.get(fam, "x")}


def series(rows, model, column, device=None, compiled=None):
    """(resolution, value) of one model; device / compiled ("true" / "false") keep one setting's rows."""
    points = sorted((r["resolution"], r[column]) for r in rows
                    if r["model"] == model and r.get(column) is not None and (device is None or r["device"] == device)
                    and (compiled is None or r.get("compiled") == compiled))
    seen, out = set(), []
    for x, y in points:              # one value per resolution (GFLOPs repeat across devices)
        if x not in seen:
            seen.add(x)
            out.append((x, y))
    return out


def models_in(rows):
    order = []
    for row in rows:
        if row["model"] not in order:
            order.append(row["model"])
    return order


def resolution_axis(ax, resolutions):
    ax.set_xscale("log", base=2)
    ticks = sorted(set(int(r) for r in resolutions)) or [256, 512, 1024, 2048]
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    pad = 1.6 if len(ticks) == 1 else 1.15      # keep markers off the frame
    ax.set_xlim(ticks[0] / pad, ticks[-1] * pad)
    ax.set_xlabel("resolution (px)")
    ax.grid(True, which="major", alpha=0.3)


def draw(ax, rows, models, ours_column, paper_column=None, device=None, compiled=None):
    """Lines of ours, hollow paper markers; returns the resolutions drawn."""
    xs = []
    for model in models:
        st = style(model)
        ours = series(rows, model, ours_column, device, compiled)
        paper = series(rows, model, paper_column) if paper_column else []
        if ours:
            ax.plot(*zip(*ours), color=st["color"], marker=st["marker"], lw=1.8, ms=6, label=model)
        if paper:
            ax.plot(*zip(*paper), ls="none", marker=st["marker"], ms=11, mfc="none", mec=st["color"], mew=1.6,
                    label=None if ours else f"{model} (paper)")
        xs += [x for x, _ in ours + paper]
    return xs


def value_axis(ax, values):
    """Log scale where values span more than a decade (quadratic growth), linear otherwise so that a
    narrow range still gets readable ticks."""
    values = [v for v in values if v]
    if values and max(values) / min(values) > 10:
        log_axis(ax)
    else:
        ax.set_ylim(bottom=0, top=max(values) * 1.15 if values else 1)


def log_axis(ax):
    """Log y axis with plain-number labels (0.2, 0.5, 1, 2, 5, 10, ...), not 2x10^-1."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def drawn_values(ax):
    return [y for line in ax.get_lines() for y in line.get_ydata()]


def paper_legend_entry(ax, loc="upper left"):
    """A legend key that explains the hollow markers once, instead of per model."""
    handles, labels = ax.get_legend_handles_labels()
    handles.append(plt.Line2D([], [], ls="none", marker="o", ms=10, mfc="none", mec="0.3", mew=1.5))
    labels.append("paper (hollow)")
    ax.legend(handles, labels, fontsize=8, loc=loc, frameon=True, framealpha=0.85, edgecolor="none")


def empty(ax, text):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def gflops_figure(rows, out_dir):
    class_models = [m for m in models_in(rows) if m not in TEXT_MODELS]
    text_models = [m for m in TEXT_MODELS if any(r["model"] == m for r in rows)]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    # The paper's Fig. 2 numbers leave the attention matmuls out (evaluation/efficiency/flop_breakdown.py), so
    # the text panel draws ours in that convention too; the class panel is DiT's convention.
    panels = ((axes[0], class_models, "gflops", "class-conditional, DiT convention (attention included)"),
              (axes[1], text_models, "gflops_no_attn", "text-to-image (Fig. 2), attention matmuls left out"))
    for ax, models, column, title in panels:
        xs = draw(ax, rows, models, column, "paper_gflops")
        if not xs:
            empty(ax, "no points")
            continue
        log_axis(ax)
        resolution_axis(ax, xs)
        ax.set_ylabel("GFLOPs per forward (batch 1)")
        ax.set_title(title)
        paper_legend_entry(ax)
    fig.suptitle("Compute against resolution: full attention grows with tokens², PT-DiT almost linearly "
                 "(filled: ours, hollow: paper)")
    save_figure(fig, out_dir, "gflops_vs_resolution")


def devices_in(rows, column):
    """The (device, dtype, compiled) settings that measured `column`: one panel each, so eager and
    torch.compile'd timings of a model are never joined into one line."""
    return sorted({(r["device"], r["dtype"], r["compiled"]) for r in rows
                   if r.get(column) is not None and r.get("device")})


def setting_name(device, dtype, compiled):
    return f"{device} / {dtype}{', compiled' if compiled == 'true' else ''}"


def memory_figure(rows, out_dir):
    devices = devices_in(rows, "peak_mem_mb") or [(None, None, None)]
    fig, axes = plt.subplots(1, len(devices), figsize=(6 * len(devices), 5), squeeze=False)
    for ax, (device, dtype, compiled) in zip(axes[0], devices):
        subset = [r for r in rows if r.get("device") == device and r.get("dtype") == dtype
                  and r["compiled"] == compiled]
        xs = draw(ax, subset, models_in(subset), "peak_mem_mb")
        if not xs:
            empty(ax, "no timed points")
            continue
        value_axis(ax, drawn_values(ax))
        resolution_axis(ax, xs)
        kind = "CUDA max allocated" if device == "cuda" else "peak RSS of the profiling process"
        ax.set_ylabel(f"peak memory (MB, {kind})")
        batches = sorted({int(r["train_batch"]) for r in subset if r.get("train_batch") is not None})
        ax.set_title(f"{setting_name(device, dtype, compiled)}: peak over inference and training (train batch "
                     f"{', '.join(map(str, batches))})")
        ax.legend(fontsize=8, loc="upper left", frameon=False)
    save_figure(fig, out_dir, "memory_vs_resolution")


def throughput_figure(rows, out_dir):
    devices = devices_in(rows, "infer_steps_per_s") or [(None, None, None)]
    fig, axes = plt.subplots(len(devices), 2, figsize=(12, 4.8 * len(devices)), squeeze=False)
    for line, (device, dtype, compiled) in zip(axes, devices):
        subset = [r for r in rows if (r.get("device") == device and r.get("dtype") == dtype)
                  or r.get("paper_infer_steps_per_s") is not None]
        for ax, column, label in ((line[0], "infer_steps_per_s", "inference"),
                                  (line[1], "train_steps_per_s", "training")):
            models = [m for m in models_in(subset) if series(subset, m, column, device, compiled) or
                      series(subset, m, f"paper_{column}")]
            xs = draw(ax, subset, models, column, f"paper_{column}", device, compiled)
            if not xs:
                empty(ax, "no timed points")
                continue
            value_axis(ax, drawn_values(ax))
            resolution_axis(ax, xs)
            batches = sorted({int(r[f"{column.split('_')[0]}_batch"]) for r in subset if r.get(column) is not None
                              and r.get(f"{column.split('_')[0]}_batch") is not None})
            ax.set_ylabel(f"{label} steps/s (batch {', '.join(map(str, batches))})")
            ax.set_title(f"{label}, {setting_name(device, dtype, compiled)} (hollow: paper, their GPU)")
            paper_legend_entry(ax, loc="lower left")
    save_figure(fig, out_dir, "throughput_vs_resolution")


# --- video: against frame count ---------------------------------------------------------------------
ATTENTION_COLOURS = {"Full3D": "tab:blue", "Factorized": "tab:green", "PT-DiT": "tab:orange"}
MEMORY_KINDS = (("peak_mem_mb", "-", "measured peak (CUDA max allocated)"),
                ("act_mem_fused_mb_est", "--", "estimate: saved activations, fused attention"),
                ("act_mem_mb_est", ":", "estimate: saved activations, eager attention"))


def video_colour(model):
    return next((c for name, c in ATTENTION_COLOURS.items() if model.startswith(name)), "0.4")


def frame_series(rows, model, resolution, column, device=None):
    points = sorted((r["frames"], r[column]) for r in rows if r["model"] == model and r["resolution"] == resolution
                    and r.get(column) is not None and (device is None or r.get("device") == device))
    return list(dict(points).items())          # one value per frame count


def frames_axis(ax, frames):
    ax.set_xscale("log", base=2)
    ticks = sorted(set(int(f) for f in frames))
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("frames (latent frames = frames with the per-frame image VAE)")
    ax.grid(True, which="major", alpha=0.3)


def video_panels(rows, out_dir, name, draw_panel, title):
    resolutions = sorted({int(r["resolution"]) for r in rows})
    fig, axes = plt.subplots(1, max(1, len(resolutions)), figsize=(6.5 * max(1, len(resolutions)), 5), squeeze=False)
    if not resolutions:
        empty(axes[0][0], "no video points")
    for ax, resolution in zip(axes[0], resolutions):
        frames = draw_panel(ax, resolution)
        if not frames:
            empty(ax, "no points")
            continue
        log_axis(ax)
        frames_axis(ax, frames)
        ax.set_title(f"{resolution} px")
    fig.suptitle(title)
    save_figure(fig, out_dir, name)


def video_gflops_figure(rows, out_dir):
    def panel(ax, resolution):
        frames = []
        for model in models_in(rows):
            line = frame_series(rows, model, resolution, "gflops")
            if line:
                ax.plot(*zip(*line), color=video_colour(model), marker="o", lw=1.8, label=model)
                frames += [f for f, _ in line]
        ax.set_ylabel("GFLOPs per forward (batch 1, DiT convention)")
        if frames:
            ax.legend(fontsize=8, loc="upper left", frameon=False)
        return frames
    video_panels(rows, out_dir, "gflops_vs_frames", panel,
                 "Video compute against frame count: 3-D full attention grows with tokens², "
                 "2-D + 1-D and PT-DiT grow far more slowly")


def video_memory_figure(rows, out_dir):
    def panel(ax, resolution):
        frames = []
        for model in models_in(rows):
            for column, dash, _ in MEMORY_KINDS:
                line = [(f, mb / 1024) for f, mb in
                        frame_series(rows, model, resolution, column, "cuda" if column == "peak_mem_mb" else None)]
                if line:
                    ax.plot(*zip(*line), color=video_colour(model), ls=dash, marker="o" if dash == "-" else ".",
                            lw=1.8 if dash == "-" else 1.2)
                    frames += [f for f, _ in line]
        handles = [plt.Line2D([], [], color=video_colour(m), lw=2) for m in models_in(rows)]
        handles += [plt.Line2D([], [], color="0.3", ls=dash) for _, dash, _ in MEMORY_KINDS]
        labels = models_in(rows) + [label for _, _, label in MEMORY_KINDS]
        ax.legend(handles, labels, fontsize=7, loc="upper left", frameon=False)
        ax.set_ylabel("memory (GB): training, batch 1 (estimates: fp32)")
        return frames
    video_panels(rows, out_dir, "memory_vs_frames", panel,
                 "Video memory against frame count (Fig. 9 shape): measured where a GPU ran, "
                 "counted estimates (dashed, dotted) everywhere")


def make_figures(table, out_dir):
    rows = read_rows(table)
    image = [r for r in rows if r.get("frames") is None]
    video = [r for r in rows if r.get("frames") is not None]
    gflops_figure(image, out_dir)
    memory_figure(image, out_dir)
    throughput_figure(image, out_dir)
    video_gflops_figure(video, out_dir)
    video_memory_figure(video, out_dir)
    return [os.path.join(out_dir, f"{name}.{ext}") for name in FIGURES + VIDEO_FIGURES for ext in ("png", "pdf")]


def main(argv=None):
    parser = argparse.ArgumentParser(description="efficiency figures from results/table_efficiency.csv")
    parser.add_argument("table", nargs="?", default="results/table_efficiency.csv")
    parser.add_argument("--out-dir", default="results/figures")
    args = parser.parse_args(argv)
    for path in make_figures(args.table, args.out_dir):
        print(path)


if __name__ == "__main__":
    main()
