"""results/figures/fid_vs_compression.{png,pdf}: FID (95 % bootstrap interval as error bars) against GFLOPs,
one line per objective through PT-DiT's static ratios, each point labelled with its ratio; a dynamic ratio
is a star, and the reference rows (DiT, SiT) a dashed horizontal line at their FID with a cross at their
GFLOPs. Reads the rows of evaluation/report/compression.py's table."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

from evaluation.report.figure_files import save_figure  # noqa: E402
from evaluation.report.imagenet_figures import number  # noqa: E402

NAME = "fid_vs_compression"
OBJECTIVE_COLOURS = {"ddpm": "tab:red", "sit": "tab:blue"}


def _error(row):
    """(below, above) of the FID interval, or (0, 0) without one."""
    fid, low, high = (number(row.get(k)) for k in ("fid", "fid_ci_low", "fid_ci_high"))
    return (0.0, 0.0) if low is None or high is None else (fid - low, high - fid)


def _ratio_label(row):
    if row["compression_ratio"] == "dynamic":
        return f"dynamic {row['dynamic_ratio']}"
    return "(" + ",".join(row["compression_ratio"].split("x")) + ")"


def _points(ax, rows, colour, marker, line):
    rows = sorted(rows, key=lambda r: number(r["gflops"]))
    if not rows:
        return
    x = [number(r["gflops"]) for r in rows]
    y = [number(r["fid"]) for r in rows]
    errors = list(zip(*(_error(r) for r in rows)))
    ax.errorbar(x, y, yerr=errors, color=colour, marker=marker, linestyle="-" if line else "none", capsize=3,
                markersize=9 if marker == "*" else 6, label=None)
    for row, xi, yi in zip(rows, x, y):
        ax.annotate(_ratio_label(row), (xi, yi), textcoords="offset points", xytext=(5, 5), fontsize=7, color=colour)


def make_compression_figure(table, out_dir):
    """Draw the figure from the table rows; returns the written paths."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for objective in sorted({r["objective"] for r in table}):
        colour = OBJECTIVE_COLOURS.get(objective, "0.3")
        ours = [r for r in table if r["objective"] == objective and r["role"] == "pt-dit"]
        model = ours[0]["model"] if ours else "PT-DiT"
        _points(ax, [r for r in ours if r["compression_ratio"] != "dynamic"], colour, "o", line=True)
        _points(ax, [r for r in ours if r["compression_ratio"] == "dynamic"], colour, "*", line=False)
        ax.plot([], [], color=colour, marker="o", label=f"{model} ({objective}), by ratio")
        for ref in (r for r in table if r["objective"] == objective and r["role"] == "reference"):
            fid = number(ref["fid"])
            ax.axhline(fid, color=colour, linestyle="--", linewidth=1)
            ax.errorbar([number(ref["gflops"])], [fid], yerr=[[e] for e in _error(ref)], color=colour, marker="x",
                        capsize=3, label=f"{ref['model']} ({objective}), reference")
    ax.plot([], [], color="0.3", marker="*", linestyle="none", label="dynamic ratio (GFLOPs: mean over sampling)")
    scale = sorted({str(r.get("scale")) for r in table})
    extractor = sorted({str(r.get("feature_extractor")) for r in table})
    ax.set_xlabel("GFLOPs (forward, batch 1)")
    ax.set_ylabel(f"FID ({', '.join(extractor)})")
    ax.set_title(f"FID against PT-DiT's compression ratio ({', '.join(scale)} scale)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, out_dir, NAME)
