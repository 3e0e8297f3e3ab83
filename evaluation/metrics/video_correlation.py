"""Two correlations that tell learned video samples from coloured noise, sample against real:

- frame-to-frame: the Pearson correlation of frame t with frame t + 1 over every pixel and channel of a
  clip (each clip centred on its own mean), averaged over the pairs and clips. Real stand-in clips move
  little between frames (about 0.9); independent noise per frame gives 0.
- neighbouring-pixel: the same between each pixel and its right-hand and lower neighbours within a frame
  (about 0.9 on the real clips at 32 px; white noise gives 0).

Both are about signal, not quality: a clip repeating one sharp frame scores 1 on the first. They say
whether a trained model's samples have the real clips' structure at all, which FVD on a 7-source
stand-in does not (issue 17).
"""

import numpy as np


def _pearson(a, b):
    """Correlation of a and b along the last axis, after centring both on their joint mean per clip."""
    a, b = a - a.mean(axis=-1, keepdims=True), b - b.mean(axis=-1, keepdims=True)
    denom = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    return np.where(denom > 0, (a * b).sum(-1) / np.where(denom > 0, denom, 1), 0.0)


def _as_float(videos):
    videos = np.asarray(videos)
    if videos.ndim != 5 or videos.shape[-1] != 3:
        raise ValueError(f"expected videos [N, F, H, W, 3], got shape {videos.shape}")
    return videos.astype(np.float64)


def clip_frame_correlations(videos):
    """(N,) each clip's mean correlation of consecutive frames, uint8 clips [N, F, H, W, 3] (F >= 2)."""
    x = _as_float(videos)
    if x.shape[1] < 2:
        raise ValueError(f"frame-to-frame correlation needs at least 2 frames, got {x.shape[1]}")
    n, f = x.shape[:2]
    flat = x.reshape(n, f, -1)
    return _pearson(flat[:, :-1], flat[:, 1:]).mean(axis=1)


def frame_correlation(videos):
    """Mean correlation of consecutive frames of uint8 clips [N, F, H, W, 3] (needs F >= 2)."""
    return float(clip_frame_correlations(videos).mean())


def neighbour_correlation(videos):
    """Mean correlation of horizontally and vertically adjacent pixels, per frame and channel."""
    x = _as_float(videos)
    n, f = x.shape[:2]
    frames = x.transpose(0, 1, 4, 2, 3).reshape(n * f * 3, *x.shape[2:4])  # one image per frame and channel
    right = _pearson(frames[:, :, :-1].reshape(len(frames), -1), frames[:, :, 1:].reshape(len(frames), -1))
    down = _pearson(frames[:, :-1].reshape(len(frames), -1), frames[:, 1:].reshape(len(frames), -1))
    return float((right.mean() + down.mean()) / 2)

