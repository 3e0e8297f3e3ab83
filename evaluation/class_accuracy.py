"""Class accuracy of generated samples: how often a classifier trained on the real data names the class
the sample was generated for. Shared by the image and the video tables (issues 15, 17).

- class_accuracy(logits, labels): argmax agreement, the whole metric.
- caption_targets(...): for text-conditional samples, the class of the caption's source: the class the
  same classifier gives the real clips that carry that caption (MSR-VTT stand-in: the 3-D CNN trained with
  one class per source, evaluation/video_evaluate_cli.py clip_labels), so "the caption's source clip" is
  judged by the network that tells the sources apart.
"""

from collections import Counter

import numpy as np


def class_accuracy(logits, labels):
    """Fraction of rows whose largest logit is at the row's label. logits [N, K], labels [N] ints."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (len(logits),):
        raise ValueError(f"expected logits [N, K] and labels [N], got {logits.shape} and {labels.shape}")
    if len(labels) == 0:
        raise ValueError("class accuracy of no samples")
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}), got [{labels.min()}, {labels.max()}]")
    return float(np.mean(logits.argmax(1) == labels))


def caption_targets(sample_captions, real_captions, real_predictions):
    """Target class of each sample caption: the most frequent prediction on the real clips with that
    caption (ties: the smaller class); -1 where no real clip carries the caption (a reference cut to fewer
    clips than the captions sampled)."""
    votes = {}
    for caption, pred in zip(real_captions, np.asarray(real_predictions).tolist()):
        votes.setdefault(str(caption), Counter())[int(pred)] += 1
    return np.array([min(votes[str(c)].items(), key=lambda kv: (-kv[1], kv[0]))[0] if str(c) in votes else -1
                     for c in sample_captions], dtype=np.int64)
