"""Figures of the quality runs: FID against GFLOPs (ours beside the paper's) and training-loss curves.

    results/figures/fid_vs_gflops.{png,pdf}
    results/figures/training_loss.{png,pdf}

Colour names the model family, marker shape the objective (circle: DDPM / DiT codebase, square:
SiT interpolant); ours are filled, the paper's hollow, as in evaluation/efficiency/figures.py.
"""

import csv
import os
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

from evaluation.report.figure_files import save_figure  # noqa: E402
from evaluation.report.paper_quality import paper_row  # noqa: E402

FIGURES = ("fid_vs_gflops", "training_loss")
FAMILY_COLOURS = {"DiT": "tab:blue", "SiT": "tab:cyan", "DAM": "tab:green", "Agent": "tab:purple",
                  "PT-DiT": "tab:red"}
OBJECTIVE_MARKERS = {"ddpm": "o", "sit": "s"}


def family(model):
    for name in ("PT-DiT", "DiT", "SiT", "DAM", "Agent"):
        if model.startswith(name):
            return name
    return "other"


def style(model, objective):
    return {"color": FAMILY_COLOURS.get(family(model), "0.4"), "marker": OBJECTIVE_MARKERS.get(objective, "D")}


def number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_table(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def labels(table):
    """'model (objective)', plus the steps where one model/objective was trained to several."""
    counts = {}
    for row in table:
        counts[(row["model"], row["objective"])] = counts.get((row["model"], row["objective"]), 0) + 1
    out = []
    for row in table:
        label = f"{row['model']} ({row['objective']})"
        if counts[(row["model"], row["objective"])] > 1:
            label += f" {row['train_steps']} steps"
        out.append(label)
    return out


def steps_text(steps):
    return f"{steps / 1e6:g}M" if steps >= 1e6 else f"{steps / 1e3:g}k"


def paper_points(table):
    """The paper's point of every (model, objective) in our table, as paper_row picks it. Only those:
    every published FID (DAM's mediator sweep, DiT's and SiT's S-to-XL series) would bury the five
    S-size points that the comparison is about, and a panel of the same models reads one-to-one."""
    seen, points = set(), []
    for row, label in zip(table, labels(table)):
        paper = paper_row(row["model"], row["objective"], number(row.get("train_steps")))
        key = (row["model"], row["objective"], paper.get("paper_train_steps"))
        if key in seen or paper.get("paper_fid") is None or paper.get("paper_gflops") is None:
            continue
        seen.add(key)
        name = f"{row['model']} ({row['objective']})"   # our step counts do not apply to the paper's point
        points.append((row, f"{name} {steps_text(paper['paper_train_steps'])}", paper["paper_gflops"],
                       paper["paper_fid"]))
    return points


LABEL_HEIGHT = 0.045   # one 8-pt label line, in axes fractions of a ~4-inch-high panel
LABEL_TOP = 0.93       # labels above this would run into the panel title


def label_position(fx, fy, placed):
    """The label's y nearest to its point (up, then down, then further) that overlaps no placed label and
    stays inside the panel; the point's own height when every slot is taken."""
    for k in range(40):
        shift = (k + 1) // 2 * LABEL_HEIGHT * (1 if k % 2 else -1)
        y = fy + shift
        if 0.0 <= y <= LABEL_TOP and not any(abs(fx - px) < 0.3 and abs(y - py) < LABEL_HEIGHT for px, py in placed):
            return y
    return fy


def label_points(ax, points):
    """Labels right of their points, moved up or down where two would overlap (same GFLOPs, close FID),
    never above the panel. Placed in axes fractions, so call it after the limits are set."""
    to_axes = ax.transAxes.inverted()
    placed = []
    for x, y, text, colour in sorted(points, key=lambda p: p[1]):
        fx, fy = to_axes.transform(ax.transData.transform((x, y)))
        ly = label_position(fx, fy + 0.015, placed)
        placed.append((fx, ly))
        # A label moved off its point's line gets a thin leader back to the point.
        leader = dict(arrowstyle="-", color=colour, lw=0.6, alpha=0.6) if abs(ly - fy) > LABEL_HEIGHT else None
        ax.annotate(text, xy=(x, y), xycoords="data", xytext=(fx + 0.015, ly), textcoords="axes fraction",
                    fontsize=8, color=colour, va="bottom", arrowprops=leader)


def log_if_wide(ax, values):
    """Log x where GFLOPs span more than a decade (S to XL models); linear keeps narrow ranges readable."""
    values = [v for v in values if v]
    if values and max(values) / min(values) > 10:
        ax.set_xscale("log")


def pad_x(ax, values):
    """Room on the right for the labels (annotate text is not counted by autoscale)."""
    lo, hi = min(values), max(values)
    if ax.get_xscale() == "log":
        ax.set_xlim(lo / 1.3, hi * 2.2)
    else:
        span = (hi - lo) or abs(hi) or 1.0
        ax.set_xlim(lo - 0.15 * span, hi + 0.45 * span)


def pad_y(ax, values):
    lo, hi = min(values), max(values)
    if lo > 0 and hi / lo > 10:
        # An untrained baseline sits orders of magnitude above trained models: log keeps both legible.
        ax.set_yscale("log")
        ax.set_ylim(lo / 1.6, hi * 1.6)
        return
    span = (hi - lo) or abs(hi) or 1.0
    ax.set_ylim(lo - 0.1 * span, hi + 0.15 * span)


def ours_panel(ax, table):
    points = []
    for row, label in zip(table, labels(table)):
        x, y = number(row["gflops"]), number(row["fid"])
        st = style(row["model"], row["objective"])
        low, high = number(row.get("fid_ci_low")), number(row.get("fid_ci_high"))
        if low is not None and high is not None:  # the 95 % bootstrap interval
            ax.errorbar([x], [y], yerr=[[max(y - low, 0)], [max(high - y, 0)]], ls="none", ms=8, capsize=3, **st)
            ends = [low, high]
        else:
            ax.plot([x], [y], ls="none", ms=8, **st)
            ends = []
        points.append((x, y, label, st["color"], ends))
    log_if_wide(ax, [p[0] for p in points])
    pad_x(ax, [p[0] for p in points])
    pad_y(ax, [p[1] for p in points] + [e for p in points for e in p[4] if e > 0])
    points = [p[:4] for p in points]
    label_points(ax, points)
    scale = ", ".join(sorted({str(row.get("scale")) for row in table}))
    extractor = ", ".join(sorted({str(row.get("feature_extractor")) for row in table}))
    ax.set_title(f"ours: {scale} scale, FID on {extractor} features", fontsize=10)
    ax.set_xlabel("GFLOPs per forward (batch 1, model as trained)")
    ax.set_ylabel(f"FID ({extractor} features)")


def reference_points(references):
    """The paper_only rows that publish GFLOPs (DiT-XL/2, SiT-XL/2): VAR has no per-forward GFLOPs and
    MDT's could not be checked, so they stay in the table only."""
    points = []
    for row in references:
        gflops, fid = number(row.get("paper_gflops")), number(row.get("paper_fid"))
        if gflops is None or fid is None:
            continue
        cfg = number(row.get("cfg"))
        guided = f", cfg {cfg:g}" if cfg and cfg > 1 else ""
        points.append((row, f"{row['model']} [ref{guided}]", gflops, fid))
    return points


def paper_panel(ax, table, references=()):
    points = []
    for row, label, gflops, fid in paper_points(table):
        st = style(row["model"], row["objective"])
        ax.plot([gflops], [fid], ls="none", ms=8, mfc="none", mew=1.5, mec=st["color"], marker=st["marker"])
        points.append((gflops, fid, label, st["color"]))
    # Reference rows: hollow as every published point, a diamond for guided sampling (cfg > 1).
    for row, label, gflops, fid in reference_points(references):
        st = style(row["model"], row["objective"])
        guided = (number(row.get("cfg")) or 1) > 1
        ax.plot([gflops], [fid], ls="none", ms=8, mfc="none", mew=1.5, mec=st["color"],
                marker="D" if guided else st["marker"])
        points.append((gflops, fid, label, st["color"]))
    unplotted = sorted({r["model"] for r in references} - {p[0]["model"] for p in reference_points(references)})
    if unplotted:
        text = textwrap.fill("table only (no comparable GFLOPs published): " + ", ".join(unplotted), 95)
        ax.text(0.01, 0.01, text, fontsize=6.5, color="0.4", transform=ax.transAxes, va="bottom")
    if not points:
        ax.text(0.5, 0.5, "the paper reports none of these models", ha="center", va="center",
                transform=ax.transAxes, color="0.4")
    else:
        log_if_wide(ax, [p[0] for p in points])
        pad_x(ax, [p[0] for p in points])
        pad_y(ax, [p[1] for p in points])
        label_points(ax, points)
    ax.set_title("paper: ImageNet-256, FID-50K (Inception); [ref] = reference rows", fontsize=10)
    ax.set_xlabel("GFLOPs per forward at 256 px (as published)")
    ax.set_ylabel("FID-50K")


def legend(fig, table):
    """One legend for both panels: families by colour, objectives by shape, ours vs paper by fill."""
    families = sorted({family(r["model"]) for r in table}, key=lambda f: list(FAMILY_COLOURS).index(f)
                      if f in FAMILY_COLOURS else len(FAMILY_COLOURS))
    handles = [plt.Line2D([], [], ls="none", marker="o", color=FAMILY_COLOURS.get(f, "0.4"), label=f)
               for f in families]
    handles += [plt.Line2D([], [], ls="none", marker=m, color="0.35", label=f"{o} objective")
                for o, m in OBJECTIVE_MARKERS.items()]
    handles += [plt.Line2D([], [], ls="none", marker="o", color="0.35", label="ours (filled)"),
                plt.Line2D([], [], ls="none", marker="o", mfc="none", mec="0.35", label="paper (hollow)"),
                plt.Line2D([], [], ls="none", marker="D", mfc="none", mec="0.35", label="reference, cfg > 1")]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)


