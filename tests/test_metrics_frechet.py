"""Frechet distance against closed forms, reference implementations and singular cases."""


import numpy as np
import pytest
from scipy import linalg

from evaluation.metrics import frechet
from evaluation.metrics.frechet import RunningStats, frechet_distance


def eigvals_fid(mu1, s1, mu2, s2):
    # torch-fidelity metric_fid.py's formula (sum of sqrt of the eigenvalues of s1 s2), a second reference
    tr = np.sum(np.sqrt(np.linalg.eigvals(s1 @ s2).astype(complex)).real)
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * tr)


def test_one_dimensional_closed_form():
    # FD of N(m1, s1^2) and N(m2, s2^2) = (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(9 + 1, abs=1e-12)


def test_diagonal_and_commuting_covariances_closed_form():
    rng = np.random.default_rng(0)
    d = 16
    a, b = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))  # same eigenvectors: the covariances commute
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_identical_statistics_give_zero_and_general_case_matches_eigvals_formula():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(500, 12)), rng.normal(size=(400, 12)) @ rng.normal(size=(12, 12))
    m1, s1 = x.mean(0), np.cov(x, rowvar=False)
    m2, s2 = y.mean(0), np.cov(y, rowvar=False)
    assert abs(frechet_distance(m1, s1, m1, s1)) < 1e-8
    value = frechet_distance(m1, s1, m2, s2)
    assert value > 1.0
    assert value == pytest.approx(eigvals_fid(m1, s1, m2, s2), rel=1e-9)


def test_singular_covariances_fewer_samples_than_dims():
    # 20 samples in 64 dims: rank-19 covariances, as FID on a few images with 2048-d features
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(20, 64)), rng.normal(1.0, 2.0, size=(20, 64))
    m1, s1 = x.mean(0), np.cov(x, rowvar=False)
    m2, s2 = y.mean(0), np.cov(y, rowvar=False)
    assert np.linalg.matrix_rank(s1) == 19
    value = frechet_distance(m1, s1, m2, s2)
    assert np.isfinite(value)
    assert value == pytest.approx(eigvals_fid(m1, s1, m2, s2), rel=1e-6)


def test_non_finite_sqrtm_retries_with_eps_offset(monkeypatch):
    # ADM: if sqrtm(s1 s2) is not finite, use sqrtm((s1 + eps I)(s2 + eps I)) and warn
    rng = np.random.default_rng(3)
    s1, s2 = np.diag(rng.uniform(1, 2, 4)), np.diag(rng.uniform(1, 2, 4))
    calls, real_sqrtm = [], linalg.sqrtm

    def fake_sqrtm(m):
        calls.append(m.copy())
        return np.full_like(m, np.nan) if len(calls) == 1 else real_sqrtm(m)

    monkeypatch.setattr(frechet.linalg, "sqrtm", fake_sqrtm)
    with pytest.warns(UserWarning, match="adding 0.01 to the diagonal"):
        value = frechet_distance(np.zeros(4), s1, np.zeros(4), s2, eps=0.01)
    np.testing.assert_allclose(calls[1], (s1 + 0.01 * np.eye(4)) @ (s2 + 0.01 * np.eye(4)))
    tr = np.sum(np.sqrt(np.diag(s1 + 0.01 * np.eye(4)) * np.diag(s2 + 0.01 * np.eye(4))))
    assert value == pytest.approx(np.trace(s1) + np.trace(s2) - 2 * tr, rel=1e-10)


def test_large_imaginary_component_is_an_error():
    # s1 s2 with a negative eigenvalue has no real square root: ADM raises "Imaginary component"
    with pytest.raises(ValueError, match="imaginary component"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.diag([1.0, -4.0]))


def test_statistics_of_another_feature_size_are_an_error():
    with pytest.raises(ValueError, match="same feature extractor"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_running_stats_match_numpy_cov_over_uneven_batches():
    rng = np.random.default_rng(4)
    x = rng.normal(5.0, 3.0, size=(103, 7)).astype(np.float32)  # offset mean: cancellation-prone
    stats = RunningStats(7)
    for start, stop in [(0, 1), (1, 40), (40, 41), (41, 103)]:
        stats.update(x[start:stop])
    mu, sigma = stats.mu_sigma()
    assert stats.count == 103
    np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False), rtol=1e-10)
    with pytest.raises(ValueError, match="7"):
        stats.update(np.zeros((2, 8)))
