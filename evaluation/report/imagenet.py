"""results/table_imagenet.csv and results/table_ablation.csv (+ .md renderings): one row per trained and
evaluated model, our measured numbers beside the paper's (evaluation/report/paper_quality.py).

A row (a dict, as the Snakemake report rule writes it to rows.yaml):
    model: PT-DiT/S-Class          # registered name (ptdit.list_models())
    objective: sit                 # ddpm | sit
    train_steps: 2000
    sampler: sde                   # as the sample step ran it
    sample_steps: 50
    cfg: 1.0
    eval_json: results/eval/....json   # evaluation/metrics/evaluate.py output
    run_dir: results/runs/...      # optional: its log.csv feeds the training-loss figure
    model_overrides: {depth: 4, hidden_size: 96, ...}   # the model as trained (params/GFLOPs use it)
    dataset: imagenet-standin
    scale: default                 # default | paper
    seeds: [0, 1, 2]               # optional, several training seeds: then
    eval_jsons: [...]              #   one eval JSON per seed, averaged (see seed_mean)
Ablation rows may also give `group` and `setting`; otherwise they are read off the overrides.

The measured params and GFLOPs are those of the model as trained (overrides applied), at the trained
input size; the paper_* values are the paper's, for the same model name at the paper's scale. At the
default scale the FIDs are Fréchet distances in a small stand-in classifier's feature space, so the
.md header says which scale and which feature extractor produced them.
"""

import csv
import io
import json
import math
import os

from evaluation.report.imagenet_plan import built_window
from evaluation.report.markdown_html import markdown_to_html
from evaluation.report.paper_quality import ABLATION_RECIPE, DEFAULTS, SWITCHES, normalise, paper_ablation, paper_row, reference_rows
from ptdit.atomic import atomic_text
from ptdit.dynamic_ratio import schedule_name

METRICS = ("fid", "sfid", "is", "precision", "recall")
CI_METRICS = (*METRICS, "class_acc")
CI_COLUMNS = [f"{m}_ci_{side}" for m in CI_METRICS for side in ("low", "high")]
STD_COLUMNS = [f"{m}_std" for m in CI_METRICS]
PAPER_COLUMNS = ["paper_params_M", "paper_gflops", "paper_fid", "paper_sfid", "paper_is", "paper_precision",
                 "paper_recall", "paper_train_steps", "paper_source"]
IMAGENET_COLUMNS = (["dataset", "scale", "feature_extractor", "model", "objective", "train_steps", "sampler",
                     "sample_steps", "cfg", "params_M", "gflops", *METRICS, "class_acc", "fid_vs_reference",
                     "num_samples"] + PAPER_COLUMNS
                    + ["model_overrides", *CI_COLUMNS, "class_acc_note", "eval_json", "kind", "source", "seeds", *STD_COLUMNS])
ABLATION_COLUMNS = (["group", "setting", "model", "overrides", "dataset", "scale", "feature_extractor", "objective",
                     "train_steps", "sampler", "sample_steps", "cfg", "params_M", "gflops", *METRICS, "class_acc",
                     "fid_vs_reference", "num_samples", "paper_fid", "paper_gflops", "paper_params_M", "paper_source",
                     *CI_COLUMNS, "class_acc_note", "eval_json"])
GROUP_ORDER = ("(a)", "(b)", "similarity", "(c)", "(d)", "full")


# --- reading what the earlier stages wrote ----------------------------------------------------------
def read_eval(path):
    """The metrics of one eval JSON; a missing or non-finite metric stops with the file's name."""
    with open(path) as f:
        result = json.load(f)
    missing = [m for m in METRICS if m not in result]
    if missing:
        raise ValueError(f"eval JSON {path} has no {', '.join(missing)} (evaluate with --metrics fid,sfid,is,prc)")
    bad = [f"{m}={result[m]!r}" for m in METRICS if not _finite(result[m])]
    if bad:
        raise ValueError(f"eval JSON {path} has non-finite metrics: {', '.join(bad)}")
    return result


def seed_mean(paths):
    """One result from the eval JSONs of a row's training seeds: every metric and interval bound is the mean
    over seeds, and `<m>_std` the sample standard deviation over seeds (ddof=1; None for one seed).

    The intervals are the mean of the per-seed bounds, not one seed's: each per-seed interval measures the
    finite-sample error of one run's metric (evaluation/metrics/bootstrap.py), so their mean is that error's
    typical size, centred near the seed mean and the same whichever seed is listed first; the spread between
    trainings is the separate `_std` column. (An interval of the seed mean itself would be narrower.)"""
    return average_seeds([read_eval(p) for p in paths], (*CI_METRICS, *CI_COLUMNS), CI_METRICS)


