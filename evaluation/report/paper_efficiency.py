"""Every efficiency number the PT-DiT paper (and the DiT / DAM papers it compares with) publishes, as
data. Sources: /work/shared/reference/pt-dit.md and baselines.md.

A number is keyed by the zoo's model name where the zoo has the model (DiT-S -> DiT-S/2, DAM-B ->
DAM-B/2-n64, ...), else by the paper's own label. Where two sources print different values for the
same quantity, the first one listed is the table's `paper_*` value and the others stay here as
`ALTERNATIVES` (e.g. DiT-B at 256 px: 23.01 in DiT's Table 4, 23.0 in the PT-DiT rebuttal).
A model pattern with '*' (fnmatch) applies to every matching zoo model: Eq. 4 describes PT-DiT's
attention, not one model size.
"""

import fnmatch
from dataclasses import dataclass

QUANTITIES = ("gflops", "params_M", "train_steps_per_s", "infer_steps_per_s", "attn_cost_pct")


@dataclass(frozen=True)
class PaperNumber:
    model: str               # zoo name (or fnmatch pattern, or the paper's label if not in the zoo)
    resolution: int | None   # pixels; None = independent of resolution (params)
    quantity: str            # one of QUANTITIES
    value: float
    source: str
    paper_label: str = ""    # the paper's name of the model, when it differs from `model`
    note: str = ""


def _series(model, quantity, values, resolutions, source, label="", note=""):
    return [PaperNumber(model, r, quantity, v, source, label, note) for r, v in zip(resolutions, values)]


DIT_T4 = "DiT paper Table 4"
REBUTTAL = "PT-DiT rebuttal"
V2_FIG2 = "PT-DiT v2 Fig. 2"
EQ4 = "PT-DiT Eq. 4"
SPEED = "PT-DiT rebuttal (their GPU, unnamed)"
R3 = (256, 512, 1024)
R4 = (256, 512, 1024, 2048)

NUMBERS = [
    # DiT (DiT Table 4, patch 2, 256 px) and the rebuttal's DiT-B at 512 / 1024.
    PaperNumber("DiT-S/2", 256, "gflops", 6.06, DIT_T4, "DiT-S"),
    PaperNumber("DiT-B/2", 256, "gflops", 23.01, DIT_T4, "DiT-B"),
    PaperNumber("DiT-L/2", 256, "gflops", 80.71, DIT_T4, "DiT-L"),
    PaperNumber("DiT-XL/2", 256, "gflops", 118.64, DIT_T4, "DiT-XL"),
    PaperNumber("DiT-B/2", 512, "gflops", 106.5, REBUTTAL, "DiT-B"),
    PaperNumber("DiT-B/2", 1024, "gflops", 650.2, REBUTTAL, "DiT-B"),
    PaperNumber("DiT-S/2", None, "params_M", 33.1, REBUTTAL, "DiT-S"),
    PaperNumber("DiT-B/2", None, "params_M", 131.0, REBUTTAL, "DiT-B"),
    PaperNumber("DiT-L/2", None, "params_M", 458.1, "DiT models.py (official count)", "DiT-L"),
    PaperNumber("DiT-XL/2", None, "params_M", 675.0, "DiT paper / PT-DiT rebuttal", "DiT-XL"),
    # DAM-B (the rebuttal quotes it at three resolutions; DAM's paper prints 22.4 / 132.1M at 256).
    *_series("DAM-B/2-n64", "gflops", (22.5, 90.1, 360.6), R3, REBUTTAL, "DAM-B"),
    PaperNumber("DAM-B/2-n64", None, "params_M", 132.1, "DAM paper", "DAM-B"),
    # PT-DiT class-conditional models (rebuttal).
    PaperNumber("PT-DiT/S-Class", 256, "gflops", 3.8, REBUTTAL),
    PaperNumber("PT-DiT/S-Class", None, "params_M", 32.5, REBUTTAL),
    *_series("PT-DiT/B-Class", "gflops", (18.3, 68.6, 269.6), R3, REBUTTAL),
    PaperNumber("PT-DiT/B-Class", None, "params_M", 152.0, REBUTTAL),
    PaperNumber("PT-DiT/L-Class", 256, "gflops", 82.6, REBUTTAL),
    PaperNumber("PT-DiT/L-Class", None, "params_M", 693.0, REBUTTAL),
    # Speed, PT-DiT/S-Class vs DiT-S: training at batch 32, inference at batch 1.
    PaperNumber("DiT-S/2", 256, "train_steps_per_s", 3.6, SPEED, "DiT-S", "batch 32"),
    PaperNumber("PT-DiT/S-Class", 256, "train_steps_per_s", 4.3, SPEED, "", "batch 32"),
    PaperNumber("DiT-S/2", 256, "infer_steps_per_s", 11.76, SPEED, "DiT-S", "batch 1"),
    PaperNumber("PT-DiT/S-Class", 256, "infer_steps_per_s", 16.12, SPEED, "", "batch 1"),
    # Eq. 4: PT-DiT's attention cost as a share of full self-attention.
    *_series("PT-DiT*", "attn_cost_pct", (34.3, 9.7, 4.7, 2.3), R4, EQ4),
    # Fig. 2, text-to-image models (v2 paper). PT-DiT/L-0.6B is the L size of Table 4 (28 x 864).
    *_series("PixArt-alpha-0.6B", "gflops", (142.8, 542.5, 2141.2, 8536.1), R4, V2_FIG2),
    *_series("PT-DiT/L-T2I", "gflops", (101.7, 366.1, 1423.9, 5664.9), R4, V2_FIG2, "PT-DiT/L-0.6B"),
    *_series("Lumina-Next-1.7B", "gflops", (1513.9, 6061.5, 24027.7, 96069.1), R4, V2_FIG2),
    *_series("PT-DiT/H-T2I", "gflops", (302.1, 1089.1, 4236.9, 16828.3), R4, V2_FIG2, "PT-DiT/H"),
]

