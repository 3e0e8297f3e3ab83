"""95 % bootstrap intervals of the sample-quality metrics, from features already extracted.

A replicate resamples the generated set with replacement (and, for FID-type metrics, the reference set
too, independently), recomputes the metric, and the interval is the basic (reverse-percentile) bootstrap
interval [2 m - q(1 - a/2), 2 m - q(a/2)] (Efron & Tibshirani 1993, ch. 13.4): FID from n samples is biased
upward by about tr(sigma)/n, and a replicate, which holds only ~63 % distinct points, is biased about as much
again, so reflecting the replicates around the estimate corrects that first-order bias where the plain
percentile interval would sit above the true value (tests/test_bootstrap.py measures the coverage).
Resampling is vectorised: a replicate is a vector of counts over the points, so means and covariances
of all replicates are a few matrix products, and the trace of sqrtm is taken from eigenvalues in batches.
"""

import numpy as np
import torch

DEFAULT_REPLICATES = 200
LEVEL = 0.95


def resample_counts(n, replicates, generator):
    """(replicates, n) float64: how often each point is drawn in each replicate."""
    idx = torch.randint(0, n, (replicates, n), generator=generator)
    return torch.zeros(replicates, n, dtype=torch.float64).scatter_add_(1, idx, torch.ones(replicates, n, dtype=torch.float64))


