"""evaluate_samples: FID, sFID, IS, precision/recall of an ADM-format sample .npz, written to one JSON.

The protocol is ADM's evaluator (openai/guided-diffusion evaluations/evaluator.py): FID on pool
features against the reference statistics, sFID on spatial features, IS over 10 splits of the
sample logits, precision/recall with k = 3 against the reference images' pool features. Only the
feature network is swappable (Inception for the paper scale, the small stand-in classifier for the
embedded default); its name and weights checksum go into the result.

Beside every metric m, a 95 % bootstrap interval m_ci_low, m_ci_high (evaluation/metrics/bootstrap.py,
`bootstrap` replicates, 0 = none) from the features already extracted: FID resamples samples and reference
features; sFID the samples against the reference's spatial statistics (its spatial features are not kept);
IS, precision, class_acc the samples; recall the reference points. class_acc is the share of samples the
classifier assigns to their conditioning label (arr_1): the ImageNet ResNet-50 of classifier_weights when
given (evaluation/extractors/imagenet_classifier.py), else the extractor where its classes are the dataset's
labels (the stand-in CNN); otherwise it is empty and class_acc_note says why.
"""

import time

import numpy as np

from evaluation.extractors.imagenet_classifier import KEY as CLASSIFIER_KEY
from evaluation.extractors.imagenet_classifier import ImageNetClassifier, classify, load_imagenet_classifier
from evaluation.metrics import bootstrap
from evaluation.metrics.class_accuracy import correct
from evaluation.metrics.extract import extract
from evaluation.metrics.feature_extractor import FeatureExtractor
from evaluation.metrics.frechet import frechet_distance
from evaluation.metrics.inception_score import check_split_count, inception_score
from evaluation.metrics.npz_images import check_images, open_npz_array
from evaluation.metrics.precision_recall import precision_recall_indicators
from evaluation.metrics.reference import load_reference
from ptdit.atomic import atomic_json

METRICS = ("fid", "sfid", "is", "prc")
EXTRACTORS = ("inception", "small-cnn")


def build_extractor(extractor="inception", weights=None):
    """A FeatureExtractor from a name and a local weights path (or an instance, returned as is)."""
    if isinstance(extractor, FeatureExtractor):
        return extractor
    if extractor == "inception":
        from evaluation.metrics.inception import load_inception

        return load_inception(weights)
    if extractor == "small-cnn":
        from evaluation.extractors.small_classifier import load_small_classifier

        if not weights:
            raise ValueError("extractor 'small-cnn' needs its weights file (--extractor-weights PATH)")
        return load_small_classifier(weights)
    raise ValueError(f"unknown feature extractor {extractor!r}; choose one of {EXTRACTORS}")


def parse_metrics(metrics):
    """'fid,sfid' or ['fid', 'sfid'] -> a validated tuple."""
    names = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    names = tuple(m.strip().lower() for m in names if m.strip())
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ValueError(f"unknown metrics {unknown or names}; choose from {','.join(METRICS)}")
    return names