def average_seeds(results, keys, std_keys):
    """The first result with each of `keys` replaced by its mean over results (None unless every result has
    a finite value), `<k>_std` (ddof=1; None for one result) for each of `std_keys`, and `seeds`: the count.
    Shared by the ImageNet and video tables (evaluation/report/video.py)."""
    out = dict(results[0])
    for key in keys:
        values = [r.get(key) for r in results]
        out[key] = math.fsum(values) / len(values) if all(_finite(v) for v in values) else None
    for key in std_keys:
        values, mean = [r.get(key) for r in results], out[key]
        out[f"{key}_std"] = (math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
                             if len(values) > 1 and mean is not None else None)
    out["seeds"] = len(results)
    return out


def _finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_COST_CACHE = {}


def measured_cost(model, overrides, sampling=None):
    """(params_M, GFLOPs) of the model as trained. Cached: ablation rows repeat one shape. A dynamic-ratio
    PT-DiT costs the mean over its sampler's calls: sampling = (objective, sampler, sample_steps,
    objective_options, sampler_options); the options decide the sampler's grid (e.g. Euler ODE vs dopri5)."""
    from evaluation.efficiency.flops import model_gflops

    dynamic = (overrides or {}).get("dynamic_ratio") is not None
    key = (model, json.dumps(overrides or {}, sort_keys=True), json.dumps(sampling, sort_keys=True) if dynamic else "")
    if key not in _COST_CACHE:
        if dynamic:
            from evaluation.efficiency.dynamic_ratio_cost import schedule_cost

            objective, sampler, steps, objective_options, sampler_options = sampling
            params, gflops, _ = schedule_cost(model, overrides, objective, sampler, int(steps),
                                              objective_options, sampler_options)
        else:
            params, gflops = model_gflops(model, **(overrides or {}))
        _COST_CACHE[key] = (params / 1e6, gflops)
    return _COST_CACHE[key]


def _sig(value, digits=4):
    """Four significant digits: stand-in models have GFLOPs of 0.001, paper models of 100."""
    return None if value is None else float(f"{value:.{digits}g}")


def measured_columns(row):
    """The columns every table shares: the run's recipe, its cost, its metrics."""
    result = seed_mean(row.get("eval_jsons") or [row["eval_json"]])
    params_M, gflops = measured_cost(row["model"], row.get("model_overrides"),
                                     (row.get("objective"), row.get("sampler"), row.get("sample_steps"),
                                      row.get("objective_options") or {}, row.get("sampler_options") or {}))
    out = {key: row.get(key) for key in ("dataset", "scale", "model", "objective", "train_steps", "sampler",
                                         "sample_steps", "cfg", "eval_json")}
    out.update(feature_extractor=result.get("feature_extractor"), params_M=_sig(params_M), gflops=_sig(gflops),
               num_samples=result.get("num_samples"))
    out.update({m: _sig(result[m], 5) for m in METRICS})
    # Evaluations written before issue 15 have neither class accuracy nor intervals: empty cells.
    out["class_acc"] = _sig(result.get("class_acc"), 4) if _finite(result.get("class_acc")) else None
    out["class_acc_note"] = result.get("class_acc_note")
    out.update({c: _sig(result[c], 5) for c in CI_COLUMNS if _finite(result.get(c))})
    out["seeds"] = result["seeds"]
    out.update({c: _sig(result[c], 5) for c in STD_COLUMNS if _finite(result.get(c))})
    return out


def mark_against_reference(table, reference_of):
    """fid_vs_reference: 'better' / 'worse' where a row's FID interval does not overlap that of the reference
    row of its objective (reference_of(row) -> that row, or None), 'overlaps' where it does, '' where a row
    is its own reference or an interval is missing."""
    for row in table:
        ref = reference_of(row)
        row["fid_vs_reference"] = ""
        if ref is None or ref is row or any(r.get(c) is None for r in (row, ref) for c in ("fid_ci_low", "fid_ci_high")):
            continue
        if row["fid_ci_high"] < ref["fid_ci_low"]:
            row["fid_vs_reference"] = f"better than {ref['model']}"
        elif row["fid_ci_low"] > ref["fid_ci_high"]:
            row["fid_vs_reference"] = f"worse than {ref['model']}"
        else:
            row["fid_vs_reference"] = "overlaps"
    return table


