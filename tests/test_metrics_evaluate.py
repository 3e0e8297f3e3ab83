"""evaluate_samples end to end with the small stand-in classifier, references, and bad inputs."""

import json

import numpy as np
import pytest
import torch

from evaluation.extractors.small_classifier import (
    SmallClassifier,
    load_small_classifier,
    save_small_classifier,
    train_small_classifier,
)
from evaluation.metrics.evaluate import evaluate_samples


def stripes(n, vertical, seed):
    """32x32 stand-in images of two classes: vertical or horizontal stripes with random phase and noise."""
    rng = np.random.default_rng(seed)
    coords = np.arange(32)
    out = np.empty((n, 32, 32, 3), dtype=np.uint8)
    for i in range(n):
        wave = 127 + 100 * np.sin(coords * rng.uniform(0.4, 0.9) + rng.uniform(0, 6.3))
        img = np.tile(wave, (32, 1)) if vertical else np.tile(wave[:, None], (1, 32))
        img = img[..., None] * rng.uniform(0.7, 1.0, size=3) + rng.normal(0, 10, size=(32, 32, 3))
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def classifier_file(tmp_path_factory):
    images = np.concatenate([stripes(64, True, 0), stripes(64, False, 1)])
    labels = np.array([0] * 64 + [1] * 64)
    model = train_small_classifier(images, labels, num_classes=2, epochs=3, batch_size=16, lr=5e-3, width=8)
    path = tmp_path_factory.mktemp("cnn") / "small-cnn.pt"
    save_small_classifier(model, path)
    return str(path)


@pytest.fixture()
def files(tmp_path):
    # classes interleaved: IS splits are consecutive (ADM does not shuffle), so each split holds both
    ref = np.stack([stripes(30, True, 10), stripes(30, False, 11)], axis=1).reshape(60, 32, 32, 3)
    np.savez(tmp_path / "ref.npz", arr_0=ref)
    np.savez(tmp_path / "same.npz", arr_0=ref)
    np.savez(tmp_path / "vertical.npz", arr_0=stripes(40, True, 12))
    return tmp_path


def run(files, samples, classifier_file, **kwargs):
    kwargs.setdefault("reference", files / "ref.npz")
    return evaluate_samples(files / samples, extractor="small-cnn", extractor_weights=classifier_file,
                            batch_size=16, cache_dir=files / "cache", **kwargs)


def test_classifier_saves_loads_and_separates_classes(classifier_file):
    model = load_small_classifier(classifier_file)
    assert model.name == "small-cnn-w8-c2" and len(model.weights_sha256) == 64
    x = torch.from_numpy(np.concatenate([stripes(10, True, 5), stripes(10, False, 6)])).permute(0, 3, 1, 2)
    with torch.no_grad():
        accuracy = (model(x.contiguous()).logits.argmax(1) == torch.tensor([0] * 10 + [1] * 10)).float().mean()
    assert accuracy >= 0.9


def test_small_classifier_spatial_features_are_nhwc():
    model = SmallClassifier(num_classes=3, width=8).eval()
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        fmap, feats = model.trunk(x), model(x)
    assert torch.equal(feats.spatial, fmap[:, :7].permute(0, 2, 3, 1).reshape(2, -1))
    assert feats.spatial[0, 7 * 1 + 0] == fmap[0, 0, 0, 1]  # (h=0, w=1, c=0) right after (0, 0, c<7)


def test_end_to_end_json(files, classifier_file):
    out = files / "results" / "metrics.json"
    same = run(files, "same.npz", classifier_file, out_json=out)
    on_disk = json.loads(out.read_text())
    assert on_disk == same
    # samples = reference images; sFID's 448-d covariance of 60 images is singular, where sqrtm is accurate
    # only to ~1e-4 (ADM's evaluator shares this)
    assert abs(same["fid"]) < 1e-6 and abs(same["sfid"]) < 1e-2
    assert same["precision"] == 1.0 and same["recall"] == 1.0
    assert same["is"] > 1.5  # two confident, balanced classes: close to 2
    assert same["num_samples"] == 60 and same["feature_extractor"] == "small-cnn-w8-c2"
    assert same["feature_extractor_sha256"] == load_small_classifier(classifier_file).weights_sha256
    assert same["reference"].startswith("ref.npz@sha256:") and same["wall_time_s"] > 0
    assert list((files / "cache").glob("ref-*-small-cnn-w8-c2-*.npz"))  # reference statistics cached
    assert not list(out.parent.glob(".*tmp"))

    one_class = run(files, "vertical.npz", classifier_file)
    assert one_class["fid"] > 10 * max(same["fid"], 1e-3)
    assert one_class["recall"] < 0.8  # the horizontal half of the reference is not covered
    assert one_class["is"] < same["is"]


