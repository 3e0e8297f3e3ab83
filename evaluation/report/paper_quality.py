"""Every image-quality number (FID, sFID, IS, precision, recall) that the PT-DiT paper and the baselines
it compares with publish, as data. Sources: /work/shared/reference/pt-dit.md and baselines.md.

A number is keyed by the zoo's model name (ptdit.list_models()) and the training objective:
"ddpm" = DiT's codebase (eps-prediction DDPM), "sit" = SiT's codebase (interpolant transport).
The rebuttal's "DiT-S" is DiT-S/2, "DAM-S" is DAM-S/2-n64 (the mediator count DAM's paper reports
53.57 for). Where two sources print a number for the same (model, objective), the first one listed
wins `paper_row` and the rest stay in QUALITY for anyone who wants them: the rebuttal first (it is
the comparison PT-DiT makes), then the baselines' own papers.

Efficiency numbers (params, GFLOPs, speed) live in evaluation/report/paper_efficiency.py; a quality entry that
does not print its own params/GFLOPs borrows that file's 256 px values.
"""

from dataclasses import dataclass

OBJECTIVES = ("ddpm", "sit")
METRICS = ("fid", "sfid", "is", "precision", "recall")


@dataclass(frozen=True)
class PaperQuality:
    model: str                      # zoo name
    objective: str                  # ddpm | sit
    train_steps: int
    fid: float
    source: str
    sfid: float | None = None
    is_: float | None = None        # Inception Score ("is" is a Python keyword)
    precision: float | None = None
    recall: float | None = None
    params_M: float | None = None   # as the source prints it beside the FID
    gflops: float | None = None
    paper_label: str = ""           # the source's name of the model
    note: str = ""


REBUTTAL = "PT-DiT rebuttal (ImageNet-256, FID-50K, no CFG)"
DIT_T4 = "DiT paper Table 4 (400k, no CFG, 250 DDPM steps)"
SIT_400K = "SiT paper (400k, no CFG, SDE 250 steps)"
DAM = "DAM paper (SiT-S/2 codebase, 400k)"

Q = PaperQuality
QUALITY = [
    # The rebuttal's ImageNet-256 table: same recipe as each baseline, FID-50K, no CFG.
    Q("DiT-S/2", "ddpm", 400_000, 68.40, REBUTTAL, params_M=33.1, gflops=6.1, paper_label="DiT-S"),
    Q("PT-DiT/S-Class", "ddpm", 400_000, 65.86, REBUTTAL, 11.29, 22.09, 0.37, 0.57, 32.5, 3.8,
      note="DiT codebase"),
    Q("SiT-S/2", "sit", 400_000, 58.61, REBUTTAL, 9.25, 24.21, 0.41, 0.59, 33.1, 6.1, "SiT-S",
      note="DAM's rerun of SiT-S; DAM's paper prints IS 24.31"),
    Q("DAM-S/2-n64", "sit", 400_000, 53.57, REBUTTAL, 9.01, 27.26, 0.43, 0.61, 33.1, 5.8, "DAM-S"),
    Q("PT-DiT/S-Class", "sit", 400_000, 55.05, REBUTTAL, 9.37, 26.86, 0.42, 0.59, 32.5, 3.8,
      note="SiT codebase"),
    Q("DiT-XL/2", "ddpm", 7_000_000, 9.62, REBUTTAL, 6.85, 121.50, 0.67, 0.67, 675.0, 118.7, "DiT-XL"),
    Q("SiT-XL/2", "sit", 7_000_000, 8.3, REBUTTAL, params_M=675.0, gflops=118.7, paper_label="SiT-XL"),
    Q("PT-DiT/L-Class", "ddpm", 2_000_000, 9.40, REBUTTAL, 6.17, 125.07, 0.68, 0.66, 693.0, 82.6),
    # DiT Table 4 at 400k steps (patch 2); params/GFLOPs from paper_efficiency.py.
    Q("DiT-S/2", "ddpm", 400_000, 68.4, DIT_T4, paper_label="DiT-S/2"),
    Q("DiT-B/2", "ddpm", 400_000, 43.5, DIT_T4, paper_label="DiT-B/2"),
    Q("DiT-L/2", "ddpm", 400_000, 23.3, DIT_T4, paper_label="DiT-L/2"),
    Q("DiT-XL/2", "ddpm", 400_000, 19.5, DIT_T4, paper_label="DiT-XL/2"),
    # SiT at 400k steps (DiT's backbone, so DiT's params/GFLOPs from paper_efficiency.py).
    Q("SiT-S/2", "sit", 400_000, 57.6, SIT_400K, paper_label="SiT-S/2"),
    Q("SiT-B/2", "sit", 400_000, 33.0, SIT_400K, paper_label="SiT-B/2"),
    Q("SiT-L/2", "sit", 400_000, 18.8, SIT_400K, paper_label="SiT-L/2"),
    Q("SiT-XL/2", "sit", 400_000, 17.2, SIT_400K, paper_label="SiT-XL/2"),
    # DAM's mediator-count study (S/2, SiT codebase, 400k).
    Q("DAM-S/2-n4", "sit", 400_000, 57.67, DAM, params_M=33.06, gflops=5.49, paper_label="DAM-S n=4"),
    Q("DAM-S/2-n16", "sit", 400_000, 54.55, DAM, params_M=33.20, gflops=5.55, paper_label="DAM-S n=16"),
    Q("DAM-S/2-n64", "sit", 400_000, 53.57, DAM, 9.01, 27.26, params_M=33.76, gflops=5.78,
      paper_label="DAM-S n=64"),
]