# Other printings of a number already in NUMBERS (kept so that nothing published is lost).
ALTERNATIVES = [
    PaperNumber("DiT-S/2", 256, "gflops", 6.1, REBUTTAL, "DiT-S"),
    PaperNumber("DiT-B/2", 256, "gflops", 23.0, REBUTTAL, "DiT-B"),
    PaperNumber("DiT-XL/2", 256, "gflops", 118.7, REBUTTAL, "DiT-XL", "also printed as 118.69"),
    PaperNumber("DAM-B/2-n64", 256, "gflops", 22.4, "DAM paper", "DAM-B"),
    PaperNumber("PT-DiT/S-Class", 256, "gflops", 3.82, REBUTTAL, "", "another rebuttal table; 3.86 in a third"),
    PaperNumber("PT-DiT/S-Class", None, "params_M", 32.6, REBUTTAL, "", "another rebuttal table"),
    PaperNumber("PT-DiT/L-Class", 256, "gflops", 82.64, REBUTTAL),
]

# Ratio claims: (claim, value, numerator model, denominator model, quantity, resolution, source).
RATIO_CLAIMS = [
    ("training speed-up of PT-DiT/S-Class over DiT-S (batch 32)", 1.19,
     "PT-DiT/S-Class", "DiT-S/2", "train_steps_per_s", 256, SPEED),
    ("inference speed-up of PT-DiT/S-Class over DiT-S (batch 1)", 1.37,
     "PT-DiT/S-Class", "DiT-S/2", "infer_steps_per_s", 256, SPEED),
    ("GFLOPs of DiT-B over PT-DiT/B-Class at 1024 px", 2.41,
     "DiT-B/2", "PT-DiT/B-Class", "gflops", 1024, REBUTTAL + " (650.2 / 269.6)"),
    ("GFLOPs of DiT-XL over PT-DiT/L-Class at 256 px", 1.44,
     "DiT-XL/2", "PT-DiT/L-Class", "gflops", 256, REBUTTAL + " (118.7 / 82.6)"),
    # Fig. 2 counts without the attention matmuls (evaluation/efficiency/flop_breakdown.py): ours both ways.
    ("GFLOPs of PixArt-alpha-0.6B over PT-DiT/L-0.6B at 2048 px, Fig. 2 count (no attention matmuls)", 1.51,
     "PixArt-alpha-0.6B", "PT-DiT/L-T2I", "gflops_no_attn", 2048, V2_FIG2 + " (8536.1 / 5664.9)"),
    ("GFLOPs of PixArt-alpha-0.6B over PT-DiT/L-0.6B at 2048 px, DiT convention", 1.51,
     "PixArt-alpha-0.6B", "PT-DiT/L-T2I", "gflops", 2048, V2_FIG2 + " (8536.1 / 5664.9)"),
]


def matches(number, model, resolution):
    """Does `number` describe this model at this resolution? (params hold at every resolution,
    but the table shows them on the 256 px row, the resolution at which papers quote them)."""
    if not fnmatch.fnmatchcase(model, number.model):
        return False
    return number.resolution == resolution or (number.resolution is None and resolution == 256)


def paper_values(model, resolution):
    """{quantity: PaperNumber} of the first-listed number for each quantity of this point."""
    found = {}
    for number in NUMBERS:
        if matches(number, model, resolution) and number.quantity not in found:
            found[number.quantity] = number
    return found


def paper_points():
    """(model, resolution) of every concrete paper number (patterns excluded), in listed order."""
    points = []
    for number in NUMBERS:
        point = (number.model, number.resolution or 256)
        if "*" not in number.model and point not in points:
            points.append(point)
    return points