def weighted_stats(x, counts, chunk=32):
    """Means (R, D) and unbiased covariances (R, D, D) of x (N, D) under each row of counts."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    n = len(x)
    mus, sigmas = [], []
    for w in counts.split(chunk):
        mu = w @ x / n
        second = torch.einsum("rn,ni,nj->rij", w, x, x) / n
        sigmas.append((second - mu[:, :, None] * mu[:, None, :]) * (n / (n - 1)))
        mus.append(mu)
    return torch.cat(mus), torch.cat(sigmas)


def _psd_sqrt(s):
    vals, vecs = torch.linalg.eigh(s)
    return (vecs * vals.clamp_min(0).sqrt()[..., None, :]) @ vecs.transpose(-1, -2)


def frechet_batch(mu1, sigma1, mu2, sigma2):
    """Frechet distances of batches of Gaussians: |mu1 - mu2|^2 + tr(s1 + s2 - 2 (s1^1/2 s2 s1^1/2)^1/2)."""
    root = _psd_sqrt(sigma1)
    inner = torch.linalg.eigvalsh(root @ sigma2 @ root).clamp_min(0).sqrt().sum(-1)
    trace = torch.diagonal(sigma1, dim1=-2, dim2=-1).sum(-1) + torch.diagonal(sigma2, dim1=-2, dim2=-1).sum(-1)
    return ((mu1 - mu2) ** 2).sum(-1) + trace - 2 * inner


def basic_interval(estimate, replicates, level=LEVEL):
    """(low, high) of the basic bootstrap interval; replicates: a 1-D array."""
    lo_q, hi_q = np.quantile(np.asarray(replicates, dtype=np.float64), [(1 - level) / 2, (1 + level) / 2])
    return float(2 * estimate - hi_q), float(2 * estimate - lo_q)


def _generator(seed):
    return torch.Generator().manual_seed(int(seed))


def fid_replicates(x, y, counts_x, counts_y, chunk=8):
    """FID of every replicate (rows of counts_x, counts_y) of the sets x (N, D) and y (M, D), from Gram
    matrices, so the cost does not grow with D (sFID's 448 or 2048 dimensions): with Z, Y the weighted,
    centred rows, tr s1 and tr s2 are weighted traces and tr sqrtm(s1 s2) is the nuclear norm of Z Y^T,
    the sum of the square roots of the eigenvalues of the smaller of (Z Y^T)(Z Y^T)^T and its transpose."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(y), dtype=torch.float64)
    n, m = len(x), len(y)
    kx, ky, g = x @ x.T, y @ y.T, x @ y.T
    out = []
    for w1, w2 in zip(counts_x.split(chunk), counts_y.split(chunk)):
        mu1sq = ((w1 @ kx) * w1).sum(1) / n ** 2
        mu2sq = ((w2 @ ky) * w2).sum(1) / m ** 2
        g_mu2 = w2 @ g.T / m                       # (r, N): x_i . mu2
        mu1_g = w1 @ g / n                         # (r, M): mu1 . y_j
        cross = (w1 * g_mu2).sum(1) / n            # mu1 . mu2
        tr1 = (w1 @ torch.diagonal(kx) - n * mu1sq) / (n - 1)
        tr2 = (w2 @ torch.diagonal(ky) - m * mu2sq) / (m - 1)
        centred = g[None] - g_mu2[:, :, None] - mu1_g[:, None, :] + cross[:, None, None]
        a = w1.sqrt()[:, :, None] * centred * w2.sqrt()[:, None, :] / np.sqrt((n - 1) * (m - 1))
        small = a @ a.transpose(1, 2) if n <= m else a.transpose(1, 2) @ a
        nuclear = torch.linalg.eigvalsh(small).clamp_min(0).sqrt().sum(-1)
        out.append(mu1sq + mu2sq - 2 * cross + tr1 + tr2 - 2 * nuclear)
    return torch.cat(out)


def fid_interval(features, reference_features, estimate, replicates=DEFAULT_REPLICATES, seed=0, level=LEVEL):
    """Interval of the FID between two feature sets (N, D) and (M, D), both resampled; low clamped at 0."""
    gen = _generator(seed)
    counts_x = resample_counts(len(features), replicates, gen)
    counts_y = resample_counts(len(reference_features), replicates, gen)
    d, n, m = np.shape(features)[1], len(features), len(reference_features)
    if 4 * d * d <= n * m:  # few dimensions: D x D covariances are cheaper than N x M Gram matrices
        mu1, s1 = weighted_stats(features, counts_x)
        mu2, s2 = weighted_stats(reference_features, counts_y)
        values = frechet_batch(mu1, s1, mu2, s2)
    else:
        values = fid_replicates(features, reference_features, counts_x, counts_y)
    low, high = basic_interval(estimate, values.numpy(), level)
    return max(low, 0.0), high


def fid_replicates_fixed(x, mu_ref, sigma_ref, counts, chunk=8):
    """FID of every replicate of x (N, D) against fixed statistics (ADM's precomputed reference, or a
    reference whose features were not kept), from N x N matrices: with Z the weighted, centred rows,
    tr sqrtm(s1 s_ref) is the sum of the square roots of the eigenvalues of Z s_ref Z^T."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    mu2 = torch.as_tensor(np.asarray(mu_ref), dtype=torch.float64)
    s2 = torch.as_tensor(np.asarray(sigma_ref), dtype=torch.float64)
    n = len(x)
    k, p, xm = x @ x.T, x @ s2 @ x.T, x @ mu2
    out = []
    for w in counts.split(chunk):
        mu1sq = ((w @ k) * w).sum(1) / n ** 2
        tr1 = (w @ torch.diagonal(k) - n * mu1sq) / (n - 1)
        dist2 = mu1sq - 2 * (w @ xm) / n + mu2 @ mu2
        pw = w @ p / n                                  # (r, N): x_i^T s2 mu1
        q = (pw * w).sum(1) / n                         # mu1^T s2 mu1
        centred = p[None] - pw[:, :, None] - pw[:, None, :] + q[:, None, None]
        a = w.sqrt()[:, :, None] * centred * w.sqrt()[:, None, :] / (n - 1)
        nuclear = torch.linalg.eigvalsh(a).clamp_min(0).sqrt().sum(-1)
        out.append(dist2 + tr1 + torch.trace(s2) - 2 * nuclear)
    return torch.cat(out)


def fid_interval_fixed_reference(features, mu_ref, sigma_ref, estimate, replicates=DEFAULT_REPLICATES, seed=0,
                                 level=LEVEL):
    """Interval of FID against fixed reference statistics: the samples resampled only."""
    counts = resample_counts(len(features), replicates, _generator(seed))
    d, n = np.shape(features)[1], len(features)
    if 4 * d <= n:  # few dimensions
        mu1, s1 = weighted_stats(features, counts)
        mu2 = torch.as_tensor(np.asarray(mu_ref), dtype=torch.float64).expand_as(mu1)
        s2 = torch.as_tensor(np.asarray(sigma_ref), dtype=torch.float64).expand_as(s1)
        values = frechet_batch(mu1, s1, mu2, s2)
    else:
        values = fid_replicates_fixed(features, mu_ref, sigma_ref, counts)
    low, high = basic_interval(estimate, values.numpy(), level)
    return max(low, 0.0), high


def mean_interval(values, replicates=DEFAULT_REPLICATES, seed=0, level=LEVEL):
    """Interval of the mean of per-point values (class accuracy, precision's and recall's indicators)."""
    v = torch.as_tensor(np.asarray(values), dtype=torch.float64)
    counts = resample_counts(len(v), replicates, _generator(seed))
    low, high = basic_interval(float(v.mean()), (counts @ v / len(v)).numpy(), level)
    return max(low, float(v.min())), min(high, float(v.max()))  # a mean stays within its values (shares: [0, 1])


def mean_difference_interval(values, reference_values, replicates=DEFAULT_REPLICATES, seed=0, level=LEVEL):
    """Interval of mean(values) - mean(reference_values), both sets resampled independently (a sample
    statistic against the same statistic of the real clips)."""
    a, b = (torch.as_tensor(np.asarray(v), dtype=torch.float64) for v in (values, reference_values))
    gen = _generator(seed)
    counts_a, counts_b = resample_counts(len(a), replicates, gen), resample_counts(len(b), replicates, gen)
    diffs = (counts_a @ a / len(a) - counts_b @ b / len(b)).numpy()
    return basic_interval(float(a.mean() - b.mean()), diffs, level)


def inception_score_interval(logits, estimate, splits=10, replicates=DEFAULT_REPLICATES, seed=0, level=LEVEL,
                             max_elements=2**25):
    """Interval of the split-mean Inception score (evaluation/inception_score.py) over resampled samples.

    Replicates in chunks of at most max_elements resampled log-probabilities (float64: 256 MB), split by split
    (the same splits, log-softmax and KL as inception_score, which tests/test_bootstrap.py checks against): a
    Python loop over the replicates cost ~1.4 s per CI evaluation, and all replicates at once would not fit
    at ImageNet's size (200 x 50,000 x 1,008 values)."""
    from evaluation.metrics.inception_score import check_split_count

    logits = np.asarray(logits)
    n = len(logits)
    check_split_count(n, splits)
    idx = torch.randint(0, n, (replicates, n), generator=_generator(seed))
    log_p_all = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float64), dim=1)
    chunk = max(1, max_elements // (n * log_p_all.shape[1]))
    values = torch.cat([split_mean_scores(log_p_all[rows], splits) for rows in idx.split(chunk)])
    return basic_interval(estimate, values.numpy(), level)


def split_mean_scores(log_p, splits):
    """The split-mean Inception score of each replicate of log_p (replicates, N, classes)."""
    n = log_p.shape[1]
    scores = []
    for i in range(splits):
        part = log_p[:, i * n // splits : (i + 1) * n // splits]
        log_mean = torch.logsumexp(part, dim=1, keepdim=True) - np.log(part.shape[1])
        scores.append((part.exp() * (part - log_mean)).sum(2).mean(1).exp())
    return torch.stack(scores, 1).mean(1)
