"""results/table_ucf101.csv and results/table_msrvtt.csv (+ .md): one row per trained and evaluated video
model, our measured numbers beside the rebuttal's (evaluation/report/paper_video.py).

A row (a dict, as the Snakemake report rule writes it to rows.yaml; same keys as the ImageNet table):
    model: PT-DiT/S-Video           # registered video name (Full3D-/Factorized-/PT-DiT ... -Video | -T2V)
    objective: ddpm                 # ddpm | sit
    train_steps: 2000
    sampler: ddpm                   # as the sample step ran it
    sample_steps: 50
    cfg: 1.0
    eval_json: results/eval/....json  # evaluation/metrics/video_evaluate.py output
    model_overrides: {depth: 2, hidden_size: 64, input_size: 32, num_frames: 16, ...}   # the model as trained
    dataset: ucf101-standin         # optional; default the table's dataset
    scale: default                  # default | paper
params_M and gflops are those of the model as trained (overrides applied) at its trained input shape, in
DiT's convention (evaluation/efficiency/flops.py: one forward, batch 1, no CFG, multiply-add = 1 FLOP); the paper_*
values are the rebuttal's at 256x256x16 after 40k WebVid steps. At the default scale every measured
metric comes from a stand-in network (named in the extractor columns), so the .md header says so.
"""

import json
import math

from evaluation.report.imagenet import _cell, _sig, average_seeds, check_rows, with_interval, write_csv
from evaluation.report.paper_video import ATTENTION_LABELS, DATASET_METRICS, attention_of, check_dataset, qihoo_note
from ptdit.atomic import atomic_text

EXTRACTOR_COLUMNS = {"ucf101": ["fvd_extractor", "is_extractor", "fid_extractor"],
                     "msrvtt": ["fvd_extractor", "clip_model"]}
RECIPE = ["model", "attention", "objective", "train_steps", "sampler", "sample_steps", "cfg"]
ATTENTION_ORDER = ("3d-full", "2d+1d", "pt-dit")
# Whether the samples show the sources at all (evaluation/metrics/video_sample_checks.py, issue 17); empty where
# the evaluation had no class network.
SAMPLE_CHECKS = ["class_acc", "real_class_acc", "frame_corr", "real_frame_corr", "frame_corr_gap", "pixel_corr",
                 "real_pixel_corr"]
# 95 % bootstrap intervals over the clips (<key>_ci_low / _ci_high in the CSV, "v [low, high]" in the .md)
INTERVAL_CHECKS = ["class_acc", "frame_corr", "real_frame_corr", "frame_corr_gap"]
INTERVAL_COLUMNS = [f"{k}_ci_{side}" for k in INTERVAL_CHECKS for side in ("low", "high")]


def columns(dataset):
    metrics = list(DATASET_METRICS[dataset])
    return (["dataset", "scale", *EXTRACTOR_COLUMNS[dataset], *RECIPE, "params_M", "gflops", *metrics,
             *SAMPLE_CHECKS, *INTERVAL_COLUMNS, "num_samples", "num_frames", "image_size", "seeds",
             *seed_std_columns(dataset)] + [f"paper_{m}" for m in metrics]
            + ["paper_source", "model_overrides", "eval_json"])


def _finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_video_eval(path, dataset):
    """The result of one `ptdit evaluate-video` JSON; a missing file, metric or extractor, or a non-finite
    value stops with the file's name and the fix."""
    metrics = DATASET_METRICS[dataset]
    try:
        with open(path) as f:
            result = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"eval JSON {path} not found: run `ptdit evaluate-video ... --out {path}` first")
    except json.JSONDecodeError as err:
        raise ValueError(f"eval JSON {path} is not valid JSON ({err}); re-run ptdit evaluate-video")
    if not isinstance(result, dict):
        raise ValueError(f"eval JSON {path}: expected an object of metrics, got {type(result).__name__}")
    missing = [m for m in metrics if m not in result]
    if missing:
        raise ValueError(f"eval JSON {path} has no {', '.join(missing)} ({dataset} tables need "
                         f"--metrics {','.join(metrics)})")
    bad = [f"{m}={result[m]!r}" for m in metrics if not _finite(result[m])]
    if bad:
        raise ValueError(f"eval JSON {path} has non-finite metrics: {', '.join(bad)}")
    return result


_COST_CACHE = {}


def measured_cost(model, overrides):
    """(params_M, GFLOPs) of the video model as trained, built on the meta device. Text models give their
    own example inputs (text features); class models take DiT's (x, t, y)."""
    key = (model, json.dumps(overrides or {}, sort_keys=True))
    if key not in _COST_CACHE:
        import torch

        from evaluation.efficiency.flops import count_flops, count_params, example_inputs
        from ptdit import create_model

        with torch.device("meta"):
            net = create_model(model, **(overrides or {}))
        inputs = net.example_inputs(1, "meta") if hasattr(net, "example_inputs") else example_inputs(net)
        _COST_CACHE[key] = (count_params(net) / 1e6, count_flops(net, inputs) / 1e9)
    return _COST_CACHE[key]


def seed_std_metrics(dataset):
    """The metrics whose spread between training seeds the table shows (<m>_std)."""
    return (*DATASET_METRICS[dataset], "class_acc", "frame_corr", "frame_corr_gap")


