"""Our Inception pipeline against torch-fidelity on the same images and the same weights file.

The weights are a randomly initialised InceptionV3 with calibrated batch-norm statistics, saved to a
temporary file, so the real loading path runs in both tools (no download is possible here).
"""

import numpy as np
import pytest
import torch

from evaluation.metrics.evaluate import evaluate_samples
from evaluation.metrics.inception import (
    WEIGHTS_ENV,
    WEIGHTS_FILE,
    WEIGHTS_URL,
    InceptionV3,
    calibrate_random_inception,
    load_inception,
    spatial_nhwc,
)

N = 20  # images per set: >= 10 IS splits, > k = 3 neighbours; each image costs 0.15-0.5 s per tool here


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(calibrate_random_inception(InceptionV3()).state_dict(), path)
    return str(path)


def make_images(seed, n, size, shifted):
    """Uniform noise (the calibration distribution), or noise with lower contrast and a brightness shift."""
    x = np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3)).astype(np.float64)
    if shifted:
        x = x * 0.9 + 10
    return x.astype(np.uint8)


class UInt8Images(torch.utils.data.Dataset):
    def __init__(self, nhwc):
        self.x = torch.from_numpy(nhwc).permute(0, 3, 1, 2).contiguous()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i]


@pytest.fixture(scope="module")
def image_sets():
    return make_images(1, N, 48, shifted=False), make_images(2, N, 48, shifted=True)


@pytest.fixture(scope="module")
def both_results(weights, image_sets, tmp_path_factory):
    import torch_fidelity

    samples, ref = image_sets
    tmp = tmp_path_factory.mktemp("npz")
    np.savez(tmp / "samples.npz", arr_0=samples)
    np.savez(tmp / "ref.npz", arr_0=ref)
    # no sfid here: torch-fidelity has none, and each 2048-d sqrtm costs 10-70 s on this CPU
    ours = evaluate_samples(tmp / "samples.npz", tmp / "ref.npz", metrics="fid,is,prc", extractor="inception",
                            extractor_weights=weights,
                            batch_size=N, cache_dir=tmp / "cache", out_json=tmp / "out.json")
    theirs = torch_fidelity.calculate_metrics(
        input1=UInt8Images(samples), input2=UInt8Images(ref), cuda=False, fid=True, isc=True, prc=True,
        feature_extractor="inception-v3-compat", feature_extractor_weights_path=weights, isc_splits=10,
        samples_shuffle=False, batch_size=N, cache=False, verbose=False, save_cpu_ram=True, datasets_num_workers=0)
    return ours, theirs


def test_fid_matches_torch_fidelity(both_results):
    ours, theirs = both_results
    assert ours["fid"] > 1.0  # the two sets differ: a vacuous 0 = 0 would not test anything
    assert abs(ours["fid"] - theirs["frechet_inception_distance"]) < 1e-3


def test_inception_score_matches_torch_fidelity(both_results):
    ours, theirs = both_results
    assert ours["is"] > 1.05
    assert abs(ours["is"] - theirs["inception_score_mean"]) < 1e-3
    assert abs(ours["is_std"] - theirs["inception_score_std"]) < 1e-3


def test_precision_recall_match_torch_fidelity(both_results):
    ours, theirs = both_results
    assert abs(ours["precision"] - theirs["precision"]) < 1e-6
    assert abs(ours["recall"] - theirs["recall"]) < 1e-6
    assert ours["num_samples"] == N and ours["feature_extractor"] == InceptionV3.name
    assert ours["protocol"]["num_reference_images"] == N


def test_features_equal_torch_fidelity_and_spatial_is_nhwc(weights):
    """sFID features = TF mixed_6/conv (torch-fidelity's Mixed_6d.branch1x1 output), first 7 channels,
    flattened (h, w, c). An NCHW flatten of the same tensor must not pass."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    theirs = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                         feature_extractor_weights_path=weights)
    captured = {}
    theirs.Mixed_6d.branch1x1.register_forward_hook(lambda m, i, o: captured.setdefault("conv", o.clone()))
    images = torch.from_numpy(make_images(3, 2, 40, shifted=True)).permute(0, 3, 1, 2).contiguous()
    pool, logits = theirs(images)
    ours = load_inception(weights)(images)
    torch.testing.assert_close(ours.pool, pool, rtol=0, atol=1e-5)
    torch.testing.assert_close(ours.logits, logits, rtol=0, atol=1e-4)
    conv = captured["conv"]
    assert conv.shape == (2, 192, 17, 17)
    nhwc = conv[:, :7].permute(0, 2, 3, 1).reshape(2, -1)
    nchw = conv[:, :7].reshape(2, -1)
    torch.testing.assert_close(ours.spatial, nhwc, rtol=0, atol=1e-5)
    assert not torch.allclose(ours.spatial, nchw, atol=1e-3)


def test_spatial_flatten_order_is_h_w_c():
    fmap = torch.arange(2 * 9 * 17 * 17, dtype=torch.float32).reshape(2, 9, 17, 17)
    flat = spatial_nhwc(fmap)
    assert flat.shape == (2, 2023)
    for h, w, c in [(0, 0, 1), (0, 1, 0), (3, 5, 6), (16, 16, 6)]:
        assert flat[1, (h * 17 + w) * 7 + c] == fmap[1, c, h, w]


def test_missing_weights_message_names_file_checksum_and_url(tmp_path, monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    with pytest.raises(FileNotFoundError) as err:
        load_inception(str(tmp_path / "nope.pth"))
    message = str(err.value)
    for part in (WEIGHTS_FILE, WEIGHTS_URL, "sha256", WEIGHTS_ENV, "nope.pth"):
        assert part in message
    with pytest.raises(FileNotFoundError, match="unset"):
        load_inception()


def test_weights_from_environment_variable(weights, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, weights)
    model = load_inception()
    assert len(model.weights_sha256) == 64 and not model.training