def with_interval(row, metric, digits=4):
    """'19.24 [16.19, 21.47]' for the Markdown tables."""
    value = row.get(metric)
    if value is None:
        return None
    low, high = row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
    text = f"{value:.{digits}g}"
    return text if low is None or high is None else f"{text} [{low:.{digits}g}, {high:.{digits}g}]"


def check_rows(rows, required=("model", "objective", "eval_json")):
    if not isinstance(rows, list) or not rows:
        raise ValueError("rows must be a non-empty list of dicts (model, objective, eval_json, ...)")
    for i, row in enumerate(rows):
        missing = [k for k in required if not row.get(k)]
        if missing:
            raise ValueError(f"row {i} ({row.get('model', '?')}) lacks {', '.join(missing)}")


# --- the ImageNet table -----------------------------------------------------------------------------
def imagenet_row(row):
    out = measured_columns(row)
    out.update(kind="measured", source="measured by this suite")
    out["model_overrides"] = json.dumps(row.get("model_overrides") or {}, sort_keys=True)
    out.update(paper_row(row["model"], row["objective"], row.get("train_steps")))
    return out


def build_imagenet_table(rows, out_csv, out_md, reference=True):
    """Write table_imagenet.csv and its .md; returns the table rows: ours in input order (kind measured),
    then, with reference=True, the published ImageNet-256 rows of paper_quality.REFERENCE (kind
    paper_only: their numbers sit in the paper_* columns, the measured ones are empty)."""
    check_rows(rows)
    measured = [imagenet_row(r) for r in rows]
    # The reference row of an objective: its first trained row (DiT-S/2 for ddpm, SiT-S/2 for sit by default).
    first = {}
    for row in measured:
        if row.get("train_steps") not in (0, "0"):
            first.setdefault(row["objective"], row)
    mark_against_reference(measured, lambda row: first.get(row["objective"]))
    table = measured + (reference_rows() if reference else [])
    write_csv(table, IMAGENET_COLUMNS, out_csv)
    md_columns = [c for c in IMAGENET_COLUMNS if c not in ("dataset", "scale", "feature_extractor", "paper_source",
                                                         "model_overrides", "eval_json", "source", "class_acc_note",
                                                         *CI_COLUMNS, "seeds", *STD_COLUMNS)]
    if any((r.get("seeds") or 1) > 1 for r in measured):   # several training seeds: their count and FID spread
        md_columns += ["seeds", "fid_std"]
    notes = [f"paper_* columns: {s}" for s in sorted({r["paper_source"] for r in table if r.get("paper_source")})]
    if reference:
        notes.append("kind paper_only: published ImageNet-256 numbers of models we did not run (MDT, VAR, DiT-XL/2 "
                     "and SiT-XL/2 with and without CFG), in the paper_* columns; source: the table named above")
    write_md(table, md_columns, out_md, "Class-conditional image generation", notes, header_rows=measured)
    return table


# --- the ablation table (paper Table 2) -------------------------------------------------------------
def ablation_switch(model, overrides, full_window=None):
    """(switch, value) that this row changes from the full model, or (None, None) for the full model.
    Read off the built config, so a default left implicit (compression_ratio None) still counts.
    full_window: the full model's windows when its row sets them (the plan's base row, e.g. (1,2,2) on
    the CPU default's 8 x 8 grid); else whatever gives 64 windows on this grid ((1,2,2) on 16 x 16)."""
    from ptdit import get_spec

    overrides = overrides or {}
    config = get_spec(model).build_config(**overrides)
    if not hasattr(config, "proxy_mode"):
        raise ValueError(f"ablation row {model}: Table 2 ablates PT-DiT models, not {type(config).__name__}")
    defaults = dict(DEFAULTS)
    defaults["compression_ratio"] = tuple(full_window) if full_window else built_window(
        model, {**overrides, "compression_ratio": None})
    current = {s: getattr(config, s) for s in SWITCHES if s != "compression_ratio"}
    current["compression_ratio"] = tuple(config.window)
    changed = [(s, normalise(s, v)) for s, v in current.items() if normalise(s, v) != defaults[s]]
    if len(changed) > 1:
        raise ValueError(f"ablation row {model} {overrides} changes {len(changed)} switches {changed}; "
                         "a Table 2 row changes one")
    return changed[0] if changed else (None, None)