def evaluate_samples(samples_npz, reference=None, metrics=METRICS, extractor="inception", extractor_weights=None,
                     batch_size=100, device="cpu", out_json=None, cache_dir=None, image_size=None, is_splits=10,
                     prc_k=3, replicates=bootstrap.DEFAULT_REPLICATES, seed=0, classifier_weights=None):
    """Evaluate samples_npz (arr_0 = uint8 [N, H, W, 3]) and return (and optionally write) the results.

    reference: ADM reference .npz, .npz of images, or image folder (needed for fid/sfid/prc).
    metrics: any of fid, sfid, is, prc, as a tuple or a comma-separated string.
    extractor: 'inception' | 'small-cnn' | a FeatureExtractor; extractor_weights: its local file
        (for inception, else $PTDIT_INCEPTION_WEIGHTS).
    image_size: the expected sample size (e.g. 256); by default that of the reference images.
    classifier_weights: a local torchvision ResNet-50 state dict for the class accuracy of ImageNet-1k samples.
    cache_dir: where computed reference statistics are cached by content hash.
    """
    start = time.time()
    metrics = parse_metrics(metrics)
    samples_npz = str(samples_npz)
    needs_reference = [m for m in metrics if m != "is"]
    if needs_reference and reference is None:
        raise ValueError(f"metrics {needs_reference} need a reference (--reference PATH)")
    with open_npz_array(samples_npz, "arr_0") as arr:
        where = f"samples {samples_npz} [arr_0]"
        check_images(arr.shape, arr.dtype, where, image_size)
        if "is" in metrics:
            check_split_count(len(arr), is_splits, where)
        model = build_extractor(extractor, extractor_weights)
        # loaded before the long extraction so that a wrong path fails at once
        classifier = load_imagenet_classifier(classifier_weights) if classifier_weights else None
        if model.input_size is not None:
            check_images(arr.shape, arr.dtype, f"{where} for extractor {model.name}", model.input_size)
        ref = None
        if needs_reference:
            ref = load_reference(reference, model, cache_dir, need_features="prc" in metrics or replicates > 0,
                                 batch_size=batch_size, device=device)
            if image_size is None and ref.image_size is not None:
                check_images(arr.shape, arr.dtype, f"{where} vs reference {ref.ref_id}", ref.image_size)
        intervals = replicates > 0
        labels = sample_labels(samples_npz)
        classified = []   # the ResNet-50's predictions, made on the batches the extractor reads (one pass)
        batches = arr.batches(batch_size)
        if classifier is not None and labels is not None:
            batches = classify_on_the_way(batches, classifier, device, classified)
        got = extract(model, batches, len(arr), device, keep_pool="prc" in metrics or intervals,
                      keep_logits=True, desc="samples", keep_spatial=intervals and "sfid" in metrics)
    predicted = np.concatenate(classified) if classified else got.logits

    result, ci = {}, {}
    if "fid" in metrics:
        result["fid"] = frechet_distance(*got.pool_stats.mu_sigma(), *ref.pool)
        if intervals:
            ci["fid"] = (bootstrap.fid_interval(got.pool_features, ref.pool_features, result["fid"], replicates, seed)
                         if ref.stats_source.startswith("computed") else
                         bootstrap.fid_interval_fixed_reference(got.pool_features, *ref.pool, result["fid"], replicates, seed))
    if "sfid" in metrics:
        result["sfid"] = frechet_distance(*got.spatial_stats.mu_sigma(), *ref.spatial)
        if intervals:
            ci["sfid"] = bootstrap.fid_interval_fixed_reference(got.spatial_features, *ref.spatial, result["sfid"],
                                                                replicates, seed + 1)
    if "is" in metrics:
        result["is"], result["is_std"] = inception_score(got.logits, is_splits)
        if intervals:
            ci["is"] = bootstrap.inception_score_interval(got.logits, result["is"], is_splits, replicates, seed + 2)
    if "prc" in metrics:
        inside_ref, inside_samples = precision_recall_indicators(ref.pool_features, got.pool_features, prc_k,
                                                                 device=device)
        result["precision"], result["recall"] = float(inside_ref.mean()), float(inside_samples.mean())
        if intervals:
            ci["precision"] = bootstrap.mean_interval(inside_ref, replicates, seed + 3)
            ci["recall"] = bootstrap.mean_interval(inside_samples, replicates, seed + 4)
    judge = classifier if classifier is not None else model
    note = class_acc_note(judge, labels, got.logits.shape[1])
    result["class_acc"], result["class_acc_note"] = None, note
    if note is None:
        hits = correct(predicted, labels)
        result["class_acc"] = float(hits.mean())
        if intervals:
            ci["class_acc"] = bootstrap.mean_interval(hits, replicates, seed + 5)
    for m, (low, high) in ci.items():
        result[f"{m}_ci_low"], result[f"{m}_ci_high"] = low, high
    result.update(
        num_samples=got.count,
        samples=samples_npz,
        image_size=int(arr.shape[1]),
        feature_extractor=model.name,
        feature_extractor_sha256=model.weights_sha256,
        class_acc_classifier=None if note else judge.name,
        class_acc_classifier_sha256=None if note else judge.weights_sha256,
        reference=ref.ref_id if ref else None,
        reference_stats=ref.stats_source if ref else None,
        protocol={"evaluator": "ADM (guided-diffusion evaluations/evaluator.py)", "is_splits": is_splits,
                  "prc_k": prc_k,
                  "bootstrap": {"replicates": replicates, "level": bootstrap.LEVEL, "seed": seed, "interval": "basic"},
                  "num_reference_images": None if ref is None or ref.pool_features is None else int(len(ref.pool_features))},
        device=str(device),
        wall_time_s=round(time.time() - start, 3),
    )
    if out_json:
        atomic_json(out_json, result)
    return result


def classify_on_the_way(batches, classifier, device, predictions):
    """Each batch, after appending the classifier's predictions for it to `predictions`: the class accuracy
    reads the samples in the same pass as the feature extractor (a 50k x 256 px .npz is ~10 GB to decompress)."""
    for batch in batches:
        predictions.append(classify(classifier, [batch], device))
        yield batch


def sample_labels(samples_npz):
    """The conditioning labels (arr_1) of an ADM-format sample file, or None."""
    with np.load(samples_npz, allow_pickle=False) as z:
        return z["arr_1"] if "arr_1" in z.files else None


def class_acc_note(classifier, labels, num_logits):
    """None when class accuracy can be computed, else the reason it is empty. classifier: the ImageNet
    classifier when one is configured, else the feature extractor (num_logits: its logits' width)."""
    if labels is None:
        return "the samples have no labels (arr_1)"
    if isinstance(classifier, ImageNetClassifier):
        num_logits = classifier.num_classes
    elif not getattr(classifier, "dataset_classes", False):
        return (f"no ImageNet classifier configured: set {CLASSIFIER_KEY} to a local torchvision ResNet-50 "
                f"state dict (ptdit evaluate --classifier-weights); feature extractor {classifier.name} does not "
                f"classify the dataset's labels")
    if int(labels.min()) < 0 or num_logits <= int(labels.max()):
        return (f"labels span [{int(labels.min())}, {int(labels.max())}] but {classifier.name} has {num_logits} "
                f"classes")
    return None
