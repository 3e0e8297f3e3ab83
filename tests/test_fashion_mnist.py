"""The Fashion-MNIST study (issue 15 item 6): the IDX reader on hand-made files, the fashion_mnist
stand-in source on a fake IDX folder, the study config (schema, dry run), and the real Debian files
when dataset-fashion-mnist is installed."""

import copy
import gzip
import os
import struct

import numpy as np
import pytest
import yaml
from PIL import Image

from ptdit.cli import main
from ptdit.data.idx import read_idx
from ptdit.data.standin import FASHION_MNIST_DIR, write_standin
from tests.test_snakemake_efficiency import ROOT, SNAKEMAKE, snakemake

STUDY_CONFIG = os.path.join(ROOT, "workflows", "config", "fashion_mnist.yaml")


def idx_bytes(array):
    """An IDX file written by hand from the format: 0x00 0x00 0x08 ndim, big-endian uint32 sizes, data."""
    array = np.asarray(array, dtype=np.uint8)
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_idx(path, array, gz=True):
    data = idx_bytes(array)
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)


def test_idx_bytes_match_the_format_by_hand(tmp_path):
    # 300 = 0x0000012c: a size above 255 shows the byte order
    assert idx_bytes(np.zeros(300))[:8] == b"\x00\x00\x08\x01\x00\x00\x01\x2c"
    path = tmp_path / "hand-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03" + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x01" + b"\x00\x00\x00\x03"
                     + bytes([1, 2, 3, 4, 5, 6]))
    assert read_idx(path).tolist() == [[[1, 2, 3]], [[4, 5, 6]]]


@pytest.mark.parametrize("gz", [False, True])
def test_idx_reader_round_trip(tmp_path, gz):
    array = np.random.default_rng(0).integers(0, 256, (5, 300, 2), dtype=np.uint8)
    path = tmp_path / ("a-idx3-ubyte" + (".gz" if gz else ""))
    write_idx(path, array, gz=gz)
    got = read_idx(path)
    assert got.dtype == np.uint8 and got.shape == (5, 300, 2) and np.array_equal(got, array)


def test_idx_reader_names_the_file_on_bad_magic_size_or_gzip(tmp_path):
    bad_magic = tmp_path / "bad-magic-ubyte"
    bad_magic.write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x01" + b"\x00" * 4)   # 0x0d: float, not ubyte
    with pytest.raises(ValueError, match="bad-magic-ubyte.*magic"):
        read_idx(bad_magic)
    short = tmp_path / "short-ubyte"
    short.write_bytes(idx_bytes(np.zeros((4, 3)))[:-1])
    with pytest.raises(ValueError, match="short-ubyte.*4x3 = 12 bytes.*11"):
        read_idx(short)
    not_gz = tmp_path / "plain-ubyte.gz"
    not_gz.write_bytes(idx_bytes(np.zeros(3)))
    with pytest.raises(ValueError, match="plain-ubyte.gz"):
        read_idx(not_gz)
    with pytest.raises(FileNotFoundError, match="missing-ubyte"):
        read_idx(tmp_path / "missing-ubyte")


def fake_fashion_mnist(folder, train_per_class=3, test_per_class=2):
    """IDX files in Debian's names: train images are all 100 + label, test images 20 + 10 * label, so a
    written JPEG shows which file and class it came from. Labels interleave classes as the real files do."""
    os.makedirs(folder, exist_ok=True)
    for split, per_class, base, step, gz in (("train", train_per_class, 100, 1, True),
                                             ("t10k", test_per_class, 20, 10, False)):
        labels = np.tile(np.arange(10), per_class)
        images = np.broadcast_to((base + step * labels)[:, None, None], (len(labels), 28, 28))
        suffix = ".gz" if gz else ""   # one split gzipped, one not: both are read
        write_idx(os.path.join(folder, f"{split}-images-idx3-ubyte{suffix}"), images, gz)
        write_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte{suffix}"), labels, gz)