def seed_std_columns(dataset):
    return [f"{m}_std" for m in seed_std_metrics(dataset)]


def seed_mean(paths, dataset):
    """One result from the eval JSONs of a row's training seeds: every number the table shows is the mean over
    seeds (interval bounds too: the typical size of one run's sampling error, as the ImageNet table's
    evaluation/report/imagenet.py seed_mean), `<m>_std` the standard deviation between trainings (ddof=1)."""
    return average_seeds([read_video_eval(p, dataset) for p in paths],
                         (*DATASET_METRICS[dataset], *SAMPLE_CHECKS, *INTERVAL_COLUMNS), seed_std_metrics(dataset))


def video_row(row, dataset):
    from evaluation.report.paper_video import paper_video_row

    result = seed_mean(row.get("eval_jsons") or [row["eval_json"]], dataset)
    params_M, gflops = measured_cost(row["model"], row.get("model_overrides"))
    out = {key: row.get(key) for key in ("scale", "model", "objective", "train_steps", "sampler", "sample_steps",
                                         "cfg", "eval_json")}
    out.update(dataset=row.get("dataset") or dataset, attention=ATTENTION_LABELS[attention_of(row["model"])],
               params_M=_sig(params_M), gflops=_sig(gflops), num_samples=result.get("num_samples"),
               num_frames=result.get("num_frames"), image_size=result.get("image_size"),
               model_overrides=json.dumps(row.get("model_overrides") or {}, sort_keys=True))
    for col in EXTRACTOR_COLUMNS[dataset]:
        if not result.get(col):
            raise ValueError(f"eval JSON {row['eval_json']} does not name its {col}; re-run ptdit evaluate-video")
        out[col] = result[col]
    out.update({m: _sig(result[m], 5) for m in DATASET_METRICS[dataset]})
    out.update({k: _sig(result[k], 3) if _finite(result.get(k)) else None for k in SAMPLE_CHECKS + INTERVAL_COLUMNS})
    out["seeds"] = result["seeds"]
    out.update({k: _sig(result[k], 3) if _finite(result.get(k)) else None for k in seed_std_columns(dataset)})
    out.update(paper_video_row(row["model"], dataset))
    return out


def _rank(row):
    label = row["attention"]
    kinds = [k for k in ATTENTION_ORDER if ATTENTION_LABELS[k] == label]
    return ATTENTION_ORDER.index(kinds[0]) if kinds else len(ATTENTION_ORDER)


def scale_line(table, dataset):
    """Which data and networks produced the measured numbers: stand-in numbers are not UCF-101 / MSR-VTT
    numbers, and say so."""
    def values(key):
        return ", ".join(sorted({str(r.get(key)) for r in table}))
    extractors = "; ".join(f"{c.replace('_', ' ')}: {values(c)}" for c in EXTRACTOR_COLUMNS[dataset])
    line = f"**Scale: {values('scale')}; dataset: {values('dataset')}; {extractors}.**"
    if any(r.get("scale") != "paper" for r in table):
        line += (" The measured metrics use the data and feature networks named here (stand-in networks trained "
                 "on the stand-in's training split), so compare rankings with the paper_* columns, not values.")
    return line


def md_cell(row, col):
    text = with_interval(row, col, 3) if col in INTERVAL_CHECKS and row.get(col) is not None else _cell(row.get(col))
    return text.replace("|", "/")


def build_video_table(rows, dataset, out_csv, out_md):
    """Write table_<dataset>.csv and its .md (3D full, 2D + 1D, PT-DiT order); returns the table rows."""
    check_dataset(dataset)
    check_rows(rows)
    table = sorted((video_row(r, dataset) for r in rows), key=_rank)
    cols = columns(dataset)
    write_csv(table, cols, out_csv)
    several = any((r.get("seeds") or 1) > 1 for r in table)   # else the seed columns would be empty
    md_cols = [c for c in cols if c not in ("dataset", "scale", *EXTRACTOR_COLUMNS[dataset], "paper_source",
                                            "model_overrides", "eval_json", *INTERVAL_COLUMNS)
               and (several or c not in ("seeds", *seed_std_columns(dataset)))]
    title = {"ucf101": "Class-conditional video generation, UCF-101 (FVD, IS, frame FID)",
             "msrvtt": "Text-to-video generation, MSR-VTT (FVD, CLIPSIM)"}[dataset]
    notes = [f"paper_* columns: {s}" for s in sorted({r["paper_source"] for r in table if r.get("paper_source")})]
    notes.append(qihoo_note(dataset))
    notes.append("[low, high]: 95 % bootstrap intervals over the clips; frame_corr_gap = frame_corr - "
                 "real_frame_corr (> 0: stiller than the real clips, < 0: flickering)")
    if several:
        notes.append("seeds > 1: every value and interval bound is the mean over the row's training seeds, "
                     "<metric>_std the standard deviation between them")
    lines = [f"# {title}", "", scale_line(table, dataset), ""] + [f"- {note}" for note in notes]
    lines += ["", "| " + " | ".join(md_cols) + " |", "|" + "---|" * len(md_cols)]
    lines += ["| " + " | ".join(md_cell(r, c) for c in md_cols) + " |" for r in table]
    atomic_text(str(out_md), "\n".join(lines) + "\n")
    return table
