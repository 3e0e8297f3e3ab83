"""results/figures/samples_{ucf101,msrvtt}.png: one row per class (UCF-101) or per source's caption
(MSR-VTT), the real clip first, then one sample of each table row (evaluation/report/frame_strip.py).

UCF-101 rows: the first sample generated for each class (`ptdit sample --labels balanced`), beside the
first reference clip of that class; row names from the encoded split's class list. MSR-VTT rows: for each
caption set of the encoded split (one per stand-in source), the first sample whose caption is in it,
beside the reference clip with that caption; the caption is printed under the row.
"""

import json

import numpy as np

from evaluation.metrics.video_reference import read_conditions
from evaluation.metrics.video_sample_checks import first_clips
from evaluation.report.frame_strip import save_strips


def class_rows(reference_labels, sample_labels, classes):
    """[(name, reference index, sample index)] for every class both sides have."""
    rows = []
    for k, name in enumerate(classes):
        real, fake = np.flatnonzero(reference_labels == k), np.flatnonzero(sample_labels == k)
        if len(real) and len(fake):
            rows.append((name, int(real[0]), int(fake[0])))
    return rows


def caption_rows(reference_captions, sample_captions, caption_sets):
    """[(caption, reference index, sample index)]: per caption set, its first sampled caption."""
    rows, used = [], set()
    for caps in caption_sets:
        key = frozenset(caps)
        if key in used:
            continue
        used.add(key)
        for i, caption in enumerate(sample_captions):
            if caption in key and caption in reference_captions:
                rows.append((caption, reference_captions.index(caption), i))
                break
    return rows


def make_video_strips(out_png, reference_npz, samples, meta_json, max_clips=256):
    """samples: {column title: sample .npz}, in table order. meta_json: the encoded test split's meta.json."""
    with open(meta_json) as f:
        meta = json.load(f)
    ref_labels, ref_captions = read_conditions(reference_npz)
    first = next(iter(samples.values()))
    labels, captions = read_conditions(first)
    if labels is not None:
        rows = class_rows(np.asarray(ref_labels), np.asarray(labels[:max_clips]), meta["classes"])
    else:
        rows = caption_rows(list(ref_captions), list(captions[:max_clips]), meta["captions"])
    if not rows:
        raise ValueError(f"no class or caption of {first} is in the reference {reference_npz}")
    real = first_clips(reference_npz, max_clips)
    columns = {"real": real[[r[1] for r in rows]]}
    for title, path in samples.items():
        clips = first_clips(path, max_clips)
        columns[title] = clips[[r[2] for r in rows]]
    names = [r[0] if labels is not None else f"{k + 1}" for k, r in enumerate(rows)]
    return save_strips(out_png, columns, names, captions=None if labels is not None else [r[0] for r in rows])
