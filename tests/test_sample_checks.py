"""Class accuracy and the signal correlations of video samples (issue 17), against hand values."""

import numpy as np
import pytest

from evaluation.metrics.class_accuracy import caption_targets, class_accuracy
from evaluation.metrics.video_correlation import frame_correlation, neighbour_correlation
from evaluation.metrics.video_sample_checks import sample_checks


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


def test_sample_checks_give_the_gap_to_the_real_clips_with_intervals(tmp_path):
    """Still samples (frame_corr 1) against a reference of half still, half noise clips (0.5): the gap is
    0.5 and its interval holds it; class_acc 4/8 by a stand-in network that names six clips class 0."""
    gen = np.random.default_rng(0)
    noise = gen.integers(0, 256, size=(8, 4, 8, 8, 3), dtype=np.uint8)
    still = np.repeat(noise[:, :1], 4, axis=1)
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    np.savez(tmp_path / "samples.npz", arr_0=still, labels=labels)
    np.savez(tmp_path / "real.npz", arr_0=np.concatenate([still[:4], noise[4:]]), labels=labels,
             classes=np.array(["Still", "Noisy"]))

    class Judge:   # predicts class 0 for the first six clips it is given, else 1
        def log_probs(self, clips):
            pred = np.array([0 if (c == still[:6]).all(axis=(1, 2, 3, 4)).any() else 1 for c in clips])
            return np.eye(2)[pred]
    out = sample_checks(str(tmp_path / "samples.npz"), str(tmp_path / "real.npz"), {"is": Judge()}, 8)
    assert out["frame_corr"] == pytest.approx(1.0)
    assert out["frame_corr_gap"] == pytest.approx(out["frame_corr"] - out["real_frame_corr"])
    assert out["real_frame_corr_ci_low"] < out["real_frame_corr"] < out["real_frame_corr_ci_high"]
    assert out["frame_corr_gap_ci_low"] < out["frame_corr_gap"] < out["frame_corr_gap_ci_high"]
    assert out["frame_corr_gap_ci_high"] - out["frame_corr_gap_ci_low"] > 0.2   # 8 clips of 0 or 1: wide
    assert out["class_acc"] == 0.5 and 0 <= out["class_acc_ci_low"] < 0.5 < out["class_acc_ci_high"] <= 1
    # per class, by hand: class 0 is samples 0, 2, 4, 6 (the judge names 0, 2, 4 right), class 1 is 1, 3, 5, 7
    # (only 7 right); every sample is still; each class has two still and two noise real clips
    per_class = out["per_class"]
    assert sorted(per_class) == ["0", "1"]
    assert [per_class[c]["class_acc"] for c in "01"] == [0.75, 0.25]
    assert [per_class[c]["samples"] for c in "01"] == [4, 4]
    assert all(per_class[c]["frame_corr"] == pytest.approx(1.0) for c in "01")
    assert all(per_class[c]["real_frame_corr"] == pytest.approx(0.5, abs=0.1) for c in "01")
    assert [per_class[c]["class"] for c in "01"] == ["Still", "Noisy"]   # named from the reference's classes
    # a reference without class names (written before they were stored) still gives per_class, unnamed
    np.savez(tmp_path / "unnamed.npz", arr_0=np.concatenate([still[:4], noise[4:]]), labels=labels)
    unnamed = sample_checks(str(tmp_path / "samples.npz"), str(tmp_path / "unnamed.npz"), {"is": Judge()}, 8)
    assert all("class" not in entry for entry in unnamed["per_class"].values())
    assert unnamed["per_class"]["0"]["class_acc"] == 0.75