def test_precomputed_reference_statistics_are_used(files, classifier_file):
    # ADM-style reference: arr_0 images plus mu/sigma/mu_s/sigma_s of another set: FID must use the latter
    stats = run(files, "vertical.npz", classifier_file, reference=files / "vertical.npz", metrics="fid")
    assert abs(stats["fid"]) < 1e-6
    model = load_small_classifier(classifier_file)
    with torch.no_grad():
        feats = model(torch.from_numpy(np.load(files / "vertical.npz")["arr_0"]).permute(0, 3, 1, 2).contiguous())
    pool, spatial = feats.pool.double().numpy(), feats.spatial.double().numpy()
    np.savez(files / "adm_ref.npz", arr_0=np.load(files / "ref.npz")["arr_0"], mu=pool.mean(0),
             sigma=np.cov(pool, rowvar=False), mu_s=spatial.mean(0), sigma_s=np.cov(spatial, rowvar=False))
    result = run(files, "vertical.npz", classifier_file, reference=files / "adm_ref.npz")
    assert abs(result["fid"]) < 1e-4 and abs(result["sfid"]) < 1e-4
    assert result["reference_stats"] == "precomputed (ADM npz)"
    assert result["recall"] < 0.8  # precision/recall still against arr_0 (both classes)


def test_float_samples_are_rejected(files, classifier_file):
    np.savez(files / "float.npz", arr_0=np.random.rand(12, 32, 32, 3).astype(np.float32))
    with pytest.raises(ValueError, match=r"float\.npz \[arr_0\]: dtype float32, expected uint8"):
        run(files, "float.npz", classifier_file)


def test_nchw_samples_are_rejected(files, classifier_file):
    np.savez(files / "nchw.npz", arr_0=np.zeros((12, 3, 32, 32), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"looks like NCHW, use x.transpose\(0, 2, 3, 1\)"):
        run(files, "nchw.npz", classifier_file)


def test_wrong_image_size_is_rejected(files, classifier_file):
    np.savez(files / "small.npz", arr_0=np.zeros((12, 16, 16, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="16x16, expected 32x32"):
        run(files, "small.npz", classifier_file)
    with pytest.raises(ValueError, match="32x32, expected 256x256"):
        run(files, "same.npz", classifier_file, image_size=256)


def test_too_few_samples_for_is_splits(files, classifier_file):
    np.savez(files / "few.npz", arr_0=stripes(9, True, 3))
    with pytest.raises(ValueError, match="few.npz.*10 splits needs at least 10 samples, got 9"):
        run(files, "few.npz", classifier_file, metrics="is")


def test_reference_with_another_feature_size_is_rejected(files, classifier_file):
    np.savez(files / "inception_stats.npz", mu=np.zeros(2048), sigma=np.eye(2048), mu_s=np.zeros(2023),
             sigma_s=np.eye(2023))
    with pytest.raises(ValueError, match="2048-d, but extractor small-cnn-w8-c2 makes 32-d"):
        run(files, "same.npz", classifier_file, reference=files / "inception_stats.npz", metrics="fid")


def test_missing_key_unknown_metric_and_missing_reference(files, classifier_file):
    np.savez(files / "images.npz", images=stripes(12, True, 4))
    with pytest.raises(ValueError, match=r"no array 'arr_0' \(found \['images'\]\)"):
        run(files, "images.npz", classifier_file)
    with pytest.raises(ValueError, match="unknown metrics"):
        run(files, "same.npz", classifier_file, metrics="fid,kid")
    with pytest.raises(ValueError, match="need a reference"):
        run(files, "same.npz", classifier_file, reference=None, metrics="fid")
