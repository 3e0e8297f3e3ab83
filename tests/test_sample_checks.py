"""Class accuracy and the signal correlations of video samples (issue 17), against hand values."""

import numpy as np
import pytest

from evaluation.metrics.class_accuracy import caption_targets, class_accuracy
from evaluation.metrics.video_correlation import frame_correlation, neighbour_correlation


def test_class_accuracy_by_hand_and_its_errors():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 0.5, 0.1], [0.0, 0.0, 3.0], [1.0, 0.0, 0.0]])
    assert class_accuracy(logits, [0, 1, 1, 0]) == 0.75
    with pytest.raises(ValueError, match="labels must lie"):
        class_accuracy(logits, [0, 1, 3, 0])
    with pytest.raises(ValueError, match="expected logits"):
        class_accuracy(logits, [0, 1])


def test_caption_targets_vote_and_mark_unknown_captions():
    real_captions = ["a", "a", "a", "b", "c", "c"]
    real_pred = [2, 2, 1, 0, 1, 4]          # "a": 2 wins 2-1; "c": a tie, the smaller class
    assert caption_targets(["a", "b", "c", "z"], real_captions, real_pred).tolist() == [2, 0, 1, -1]


def test_correlations_of_still_noise_and_smooth_clips():
    gen = np.random.default_rng(0)
    noise = gen.integers(0, 256, size=(4, 6, 16, 16, 3), dtype=np.uint8)
    assert abs(frame_correlation(noise)) < 0.05 and abs(neighbour_correlation(noise)) < 0.05
    still = np.repeat(noise[:, :1], 6, axis=1)
    assert frame_correlation(still) == pytest.approx(1.0)
    ramp = np.broadcast_to((np.arange(16) * 15).astype(np.uint8)[None, None, None, :, None], (2, 3, 16, 16, 3))
    ramp = ramp + (gen.integers(0, 2, size=ramp.shape)).astype(np.uint8)
    assert neighbour_correlation(ramp) > 0.95   # a ramp plus 1-level noise: neighbours nearly equal