def _efficiency_fallback(model):
    """params_M / gflops at 256 px from the efficiency numbers, for sources that print only FIDs."""
    from evaluation.report.paper_efficiency import paper_values

    # SiT is DiT's backbone with another objective: same params and GFLOPs (baselines.md).
    if model.startswith("SiT-"):
        model = "DiT-" + model[len("SiT-"):]
    values = paper_values(model, 256)
    return {k: values[k].value for k in ("params_M", "gflops") if k in values}


def as_row(entry):
    """A PaperQuality as the table's paper_* columns (None where the source prints nothing)."""
    row = {"paper_train_steps": entry.train_steps, "paper_params_M": entry.params_M, "paper_gflops": entry.gflops,
           "paper_fid": entry.fid, "paper_sfid": entry.sfid, "paper_is": entry.is_,
           "paper_precision": entry.precision, "paper_recall": entry.recall, "paper_source": entry.source}
    for key, value in _efficiency_fallback(entry.model).items():
        if row[f"paper_{key}"] is None:
            row[f"paper_{key}"] = value
    return row


def paper_entries(model_name, objective):
    """Every published quality entry of this (model, objective), first-listed first."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {OBJECTIVES}")
    return [q for q in QUALITY if q.model == model_name and q.objective == objective]


def paper_row(model_name, objective, train_steps=None):
    """The paper_* values of this (model, objective), or {} if nobody published one.

    Without train_steps the first-listed entry wins (DiT-XL/2 ddpm -> the rebuttal's 9.62 at 7M
    steps); with it, an entry at exactly that step count is preferred (DiT-XL/2 at 400k -> 19.5).
    """
    entries = paper_entries(model_name, objective)
    same_steps = [q for q in entries if q.train_steps == train_steps]
    chosen = (same_steps or entries)[:1]
    return as_row(chosen[0]) if chosen else {}


# --- Table 2 ablations (v2 paper; S-Class, 400k steps, batch 256, CFG 6.0, 50 sampling steps) --------
ABLATION_SOURCE = "PT-DiT v2 Table 2 (S-Class, 400k, CFG 6.0, 50 steps, FID-50K)"
SIMILARITY_SOURCE = "PT-DiT rebuttal (similarity proxy)"
ABLATION_RECIPE = {"train_steps": 400_000, "batch": 256, "cfg": 6.0, "sample_steps": 50}
FULL_MODEL_FID = 19.30
# The rebuttal: similarity proxies raise the S-Class from 3.82 to 4.01 GFLOPs at 32.6M params.
FULL_MODEL_GFLOPS, FULL_MODEL_PARAMS_M = 3.82, 32.6


@dataclass(frozen=True)
class PaperAblation:
    group: str           # (a) modules, (b) proxy extraction, (c) global injection, (d) compression, similarity
    switch: str          # the PTDiTConfig field the row changes
    value: object        # its value in that row (compression_ratio as a tuple)
    setting: str         # the paper's wording
    fid: float
    source: str = ABLATION_SOURCE
    gflops: float | None = None
    params_M: float | None = None


A = PaperAblation
ABLATIONS = [
    A("(a)", "modules", "full", "full model (GIIM + TCM)", FULL_MODEL_FID, gflops=FULL_MODEL_GFLOPS,
      params_M=FULL_MODEL_PARAMS_M),
    A("(a)", "modules", "no_giim", "w/o GIIM", 23.71),
    A("(a)", "modules", "no_swa", "w/o SWA (shifted windows)", 23.59),
    A("(a)", "modules", "no_tcm", "w/o TCM", 69.07),
    A("(b)", "proxy_mode", "mean", "proxy = window average", FULL_MODEL_FID, gflops=FULL_MODEL_GFLOPS,
      params_M=FULL_MODEL_PARAMS_M),
    A("(b)", "proxy_mode", "top_left", "proxy = top-left token", 20.84),
    A("(b)", "proxy_mode", "random", "proxy = random token", 21.00),
    A("similarity", "proxy_mode", "similarity", "proxy = most similar token (cosine)", 19.25, SIMILARITY_SOURCE,
      gflops=4.01, params_M=32.6),
    A("(c)", "injection", "cross_attention", "injection = cross-attention", FULL_MODEL_FID,
      gflops=FULL_MODEL_GFLOPS, params_M=FULL_MODEL_PARAMS_M),
    A("(c)", "injection", "interpolation", "injection = interpolation", 21.82),
    A("(c)", "injection", "linear", "injection = linear", 20.24),
    A("(d)", "compression_ratio", (1, 2, 2), "compression ratio (1,2,2)", FULL_MODEL_FID,
      gflops=FULL_MODEL_GFLOPS, params_M=FULL_MODEL_PARAMS_M),
    A("(d)", "compression_ratio", (1, 4, 4), "compression ratio (1,4,4)", 21.24),
    A("(d)", "compression_ratio", (1, 8, 8), "compression ratio (1,8,8)", 20.43),
]
SWITCHES = ("modules", "proxy_mode", "injection", "compression_ratio")
DEFAULTS = {"modules": "full", "proxy_mode": "mean", "injection": "cross_attention", "compression_ratio": (1, 2, 2)}


def normalise(switch, value):
    """compression_ratio may come as [1, 4, 4], (1, 4, 4) or '1,4,4' (YAML, CLI); the others are strings."""
    if switch == "compression_ratio":
        parts = value.replace("(", "").replace(")", "").split(",") if isinstance(value, str) else value
        return tuple(int(p) for p in parts)
    return value


def ablation_entry(switch, value):
    """The PaperAblation of this switch value, or None."""
    if switch not in SWITCHES:
        raise ValueError(f"unknown ablation switch {switch!r}; choose one of {SWITCHES}")
    value = normalise(switch, value)
    return next((a for a in ABLATIONS if a.switch == switch and a.value == value), None)


def paper_ablation(switch, value):
    """{group, setting, paper_fid, paper_gflops, paper_params_M, paper_source} or {} if unpublished."""
    entry = ablation_entry(switch, value)
    if entry is None:
        return {}
    return {"group": entry.group, "setting": entry.setting, "paper_fid": entry.fid, "paper_gflops": entry.gflops,
            "paper_params_M": entry.params_M, "paper_source": entry.source}