def test_fashion_mnist_source_on_a_fake_idx_folder(tmp_path, capsys):
    fake_fashion_mnist(tmp_path / "idx")
    out = tmp_path / "standin"
    assert main(["prepare-standin", str(out), "--source", "fashion_mnist", "--train-per-class", "2",
                 "--val-per-class", "1", "--idx-dir", str(tmp_path / "idx")]) in (0, None)
    assert "train=20 val=10" in capsys.readouterr().out
    for split, per_class in (("train", 2), ("val", 1)):
        assert sorted(os.listdir(out / split)) == [f"n{c:08d}" for c in range(10)]
        assert all(len(os.listdir(out / split / f"n{c:08d}")) == per_class for c in range(10))
    for split, label, value in (("train", 7, 107), ("val", 7, 90), ("val", 0, 20)):
        arr = np.asarray(Image.open(next((out / split / f"n{label:08d}").iterdir())))
        assert arr.shape == (32, 32, 3)
        assert arr[:2].max() < 8 and arr[:, -2:].max() < 8                    # zero padding 28 -> 32
        assert abs(float(arr[8:24, 8:24].mean()) - value) < 3, (split, label)  # JPEG: near, not exact
    classes = (out / "classes.txt").read_text().splitlines()
    assert classes[0] == "n00000000 T-shirt/top" and classes[9] == "n00000009 Ankle boot" and len(classes) == 10


def test_fashion_mnist_source_asks_for_more_than_there_is_or_a_missing_folder(tmp_path):
    fake_fashion_mnist(tmp_path / "idx")
    with pytest.raises(ValueError, match=r"idx/train-\*: class 0 has 3 images, fewer than 4.*train_per_class"):
        write_standin(tmp_path / "a", "fashion_mnist", train_per_class=4, val_per_class=1, idx_dir=str(tmp_path / "idx"))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist.*fashion_mnist_dir"):
        write_standin(tmp_path / "b", "fashion_mnist", idx_dir=str(tmp_path / "nowhere"))


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR),
                    reason=f"Debian's dataset-fashion-mnist is not installed ({FASHION_MNIST_DIR})")
def test_the_real_debian_files():
    for split, n in (("train", 60000), ("t10k", 10000)):
        images = read_idx(os.path.join(FASHION_MNIST_DIR, f"{split}-images-idx3-ubyte.gz"))
        labels = read_idx(os.path.join(FASHION_MNIST_DIR, f"{split}-labels-idx1-ubyte.gz"))
        assert images.shape == (n, 28, 28) and labels.shape == (n,)
        assert np.bincount(labels, minlength=10).tolist() == [n // 10] * 10
        assert images.max() == 255 and images[:, 0].mean() < images[:, 14].mean()   # dark border, bright garments


def study_config():
    with open(os.path.join(ROOT, "workflows", "config", "default.yaml")) as f:
        config = yaml.safe_load(f)
    with open(STUDY_CONFIG) as f:
        study = yaml.safe_load(f)
    config["imagenet"] = {**config["imagenet"], **{k: v for k, v in study["imagenet"].items() if not isinstance(v, dict)}}
    for key, value in study["imagenet"].items():   # Snakemake's layering: dicts merge, lists replace
        if isinstance(value, dict):
            config["imagenet"][key] = {**config["imagenet"][key], **value}
    return config


def test_schema_accepts_the_study_and_refuses_a_misspelt_source():
    from snakemake.utils import validate

    schema = os.path.join(ROOT, "workflows", "config", "schema.yaml")
    config = study_config()
    validate(copy.deepcopy(config), schema)
    for key, value in (("standin_source", "fashion-mnist"), ("fashion_mnist_dri", "/x")):
        bad = copy.deepcopy(config)
        bad["imagenet"]["data"][key] = value
        with pytest.raises(Exception):
            validate(bad, schema)


@pytest.mark.skipif(not os.path.exists(SNAKEMAKE), reason="snakemake is not installed")
def test_study_dry_run_in_its_own_directory(tmp_path):
    study = tmp_path / "study"
    done = snakemake("results/table_imagenet.csv", "-n", "-p", "--directory", str(study), "--configfile", STUDY_CONFIG,
                     cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    # 5 rows x 3 seeds, each trained, sampled and evaluated once; no ToMe, ablation or compression run
    for rule, count in (("train", 15), ("sample", 15), ("evaluate", 15), ("prepare_standin", 1), ("table_imagenet", 1)):
        assert any(line.split() == [rule, str(count)] for line in out.splitlines()), (rule, out[-2500:])
    assert ("--source fashion_mnist --train-per-class 6000 --val-per-class 1000 --idx-dir "
            "/usr/share/datasets/fashion-mnist") in out
    assert "results/runs/fashion-mnist/PT-DiT_S-Class/sit/base/s3000_seed2/final.pt" in out
    assert "--epochs 5" in out and "_tome" not in out
    assert not (tmp_path / "results").exists()   # nothing planned outside the study's folder