def fid_vs_gflops_figure(table, out_dir):
    """Two panels, not one shared axis: the stand-in models are a thousand times cheaper and their FID
    lives in another feature space, so on one axis the paper's points and ours would sit in opposite
    corners and invite a comparison of values that means nothing. Side by side, with the same colours
    and shapes, the reader compares what does carry over: the ordering of the models."""
    references = [r for r in table if r.get("kind") == "paper_only"]
    table = [r for r in table if r.get("kind") != "paper_only"]
    fig, (ours, paper) = plt.subplots(1, 2, figsize=(13, 5.2))
    ours_panel(ours, table)
    paper_panel(paper, table, references)
    for ax in (ours, paper):
        ax.grid(True, which="major", alpha=0.3)
    legend(fig, table)
    fig.suptitle("FID against compute: lower-left is better", fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return save_figure(fig, out_dir, "fid_vs_gflops")


def read_log(run_dir):
    """(steps, losses) of a run's log.csv, or None if the run has none."""
    path = os.path.join(run_dir, "log.csv")
    if not os.path.exists(path):
        return None
    steps, losses = [], []
    for row in read_table(path):
        step, loss = number(row.get("step")), number(row.get("loss"))
        if step is not None and loss is not None:
            steps.append(step)
            losses.append(loss)
    return (steps, losses) if steps else None


def moving_average(values, window):
    """Trailing mean: the first points average what exists so far, so the curve starts at step one."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def training_loss_figure(rows, out_dir):
    """One panel per objective: DDPM's loss (eps MSE + VB) and SiT's velocity MSE are different
    quantities, so their curves share no axis."""
    objectives = [o for o in OBJECTIVE_MARKERS if any(r.get("objective") == o and r.get("run_dir") for r in rows)]
    fig, axes = plt.subplots(1, max(1, len(objectives)), figsize=(6.5 * max(1, len(objectives)), 4.6), squeeze=False)
    if not objectives:
        axes[0][0].text(0.5, 0.5, "no run_dir with a log.csv", ha="center", va="center", color="0.4")
    for ax, objective in zip(axes[0], objectives):
        subset = [r for r in rows if r.get("objective") == objective and r.get("run_dir")]
        for row, label in zip(subset, labels(subset)):
            log = read_log(row["run_dir"])
            if log is None:
                continue
            steps, losses = log
            colour = style(row["model"], objective)["color"]
            ax.plot(steps, losses, color=colour, alpha=0.2, lw=0.8)
            ax.plot(steps, moving_average(losses, max(1, len(losses) // 20)), color=colour, lw=1.8, label=label)
        ax.set_title(f"{objective} objective", fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel("loss (faint: logged, bold: moving average)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return save_figure(fig, out_dir, "training_loss")


def make_imagenet_figures(table, rows, out_dir):
    """table: the rows build_imagenet_table returned (or read_table of its CSV); rows: its input rows."""
    return fid_vs_gflops_figure(table, out_dir) + training_loss_figure(rows, out_dir)
