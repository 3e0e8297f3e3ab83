"""Frechet distance between two Gaussians, and streamed feature statistics (mu, sigma).

Definitions follow the ADM evaluator (openai/guided-diffusion evaluations/evaluator.py,
FIDStatistics.frechet_distance), itself the TTUR fid.py: scipy.linalg.sqrtm of sigma1 @ sigma2, an
eps*I offset when the product is singular enough to give non-finite values, the real part kept
unless the imaginary part of the diagonal is large.
"""

import warnings

import numpy as np
from scipy import linalg


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2)), as a float."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(
            f"feature statistics have different sizes: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} "
            f"vs {sigma2.shape}; both sides must come from the same feature extractor and layer"
        )
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        # ADM: "product might be almost singular": retry with eps on the diagonal of both.
        warnings.warn(f"frechet distance: singular product, adding {eps} to the diagonal of the covariances")
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # ADM: numerical error may leave a small imaginary part; a large one means broken statistics.
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"frechet distance: imaginary component {np.max(np.abs(covmean.imag))} in sqrtm")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


class RunningStats:
    """Mean and covariance of feature batches without keeping the features.

    Batches are merged with Chan et al.'s pairwise update in float64 (mean and centred scatter
    matrix), which avoids the cancellation of a raw sum-of-squares. sigma uses the n - 1 divisor
    like np.cov(rowvar=False) in ADM's compute_statistics.
    """

    def __init__(self, dim):
        self.dim = dim
        self.count = 0
        self.mean = np.zeros(dim, dtype=np.float64)
        self.scatter = np.zeros((dim, dim), dtype=np.float64)

    def update(self, features):
        x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
        if x.shape[1] != self.dim:
            raise ValueError(f"feature batch has {x.shape[1]} dims, statistics expect {self.dim}")
        n_b = len(x)
        if n_b == 0:
            return
        mean_b = x.mean(axis=0)
        centred = x - mean_b
        scatter_b = centred.T @ centred
        n = self.count + n_b
        delta = mean_b - self.mean
        self.scatter += scatter_b + np.outer(delta, delta) * (self.count * n_b / n)
        self.mean += delta * (n_b / n)
        self.count = n

    def mu_sigma(self, ddof=1):
        """(mean, covariance). ddof=1: np.cov's n - 1 divisor (ADM's FID); ddof=0: the 1/n covariance
        of StyleGAN-V's FeatureStats.get_mean_cov (its FVD, evaluation/metrics/fvd.py)."""
        if self.count < 2:
            raise ValueError(f"need at least 2 feature vectors for a covariance, got {self.count}")
        return self.mean.copy(), self.scatter / (self.count - ddof)
