"""Inception score from classifier logits.

ADM evaluator.py compute_inception_score (after improved-gan's inception_score/model.py): per split,
exp(mean_x KL(p(y|x) || p(y))) with p(y) the split's mean prediction; the score is the mean over
splits. ADM cuts 50,000 samples into consecutive splits of 5,000, i.e. 10 splits; for other counts we
keep 10 splits with torch-fidelity's boundaries (metric_isc.py: i*N//splits), and no shuffling, as ADM.
Computed in float64 from log-softmax, so p*log(p) has no log(0).
"""

import numpy as np
import torch


def check_split_count(n, splits, where="logits"):
    if splits < 1 or n < splits:
        raise ValueError(
            f"{where}: Inception score over {splits} splits needs at least {splits} samples, got {n}; "
            f"evaluate more samples (the ADM protocol uses 50,000) or lower the number of IS splits"
        )


def inception_score(logits, splits=10):
    """(mean, std) over splits of the Inception score of [N, C] logits (softmax taken here)."""
    logits = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    n = len(logits)
    check_split_count(n, splits)
    log_p = torch.log_softmax(logits, dim=1)
    scores = []
    for i in range(splits):
        part = log_p[i * n // splits : (i + 1) * n // splits]
        log_mean = torch.logsumexp(part, dim=0) - np.log(len(part))  # log of the split's mean p(y)
        kl = (part.exp() * (part - log_mean)).sum(1).mean()
        scores.append(kl.exp().item())
    return float(np.mean(scores)), float(np.std(scores))