def ablation_row(row, full_window=None):
    overrides = row.get("model_overrides") or {}
    out = measured_columns(row)
    if overrides.get("dynamic_ratio") is not None:     # issue 16: not in the paper; GFLOPs = mean over sampling
        switch, value = "dynamic_ratio", schedule_name(overrides["dynamic_ratio"])
        paper = {}
    else:
        switch, value = ablation_switch(row["model"], overrides, full_window)
        paper = paper_ablation(switch, value) if switch else paper_ablation("modules", "full")
    out.update(paper)
    if switch is None:   # the full model is the reference row of every group
        window = ",".join(map(str, full_window or built_window(row["model"], overrides)))
        out.update(group="full", setting=f"full model (mean proxy, cross-attention, ({window}))")
    elif not paper:      # a setting the paper did not run
        out.update(group=f"other ({switch})", setting=f"{switch} = {value}")
    out["overrides"] = json.dumps(overrides, sort_keys=True)
    for key in ("group", "setting"):
        if row.get(key):
            out[key] = row[key]
    return out


def group_rank(group):
    return GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER)


def build_ablation_table(rows, out_csv, out_md):
    """Write table_ablation.csv and its .md, rows ordered (a), (b), similarity, (c), (d), full model."""
    check_rows(rows)
    base = next((r for r in rows if r.get("variant") == "base"), None)   # the plan's full model, if marked
    full_window = built_window(base["model"], base.get("model_overrides")) if base else None
    table = sorted((ablation_row(r, full_window) for r in rows), key=lambda r: group_rank(r["group"]))
    full = next((r for r in table if r["group"] == "full"), None)   # every group's reference
    mark_against_reference(table, lambda row: full)
    write_csv(table, ABLATION_COLUMNS, out_csv)
    md_columns = [c for c in ABLATION_COLUMNS if c not in ("dataset", "scale", "feature_extractor", "objective",
                                                         "paper_source", "eval_json", "class_acc_note", *CI_COLUMNS)]
    recipe = ", ".join(f"{k} {v}" for k, v in ABLATION_RECIPE.items())
    notes = [f"paper_* columns: PT-DiT v2 Table 2 and the rebuttal's similarity row ({recipe}); "
             "the full model (FID 19.30) is the reference of every group"]
    write_md(table, md_columns, out_md, "Ablations of PT-DiT (paper Table 2)", notes)
    return table


# --- writing ----------------------------------------------------------------------------------------
def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def write_csv(table, columns, path):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in table:
        writer.writerow([_cell(row.get(c)) for c in columns])
    atomic_text(str(path), buffer.getvalue())


def scale_header(table):
    """The line that keeps stand-in numbers from being read as ImageNet-256 / Inception numbers."""
    def values(key):
        return ", ".join(sorted({str(r.get(key)) for r in table}))
    line = (f"**Scale: {values('scale')}; dataset: {values('dataset')}; feature extractor: "
            f"{values('feature_extractor')}.**")
    if any(r.get("scale") != "paper" or r.get("feature_extractor") != "inception" for r in table):
        line += (" These are not ImageNet-256 FID-50K numbers: the measured metrics use the data and feature "
                 "network named here, so compare rankings with the paper_* columns, not values.")
    return line


def write_md(table, columns, path, title, notes=(), header_rows=None):
    """header_rows: the rows whose scale and extractor the header names (default: all)."""
    lines = [f"# {title}", "", scale_header(header_rows if header_rows is not None else table), ""]
    if any(r.get("fid_ci_low") is not None for r in table):
        notes = [*notes, "[low, high]: 95 % bootstrap intervals over the generated (and, for FID, the reference) "
                 "set; fid_vs_reference: whether a row's FID interval misses its reference row's"]
    lines += [f"- {note}" for note in notes]
    lines += ["", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table:
        cells = [with_interval(row, c) if c in CI_METRICS and row.get(f"{c}_ci_low") is not None else _cell(row.get(c))
                 for c in columns]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    text = "\n".join(lines) + "\n"
    atomic_text(str(path), text)
    # the same table as a page for `snakemake --report` (it shows HTML, not CSV)
    atomic_text(os.path.splitext(str(path))[0] + ".html", markdown_to_html(text))
