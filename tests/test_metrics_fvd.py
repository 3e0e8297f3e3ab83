"""FVD plumbing with a tiny scripted stand-in for the I3D torchscript (same call signature)."""

import numpy as np
import pytest
import torch

from evaluation.metrics.fvd import I3D_FILE, I3D_URL, fvd, load_i3d, preprocess_videos


class TinyDetector(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 8, kernel_size=(4, 16, 16), stride=(4, 16, 16))

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = True):
        return self.conv(x).mean(dim=(3, 4)).flatten(1)  # [N, 8 * 4]


@pytest.fixture(scope="module")
def detector_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("i3d") / I3D_FILE
    torch.jit.script(TinyDetector()).save(str(path))
    return str(path)


def videos(seed, n, shift=0):
    x = np.random.default_rng(seed).integers(0, 200, size=(n, 18, 32, 40, 3)) + shift
    return x.astype(np.uint8)


def test_preprocessing_layout_range_and_crop():
    v = np.zeros((1, 16, 32, 64, 3), dtype=np.uint8)
    v[0, :, :, 32:, 0] = 255  # right half red: after a center crop of the 2:1 frame both halves remain
    clips = preprocess_videos(v)
    assert clips.shape == (1, 3, 16, 224, 224)
    assert clips.min() == -1 and clips.max() == 1
    assert clips[0, 0, 0, 100, 10] == -1 and clips[0, 0, 0, 100, 214] == 1
    with pytest.raises(ValueError, match="12 frames, the FVD clip length is 16"):
        preprocess_videos(np.zeros((1, 12, 8, 8, 3), dtype=np.uint8))


def test_fvd_zero_for_same_videos_and_grows_with_shift(detector_file):
    detector, sha = load_i3d(detector_file)
    same = fvd(videos(0, 40), videos(0, 40), detector, sha)
    shifted = fvd(videos(0, 40), videos(1, 40, shift=50), detector, sha)
    assert abs(same["fvd"]) < 1e-6
    assert shifted["fvd"] > 0.1  # the stand-in detector has small features; the same videos give < 1e-6
    assert shifted["protocol"]["clip_length"] == 16 and shifted["detector_sha256"] == sha


def test_missing_detector_names_file_and_url(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_i3d(str(tmp_path / I3D_FILE))
    assert I3D_FILE in str(err.value) and I3D_URL in str(err.value)
