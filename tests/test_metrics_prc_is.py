"""Precision/recall and Inception score on constructed inputs with known answers, and against
torch-fidelity's implementations on the same features."""

import numpy as np
import pytest
import torch

from evaluation.metrics.inception_score import inception_score
from evaluation.metrics.precision_recall import knn_radii, precision_recall


def test_identical_sets_give_full_precision_and_recall():
    x = np.random.default_rng(0).normal(size=(50, 8))
    assert precision_recall(x, x.copy()) == (1.0, 1.0)


def test_disjoint_far_sets_give_zero():
    rng = np.random.default_rng(1)
    ref, samples = rng.normal(size=(40, 8)), rng.normal(size=(30, 8)) + 1000.0
    assert precision_recall(ref, samples) == (0.0, 0.0)


def test_subset_covers_its_cluster_only():
    # reference = clusters A and B far apart; samples = exactly the points of A
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(20, 4)), rng.normal(size=(20, 4)) + 100.0
    precision, recall = precision_recall(np.concatenate([a, b]), a.copy())
    assert precision == 1.0
    assert recall == 0.5


def test_radius_is_kth_neighbour_excluding_self():
    # reference on a line 0..9, k = 3: the radius of point 0 is 3 (neighbours 1, 2, 3); counting the
    # point itself would give 2. Sample -2.5 lies inside that ball only with the ADM definition.
    ref = np.arange(10, dtype=np.float64)[:, None]
    np.testing.assert_allclose(knn_radii(torch.tensor(ref, dtype=torch.float32), 3)[:3].numpy(), [9, 4, 4])
    samples = np.array([[-2.5], [-3.5], [4.5], [20.0]])
    precision, _ = precision_recall(ref, samples, k=3)
    assert precision == 0.5


def test_chunking_does_not_change_the_result_and_matches_torch_fidelity():
    from torch_fidelity.metric_prc import calculate_precision_recall_full

    rng = np.random.default_rng(3)
    ref, samples = rng.normal(size=(61, 16)), rng.normal(0.3, 1.2, size=(47, 16))
    whole = precision_recall(ref, samples, chunk_size=10_000)
    assert precision_recall(ref, samples, chunk_size=7) == whole
    # torch-fidelity: features_1 = generated, features_2 = real
    tf = calculate_precision_recall_full(torch.tensor(samples, dtype=torch.float32),
                                         torch.tensor(ref, dtype=torch.float32), 3, 10_000)
    assert whole == pytest.approx(tf, abs=1e-6)  # theirs averages in float32; one point = 1/47
    assert 0.0 < whole[0] < 1.0 and 0.0 < whole[1] < 1.0


def test_too_few_points_or_mismatched_dims_are_errors():
    with pytest.raises(ValueError, match="more than 3"):
        precision_recall(np.zeros((3, 2)), np.zeros((10, 2)))
    with pytest.raises(ValueError, match="same feature extractor"):
        precision_recall(np.zeros((10, 2)), np.zeros((10, 3)))


def test_inception_score_uniform_predictions_is_one():
    assert inception_score(np.zeros((100, 1008)))[0] == pytest.approx(1.0, abs=1e-12)


def test_inception_score_confident_balanced_predictions_is_num_classes():
    c, splits = 7, 10
    labels = np.arange(c * splits * 3) % c  # every split holds every class equally often
    logits = np.full((len(labels), c), -200.0)
    logits[np.arange(len(labels)), labels] = 0.0
    mean, std = inception_score(logits, splits)
    assert mean == pytest.approx(c, rel=1e-9)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_two_equal_classes_per_split_is_two():
    # split i is confident, balanced over 2 classes: exp(KL) = exp(log 2) = 2 whatever the classes
    logits = np.full((40, 10), -200.0)
    for i in range(40):
        logits[i, (i // 4) % 10 if i % 2 == 0 else ((i // 4) + 5) % 10] = 0.0
    assert inception_score(logits, 10)[0] == pytest.approx(2.0, rel=1e-9)


def test_inception_score_matches_torch_fidelity_unshuffled():
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = np.random.default_rng(4).normal(0, 3, size=(53, 30))  # 53: splits of unequal size
    ours = inception_score(logits, 10)
    tf = isc_features_to_metric(torch.tensor(logits), splits=10, shuffle=False)
    assert ours[0] == pytest.approx(tf["inception_score_mean"], abs=1e-10)
    assert ours[1] == pytest.approx(tf["inception_score_std"], abs=1e-10)


def test_inception_score_too_few_samples_for_splits():
    with pytest.raises(ValueError, match="10 splits needs at least 10 samples, got 9"):
        inception_score(np.zeros((9, 5)), 10)
