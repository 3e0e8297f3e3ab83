"""Reading ADM-format image arrays (.npz with arr_0 = uint8 [N, H, W, 3]) in batches, and checking them.

Streaming follows ADM evaluator.py open_npz_array: read the .npy header inside the zip and then the
rows batch by batch, so 50,000 samples at 256 px (9.8 GB) never sit in memory at once. Nothing is
unpickled: object arrays are refused (the np.load(allow_pickle=False) rule).
"""

import zipfile
from contextlib import contextmanager

import numpy as np


class ImageArray:
    def __init__(self, path, key, shape, dtype, stream):
        self.path, self.key, self.shape, self.dtype, self._stream = path, key, tuple(shape), dtype, stream

    def __len__(self):
        return self.shape[0]

    def batches(self, batch_size):
        row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        for start in range(0, self.shape[0], batch_size):
            n = min(batch_size, self.shape[0] - start)
            data = _read_exactly(self._stream, n * row_bytes)
            yield np.frombuffer(data, dtype=self.dtype).reshape((n, *self.shape[1:]))


def _read_exactly(stream, size):
    chunks, got = [], 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            raise ValueError(f"npz ended early: expected {size} more bytes, got {got}")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def npz_keys(path):
    with zipfile.ZipFile(path) as zf:
        return [n[: -len(".npy")] for n in zf.namelist() if n.endswith(".npy")]


@contextmanager
def open_npz_array(path, key="arr_0"):
    """Yields an ImageArray over path[key] whose batches() stream from the file."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, FileNotFoundError, IsADirectoryError) as err:
        raise ValueError(f"{path}: not a readable .npz file ({err}); samples are saved with np.savez(path, arr_0=images)")
    with zf:
        if f"{key}.npy" not in zf.namelist():
            raise ValueError(f"{path}: no array {key!r} (found {npz_keys(path)}); the ADM format stores the images "
                             f"as arr_0: np.savez(path, arr_0=images)")
        with zf.open(f"{key}.npy") as stream:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise ValueError(f"{path}[{key}]: .npy format version {version} is not supported; re-save with np.savez")
            if dtype.hasobject:
                raise ValueError(f"{path}[{key}]: object arrays are refused (they would need unpickling)")
            if fortran:
                raise ValueError(f"{path}[{key}]: Fortran-ordered array; re-save with np.savez(path, arr_0=np.ascontiguousarray(x))")
            yield ImageArray(path, key, shape, dtype, stream)


def check_images(shape, dtype, where, image_size=None):
    """Raise a ValueError that names the problem and its fix unless shape/dtype is uint8 [N, S, S, 3]."""
    shape = tuple(shape)
    if np.dtype(dtype) != np.uint8:
        raise ValueError(
            f"{where}: dtype {np.dtype(dtype)}, expected uint8 in [0, 255] (ADM format). Convert floats in [-1, 1] "
            f"with np.clip(np.round((x + 1) * 127.5), 0, 255).astype(np.uint8) (in [0, 1]: x * 255)"
        )
    if len(shape) != 4:
        raise ValueError(f"{where}: shape {shape}, expected 4 dims [N, H, W, 3] (NHWC)")
    if shape[-1] != 3:
        hint = "; it looks like NCHW, use x.transpose(0, 2, 3, 1)" if shape[1] == 3 else ""
        raise ValueError(f"{where}: shape {shape}, expected NHWC [N, H, W, 3] with 3 RGB channels last{hint}")
    if shape[1] != shape[2]:
        raise ValueError(f"{where}: images are {shape[1]}x{shape[2]}, expected square images")
    if image_size is not None and shape[1] != image_size:
        raise ValueError(f"{where}: images are {shape[1]}x{shape[2]}, expected {image_size}x{image_size}")
    if shape[0] == 0:
        raise ValueError(f"{where}: holds no images")
