"""One tolerance for "two formulations of the same computation agree": derived from the dtype's
machine epsilon and the tensor's magnitude, not guessed per test.

Two correct formulations (a fused kernel and the plain ops, a batch and its samples one at a time,
our model and a reference assembly, two processes and one) add the same terms in another order:
SDPA's blocked online softmax against softmax(q k^T) v, a window mean against a strided mean, a
weight gradient summed over tokens in window order against raster order. Each rounding moves a
partial sum by at most eps relative to that partial sum, so the two results differ by at most
about eps times the magnitude of the terms they add, whatever the size of the result:

    |actual - expected| <= factor * eps(dtype) * max|expected|     for every element

The bound is normwise (the tensor's largest magnitude), not elementwise: an element that is the
small difference of large terms carries the rounding of the large terms. Issue 12's failure was
exactly that: one adaLN weight-gradient element of 3.8e-3 (a sum of terms of order 10) off by
1.42e-6, i.e. 3.7e-4 relative to itself but 0.07 eps of the tensor's maximum (17); an elementwise
rtol/atol pair rejects it on one machine's kernels and not on another's. (A softmax key-bias
gradient is 0 in exact arithmetic, a sum of O(1) terms that cancel: its elementwise error is
infinite, its normwise error ~1 eps.)

FACTOR: measured on a PT-DiT block forward + backward against its plain formulation (tests/
test_pt_dit_launches.py, 3 seeds, both layouts, float32 and float64, CPU default/AVX2 kernels,
1 and 2 threads): at most 5.7 eps * max. 64 leaves a >10x margin for deeper models, longer
reductions and other CPUs' kernels; a real formula error (a dropped term, a wrong scale, a
misplaced mask) moves results by >= 1e-3 of their magnitude, 8,000 float32 eps. Pass a larger
factor only with the reason in a comment (e.g. a whole multi-layer model).
"""

import torch

FACTOR = 64


def tolerance(expected, dtype=None, factor=FACTOR):
    """The absolute tolerance above for `expected` (dtype: the less precise one compared)."""
    eps = torch.finfo(dtype or expected.dtype).eps
    return factor * eps * expected.detach().abs().amax().item()


def assert_close_scaled(actual, expected, factor=FACTOR, what=""):
    """|actual - expected| <= factor * eps * max|expected| everywhere (module docstring: why)."""
    actual, expected = torch.as_tensor(actual), torch.as_tensor(expected)
    assert actual.dtype == expected.dtype, f"{what}: dtypes differ ({actual.dtype} vs {expected.dtype})"
    atol = tolerance(expected, factor=factor)
    torch.testing.assert_close(actual, expected, rtol=0, atol=atol, msg=lambda m: (
        f"{what + ': ' if what else ''}{m}\n(tolerance {factor} eps * max|expected| = {atol:.3g}; "
        f"max|expected| {expected.abs().amax().item():.3g}; tests/tolerance.py)"))
