"""Class accuracy of generated samples: the share that the evaluation classifier assigns to the label
they were conditioned on (issues 15, 17): the plainest evidence that a conditional model learned.
Shared by the image and video evaluations (stand-in CNNs, an ImageNet classifier, the UCF-101 C3D).

- class_accuracy(logits or predicted indices, labels): argmax agreement, the whole metric; correct()
  gives the per-sample 0/1 the bootstrap resamples.
- caption_targets(...): for text-conditional samples, the class of the caption's source: the class the
  same classifier gives the real clips that carry that caption (MSR-VTT stand-in: the 3-D CNN trained with
  one class per source, ptdit/cli/video_evaluate.py clip_labels), so "the caption's source clip" is
  judged by the network that tells the sources apart.
"""

from collections import Counter

import numpy as np


def predictions(logits_or_preds, labels):
    """Class indices from logits (N, C) or from indices (N,), checked against the labels (N,)."""
    a, labels = np.asarray(logits_or_preds), np.asarray(labels).astype(np.int64)
    if a.ndim not in (1, 2) or labels.shape != (len(a),):
        raise ValueError(f"class accuracy needs one label per sample (expected logits [N, K] or predictions [N] "
                         f"and labels [N]), got {a.shape} and {labels.shape}")
    if len(labels) == 0:
        raise ValueError("class accuracy of no samples")
    if a.ndim == 2 and (labels.min() < 0 or labels.max() >= a.shape[1]):
        raise ValueError(f"labels must lie in [0, {a.shape[1]}), got [{labels.min()}, {labels.max()}]")
    return (a.argmax(1) if a.ndim == 2 else a.astype(np.int64)), labels


def correct(logits_or_preds, labels):
    """Per-sample 0/1 (float64): predicted class == conditioning label (for the bootstrap)."""
    pred, labels = predictions(logits_or_preds, labels)
    return (pred == labels).astype(np.float64)


def class_accuracy(logits_or_preds, labels):
    """Fraction of samples whose predicted class (argmax of logits, or the given index) is their label."""
    return float(correct(logits_or_preds, labels).mean())


def caption_targets(sample_captions, real_captions, real_predictions):
    """Target class of each sample caption: the most frequent prediction on the real clips with that
    caption (ties: the smaller class); -1 where no real clip carries the caption (a reference cut to fewer
    clips than the captions sampled)."""
    votes = {}
    for caption, pred in zip(real_captions, np.asarray(real_predictions).tolist()):
        votes.setdefault(str(caption), Counter())[int(pred)] += 1
    return np.array([min(votes[str(c)].items(), key=lambda kv: (-kv[1], kv[0]))[0] if str(c) in votes else -1
                     for c in sample_captions], dtype=np.int64)
