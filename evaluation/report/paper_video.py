"""The video numbers the PT-DiT paper publishes, as data (source: /work/shared/reference/pt-dit.md).

Rebuttal table (256x256x16 clips, every model trained 40k steps at batch 256 on WebVid, then evaluated
on UCF-101 and MSR-VTT), one row per attention of the same skeleton and size:
    | attention | UCF-101 FVD | IS    | FID   | MSR-VTT FVD | CLIPSIM |
    | 3D full   | 631.02      | 28.36 | 66.37 | 438.63      | 0.2295  |
    | 2D + 1D   | 679.30      | 25.64 | 71.23 | 509.36      | 0.2242  |
    | PT-DiT    | 598.21      | 29.85 | 64.96 | 409.34      | 0.2331  |
Paper v2, the full Qihoo-T2V model: UCF-101 FVD 384.03, IS 35.19, FID 51.95; MSR-VTT FVD 375.23,
CLIPSIM 0.2349. CLIPSIM is a raw cosine (not x100). The rebuttal does not name the model size, the
evaluation clip counts or the feature networks; the usual protocols are StyleGAN-V's FVD (I3D) and
video IS (UCF-101 C3D), Inception FID on frames, and CLIP ViT-B/32 for CLIPSIM (evaluation/metrics/video_evaluate.py).

Our zoo names a video model by its attention (ptdit/registry.py, the video contract):
    Full3D-<S|B|XL>/2-Video, Full3D-<size>/2-T2V         -> 3-D full attention ("3d-full")
    Factorized-<size>/2-Video, Factorized-<size>/2-T2V   -> 2-D + 1-D attention ("2d+1d")
    PT-DiT/<size>-Video, PT-DiT/<size>-T2V               -> PT-DiT ("pt-dit")
"""

import re
from dataclasses import dataclass

REBUTTAL = "PT-DiT rebuttal video table (256x256x16, trained 40k steps at batch 256 on WebVid)"
V2_QIHOO = "PT-DiT paper v2, full Qihoo-T2V model"
DATASETS = ("ucf101", "msrvtt")
ATTENTIONS = ("3d-full", "2d+1d", "pt-dit")
ATTENTION_LABELS = {"3d-full": "3D full", "2d+1d": "2D + 1D", "pt-dit": "PT-DiT"}
DATASET_METRICS = {"ucf101": ("fvd", "is", "fid"), "msrvtt": ("fvd", "clipsim")}


@dataclass(frozen=True)
class PaperVideo:
    attention: str       # 3d-full | 2d+1d | pt-dit | qihoo-t2v
    dataset: str         # ucf101 | msrvtt
    metrics: dict        # {"fvd": ..., "is": ..., "fid": ...} or {"fvd": ..., "clipsim": ...}
    source: str
    label: str           # the source's name of the row


PAPER_VIDEO = [
    PaperVideo("3d-full", "ucf101", {"fvd": 631.02, "is": 28.36, "fid": 66.37}, REBUTTAL, "3D full"),
    PaperVideo("2d+1d", "ucf101", {"fvd": 679.30, "is": 25.64, "fid": 71.23}, REBUTTAL, "2D + 1D"),
    PaperVideo("pt-dit", "ucf101", {"fvd": 598.21, "is": 29.85, "fid": 64.96}, REBUTTAL, "PT-DiT"),
    PaperVideo("3d-full", "msrvtt", {"fvd": 438.63, "clipsim": 0.2295}, REBUTTAL, "3D full"),
    PaperVideo("2d+1d", "msrvtt", {"fvd": 509.36, "clipsim": 0.2242}, REBUTTAL, "2D + 1D"),
    PaperVideo("pt-dit", "msrvtt", {"fvd": 409.34, "clipsim": 0.2331}, REBUTTAL, "PT-DiT"),
    # Not a row of our comparison (a different, much larger training run); kept for the tables' notes.
    PaperVideo("qihoo-t2v", "ucf101", {"fvd": 384.03, "is": 35.19, "fid": 51.95}, V2_QIHOO, "Qihoo-T2V"),
    PaperVideo("qihoo-t2v", "msrvtt", {"fvd": 375.23, "clipsim": 0.2349}, V2_QIHOO, "Qihoo-T2V"),
]

_PATTERNS = (
    (re.compile(r"^Full3D-[A-Za-z]+/\d+-(Video|T2V)$"), "3d-full"),
    (re.compile(r"^Factorized-[A-Za-z]+/\d+-(Video|T2V)$"), "2d+1d"),
    (re.compile(r"^PT-DiT/[A-Za-z]+-(Video|T2V)$"), "pt-dit"),
)


def attention_of(model):
    """The attention kind of a zoo video model name; ValueError names the accepted patterns."""
    for pattern, kind in _PATTERNS:
        if pattern.match(model):
            return kind
    raise ValueError(f"{model!r} is not a video model of the comparison; expected Full3D-<size>/2-Video|T2V, "
                     f"Factorized-<size>/2-Video|T2V or PT-DiT/<size>-Video|T2V")


def check_dataset(dataset):
    if dataset not in DATASETS:
        raise ValueError(f"unknown video dataset {dataset!r}; choose one of {DATASETS}")
    return dataset


def paper_video(attention, dataset):
    """The rebuttal's PaperVideo for (attention, dataset), or None."""
    check_dataset(dataset)
    return next((p for p in PAPER_VIDEO if p.attention == attention and p.dataset == dataset), None)


def paper_video_row(model, dataset):
    """paper_* columns for a zoo model on a dataset: paper_<metric> for the dataset's metrics, paper_source."""
    entry = paper_video(attention_of(model), dataset)
    row = {f"paper_{m}": (entry.metrics.get(m) if entry else None) for m in DATASET_METRICS[dataset]}
    row["paper_source"] = entry.source if entry else None
    return row


def qihoo_note(dataset):
    entry = paper_video("qihoo-t2v", dataset)
    values = ", ".join(f"{m.upper()} {v:g}" for m, v in entry.metrics.items())
    return f"{entry.source} (not a row here: a far larger training run): {values}"
