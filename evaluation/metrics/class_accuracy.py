"""Class accuracy of generated samples: the share that the evaluation classifier assigns to the label
they were conditioned on (issue 15): the plainest evidence that a class-conditional model learned.
Shared by the image and video evaluations (stand-in CNNs, an ImageNet classifier, the UCF-101 C3D)."""

import numpy as np


def predictions(logits_or_preds):
    """Class indices from logits (N, C) or from indices (N,)."""
    a = np.asarray(logits_or_preds)
    return a.argmax(1) if a.ndim == 2 else a.astype(np.int64)


def correct(logits_or_preds, labels):
    """Per-sample 0/1 (float64): predicted class == conditioning label (for the bootstrap)."""
    pred, labels = predictions(logits_or_preds), np.asarray(labels).astype(np.int64)
    if pred.shape != labels.shape:
        raise ValueError(f"class accuracy needs one label per sample: {pred.shape[0]} predictions, {labels.shape[0]} labels")
    return (pred == labels).astype(np.float64)


def class_accuracy(logits_or_preds, labels):
    """Fraction of samples whose predicted class (argmax of logits, or the given index) is their label."""
    return float(correct(logits_or_preds, labels).mean())
