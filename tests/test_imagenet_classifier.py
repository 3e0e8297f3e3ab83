"""The ImageNet ResNet-50 of class_acc (evaluation/extractors/imagenet_classifier.py): its preprocessing
against torchvision's own preset transforms, the class accuracy it gives evaluate_samples (a head that
predicts one known class: a hand count), and the errors and note of a missing, broken or absent file."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import ResNet50_Weights, resnet50

from evaluation.extractors.imagenet_classifier import (
    CROP,
    STD,
    load_imagenet_classifier,
    preprocess,
)
from evaluation.extractors.small_classifier import SmallClassifier
from evaluation.metrics.evaluate import evaluate_samples
from evaluation.report.imagenet_plan import check_classifier

PREDICTED = 7  # the class the test head predicts for every image


@pytest.fixture(autouse=True)
def one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A ResNet-50 whose head ignores the features (zero weights) and whose bias is one-hot at PREDICTED."""
    torch.manual_seed(0)
    net = resnet50(weights=None)
    with torch.no_grad():
        net.fc.weight.zero_()
        net.fc.bias.zero_()
        net.fc.bias[PREDICTED] = 1.0
    path = tmp_path_factory.mktemp("resnet") / "resnet50-test.pth"
    torch.save(net.state_dict(), path)
    return path


def image(h, w, seed):
    """A smooth colour pattern plus noise, uint8 [h, w, 3]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([127 + 100 * np.sin(xx / 7 + c) * np.cos(yy / 11) for c in range(3)], -1)
    return np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("weights, resize", [(ResNet50_Weights.IMAGENET1K_V2, 232),
                                             (ResNet50_Weights.IMAGENET1K_V1, 256)])
@pytest.mark.parametrize("h, w", [(256, 256), (300, 256), (64, 80)])
def test_preprocessing_matches_torchvision(weights, resize, h, w):
    img = image(h, w, seed=h + w)
    ours = preprocess(torch.from_numpy(img).permute(2, 0, 1)[None], resize)[0]
    theirs_tensor = weights.transforms()(torch.from_numpy(img).permute(2, 0, 1))
    theirs_pil = weights.transforms()(Image.fromarray(img))
    assert ours.shape == theirs_tensor.shape == (3, CROP, CROP)
    # torchvision resizes uint8 tensors in uint8 (rounds: half a level), PIL rounds too (a level at most)
    level = 1 / 255 / min(STD)
    assert (ours - theirs_tensor).abs().max() <= 0.5 * level + 1e-5
    assert (ours - theirs_pil).abs().max() <= level + 1e-5


def samples_file(tmp_path, labels, size=32):
    path = tmp_path / "samples.npz"
    np.savez(path, arr_0=np.stack([image(size, size, seed=i) for i in range(len(labels))]), arr_1=np.array(labels))
    return path


def evaluate(path, extractor, **kwargs):
    return evaluate_samples(path, metrics="is", extractor=extractor, is_splits=1, batch_size=2, replicates=50,
                            **kwargs)


def test_class_acc_comes_from_the_classifier(tmp_path, weights_file):
    labels = [PREDICTED, 3, PREDICTED, 999]  # hand count: 2 of 4 are PREDICTED
    model = load_imagenet_classifier(str(weights_file))
    assert model.resize == 232 and model.name.startswith("resnet50-")  # an unknown file: V2's preset
    extractor = SmallClassifier(num_classes=10, width=8).eval()  # 10 classes: label 999 needs the ResNet
    got = evaluate(samples_file(tmp_path, labels), extractor, classifier_weights=str(weights_file))
    assert got["class_acc"] == 0.5 and got["class_acc_note"] is None
    assert 0 <= got["class_acc_ci_low"] <= 0.5 <= got["class_acc_ci_high"] <= 1
    assert got["class_acc_classifier"] == model.name
    assert got["class_acc_classifier_sha256"] == model.weights_sha256
    assert got["feature_extractor"] == extractor.name  # the other metrics keep their extractor


def test_classifier_and_extractor_read_the_samples_once(tmp_path, weights_file, monkeypatch):
    """The ResNet-50 classifies the batches the feature extractor reads: one pass over arr_0, not two."""
    import evaluation.metrics.evaluate as evaluate_module

    opened = []
    real_open = evaluate_module.open_npz_array
    monkeypatch.setattr(evaluate_module, "open_npz_array", lambda path, key: opened.append(key) or real_open(path, key))
    extractor = SmallClassifier(num_classes=10, width=8).eval()
    got = evaluate(samples_file(tmp_path, [PREDICTED, 3, PREDICTED, PREDICTED]), extractor,
                   classifier_weights=str(weights_file))
    assert got["class_acc"] == 0.75 and opened == ["arr_0"]


def test_no_classifier_gives_the_note(tmp_path):
    extractor = SmallClassifier(num_classes=10, width=8).eval()
    extractor.dataset_classes = False  # like Inception: its classes are not the samples' labels
    got = evaluate(samples_file(tmp_path, [1, 2]), extractor)
    assert got["class_acc"] is None and "class_acc_ci_low" not in got
    assert got["class_acc_note"].startswith(
        "no ImageNet classifier configured: set imagenet.extractor.classifier_weights to a local torchvision "
        "ResNet-50 state dict")


def test_bad_files_name_the_key_and_path(tmp_path, weights_file):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError, match=f"imagenet.extractor.classifier_weights.*{missing}"):
        evaluate(samples_file(tmp_path, [1, 2]), SmallClassifier(10, 8), classifier_weights=str(missing))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=f"imagenet.extractor.classifier_weights.*{garbage}"):
        load_imagenet_classifier(str(garbage))
    state = torch.load(weights_file, weights_only=True)
    del state["fc.bias"]
    partial = tmp_path / "partial.pth"
    torch.save(state, partial)
    with pytest.raises(ValueError, match=f"{partial} is not a torchvision ResNet-50 state dict.*fc.bias"):
        load_imagenet_classifier(str(partial))


def test_the_plan_refuses_the_classifier_on_other_classes():
    section = {"data": {"kind": "standin"}, "model_defaults": {"num_classes": 10},
               "extractor": {"kind": "small-cnn", "classifier_weights": "resnet50-11ad3fa6.pth"}}
    with pytest.raises(ValueError, match="imagenet.extractor.classifier_weights"):
        check_classifier(section)
    check_classifier({**section, "data": {"kind": "imagenet"}, "model_defaults": {"num_classes": 1000}})
    check_classifier({**section, "extractor": {"kind": "small-cnn", "classifier_weights": None}})
