"""results/table_compression.csv (+ .md): PT-DiT's FID against its compression ratio and GFLOPs, for each
objective, with a dynamic ratio (ptdit/dynamic_ratio.py) and the DiT / SiT reference rows (issue 16: a
reviewer asked for Figs. 8 and 9 with FID and compression ratio).

Rows come as `ptdit report-imagenet` rows (evaluation/report/imagenet.py) plus `role`: "pt-dit" for the
PT-DiT runs (evaluation/report/imagenet_plan.py compression_rows) or "reference" for the table rows that
draw the DiT line. The ratio is read off the model as built (its window), so a row left at the default
says (1,2,2) on a 16 x 16 grid; a dynamic row's GFLOPs are the mean over its sampler's calls.
"""

import json

from evaluation.report.imagenet import CI_COLUMNS, METRICS, check_rows, mark_against_reference, measured_columns, write_csv, write_md
from evaluation.report.imagenet_plan import built_window
from ptdit.dynamic_ratio import schedule_name

ROLES = ("pt-dit", "reference")
COLUMNS = (["model", "objective", "role", "compression_ratio", "dynamic_ratio", "gflops", "params_M", "fid", "fid_ci_low",
            "fid_ci_high", "class_acc", "class_acc_ci_low", "class_acc_ci_high", "fid_vs_reference", "train_steps",
            "sampler", "sample_steps", "cfg", "dataset", "scale", "feature_extractor", "num_samples"]
           + [m for m in METRICS if m != "fid"]
           + [c for c in CI_COLUMNS if not c.startswith(("fid_", "class_acc_"))] + ["model_overrides", "eval_json"])


def ratio_columns(row):
    """compression_ratio ('1x4x4', 'dynamic' or '' for a reference row) and the dynamic schedule's name."""
    overrides = row.get("model_overrides") or {}
    if row["role"] == "reference":
        return {"compression_ratio": "", "dynamic_ratio": ""}
    if overrides.get("dynamic_ratio") is not None:
        return {"compression_ratio": "dynamic", "dynamic_ratio": schedule_name(overrides["dynamic_ratio"])}
    return {"compression_ratio": "x".join(map(str, built_window(row["model"], overrides))), "dynamic_ratio": ""}


def compression_row(row):
    if row.get("role") not in ROLES:
        raise ValueError(f"compression row {row.get('model')} ({row.get('objective')}) has role {row.get('role')!r}; "
                         f"expected one of {ROLES}")
    out = measured_columns(row)
    out.update(role=row["role"], model_overrides=json.dumps(row.get("model_overrides") or {}, sort_keys=True))
    out.update(ratio_columns(row))
    return out


def build_compression_table(rows, out_csv, out_md):
    """Write table_compression.csv and its .md (rows in input order); returns the table rows.
    fid_vs_reference compares each PT-DiT row's FID interval with the reference row of its objective."""
    check_rows(rows)
    table = [compression_row(r) for r in rows]
    reference = {}
    for row in table:
        if row["role"] == "reference":
            reference.setdefault(row["objective"], row)
    mark_against_reference(table, lambda row: reference.get(row["objective"]))
    write_csv(table, COLUMNS, out_csv)
    md_columns = ["model", "objective", "role", "compression_ratio", "dynamic_ratio", "gflops", "params_M", "fid",
                  "class_acc", "fid_vs_reference", "train_steps", "sampler", "sample_steps", "cfg"]
    notes = ["compression_ratio: PT-DiT's window = proxy pooling size (pf, ph, pw); dynamic: the ratio chosen by noise "
             "level (dynamic_ratio: ratio@upper bound of the noise fraction), GFLOPs the mean over the sampler's calls",
             "role reference: the table's DiT / SiT runs (the reference line of figures/fid_vs_compression)"]
    write_md(table, md_columns, out_md, "FID against PT-DiT's compression ratio", notes)
    return table
