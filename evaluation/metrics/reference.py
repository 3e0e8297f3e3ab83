"""Reference sets for FID/sFID/precision/recall.

Accepted references:
- ADM's reference batch (e.g. VIRTUAL_imagenet256_labeled.npz): arr_0 = 10k uint8 NHWC images plus
  mu/sigma (pool_3) and mu_s/sigma_s (mixed_6/conv) of the whole training set. As ADM's
  Evaluator.read_statistics does, FID/sFID use those precomputed statistics; precision/recall use
  the pool features of arr_0.
- any .npz with arr_0 images, or a folder of images (all the same size): statistics computed here.
Whatever is computed is cached in cache_dir under the sha256 of the reference content and the
extractor's name and weights checksum, so it is computed once.
"""

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluation.metrics.extract import extract
from evaluation.metrics.feature_extractor import file_sha256
from evaluation.metrics.npz_images import check_images, npz_keys, open_npz_array
from ptdit.atomic import atomic_write

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


@dataclass
class Reference:
    ref_id: str  # "<name>@sha256:<first 16 hex>"
    pool: tuple  # (mu, sigma) of pool features
    spatial: tuple  # (mu, sigma) of spatial features
    pool_features: np.ndarray | None  # [N, D] for precision/recall, None when not requested
    image_size: int | None
    stats_source: str  # "precomputed (ADM npz)" or "computed with <extractor>"


def content_sha256(path):
    """sha256 of a file, or of a folder's sorted (relative path, file sha256) list."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for f in _image_files(path):
        digest.update(f"{f.relative_to(path).as_posix()}\0{file_sha256(f)}\n".encode())
    return digest.hexdigest()


def _image_files(folder):
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _folder_batches(files, batch_size):
    from PIL import Image

    for start in range(0, len(files), batch_size):
        yield np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files[start : start + batch_size]])


def _folder_shape(folder):
    from PIL import Image

    files = _image_files(folder)
    if not files:
        raise ValueError(f"reference folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    sizes = {}
    for f in files:
        with Image.open(f) as im:
            sizes.setdefault(im.size, f)
    if len(sizes) > 1:
        raise ValueError(f"reference folder {folder}: images of several sizes {sorted(sizes)} (e.g. "
                         f"{list(sizes.values())[:2]}); center-crop and resize them to one size first")
    (w, h), = sizes
    return files, (len(files), h, w, 3)


def _check_dims(stats, dim, what, path, extractor):
    mu, sigma = stats
    if mu.shape != (dim,) or sigma.shape != (dim, dim):
        raise ValueError(
            f"reference {path}: {what} statistics are {mu.shape[0]}-d, but extractor {extractor.name} makes "
            f"{dim}-d features; use a reference made with the same extractor, or its images (arr_0)"
        )


def _cache_path(cache_dir, sha, extractor):
    return Path(cache_dir) / f"ref-{sha[:16]}-{extractor.name}-{extractor.weights_sha256[:12]}.npz"


def _compute(path, extractor, batch_size, device):
    """Statistics and pool features of the reference images (npz arr_0 or a folder)."""
    if Path(path).is_dir():
        files, shape = _folder_shape(path)
        check_images(shape, np.uint8, f"reference folder {path}")
        got = extract(extractor, _folder_batches(files, batch_size), len(files), device, keep_pool=True,
                      desc="reference")
        return got, shape[1]
    with open_npz_array(path, "arr_0") as arr:
        check_images(arr.shape, arr.dtype, f"reference {path} [arr_0]")
        got = extract(extractor, arr.batches(batch_size), len(arr), device, keep_pool=True, desc="reference")
        return got, arr.shape[1]


def write_npz(path, data):
    with open(path, "wb") as f:   # a file object: np.savez would append .npz to a path
        np.savez(f, **data)


def _load_or_compute(path, sha, extractor, cache_dir, batch_size, device):
    cache = _cache_path(cache_dir, sha, extractor) if cache_dir else None
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    got, size = _compute(path, extractor, batch_size, device)
    mu, sigma = got.pool_stats.mu_sigma()
    mu_s, sigma_s = got.spatial_stats.mu_sigma()
    data = dict(mu=mu, sigma=sigma, mu_s=mu_s, sigma_s=sigma_s, pool_features=got.pool_features,
                image_size=np.int64(size))
    if cache is not None:
        atomic_write(str(cache), lambda tmp: write_npz(tmp, data))
    return data


def load_reference(path, extractor, cache_dir=None, need_features=True, batch_size=100, device="cpu"):
    """A Reference for `extractor`: precomputed ADM statistics where the npz has them, else computed."""
    path = str(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"reference {path} not found (an ADM reference .npz such as "
                                f"VIRTUAL_imagenet256_labeled.npz, an .npz with arr_0 images, or an image folder)")
    sha = content_sha256(path)
    ref_id = f"{Path(path).name}@sha256:{sha[:16]}"
    precomputed = None
    if os.path.isfile(path):
        keys = npz_keys(path)
        if {"mu", "sigma", "mu_s", "sigma_s"} <= set(keys):
            with np.load(path, allow_pickle=False) as f:
                precomputed = (f["mu"], f["sigma"]), (f["mu_s"], f["sigma_s"])
            _check_dims(precomputed[0], extractor.pool_dim, "pool (mu, sigma)", path, extractor)
            _check_dims(precomputed[1], extractor.spatial_dim, "spatial (mu_s, sigma_s)", path, extractor)
        elif "arr_0" not in keys:
            raise ValueError(f"reference {path}: neither images (arr_0) nor statistics (mu, sigma, mu_s, sigma_s); "
                             f"found {keys}")
        if precomputed is not None and not need_features:
            size = None
            if "arr_0" in keys:
                with open_npz_array(path, "arr_0") as arr:
                    size = arr.shape[1] if len(arr.shape) == 4 else None
            return Reference(ref_id, precomputed[0], precomputed[1], None, size, "precomputed (ADM npz)")
        if precomputed is not None and "arr_0" not in keys:
            raise ValueError(f"reference {path}: precision/recall need the reference images (arr_0), which it lacks")
    data = _load_or_compute(path, sha, extractor, cache_dir, batch_size, device)
    if precomputed is not None:
        pool, spatial, source = precomputed[0], precomputed[1], "precomputed (ADM npz)"
    else:
        pool, spatial = (data["mu"], data["sigma"]), (data["mu_s"], data["sigma_s"])
        source = f"computed with {extractor.name}"
    return Reference(ref_id, pool, spatial, data["pool_features"] if need_features else None,
                     int(data["image_size"]), source)
