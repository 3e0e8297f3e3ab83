"""Reader of IDX files (the format of MNIST and Fashion-MNIST), written from the format's description
(yann.lecun.com/exdb/mnist, "FILE FORMATS"): a 4-byte big-endian magic number 0x00 0x00 <type> <ndim>,
then ndim big-endian uint32 sizes, then the data in C order. Only type 0x08 (unsigned byte) is read:
it is the type of every MNIST / Fashion-MNIST file. A name ending in .gz is read through gzip.
"""

import gzip

import numpy as np

UBYTE = 0x08


def read_idx(path):
    """The array stored in the IDX file at `path` (uint8, shape from its header)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"IDX file {path} does not exist") from None
    except (OSError, EOFError) as err:   # gzip.BadGzipFile is an OSError
        raise ValueError(f"IDX file {path} cannot be read: {err}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != UBYTE or data[3] < 1:
        raise ValueError(f"IDX file {path}: bad magic number {data[:4].hex()} (expected 000008 then the number "
                         f"of dimensions, an unsigned-byte IDX file)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"IDX file {path}: truncated header ({len(data)} bytes, {ndim} dimensions)")
    shape = tuple(int(n) for n in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    size = int(np.prod(shape))
    if len(data) - header != size:
        raise ValueError(f"IDX file {path}: header says {'x'.join(map(str, shape))} = {size} bytes of data, "
                         f"the file has {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
