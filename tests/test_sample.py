"""Sampling: ADM-format .npz, DiT's uint8 rounding, 1 process == 2 processes, resume from shards,
official-style checkpoints (raw state dict, train.py dict) with pixel or VAE decoding, the CLI verbs."""

import os

import numpy as np
import pytest
import torch

import ptdit
from ptdit.cli import main
from ptdit.sample import SampleConfig, sample, shard_dir, to_uint8
from ptdit.train import train
from tests.multiprocess import run_processes
from tests.test_data import tiny_vae
from tests.test_train import TINY, config, one_thread, pixels  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def run(tmp_path_factory, pixels):  # noqa: F811
    """A tiny DiT trained for a few steps on the 16 px stand-in (its final.pt)."""
    torch.set_num_threads(1)
    return train(config(tmp_path_factory.mktemp("run") / "run", pixels, steps=4))


def sample_config(checkpoint, out, **kw):
    fields = dict(checkpoint=str(checkpoint), out=str(out), num_samples=10, batch_size=4, num_steps=5,
                  labels="balanced", progress=False)
    fields.update(kw)
    return SampleConfig(**fields)


def test_uint8_rounding_is_dit():
    x = torch.tensor([-1.5, -1.0, -0.002, 0.0, 0.5, 1.0, 2.0]).view(1, 1, 1, 7).expand(1, 3, 1, 7)
    assert to_uint8(x)[0, 0, :, 0].tolist() == [0, 0, 127, 128, 191, 255, 255]


def test_samples_npz_in_adm_format(tmp_path, run):
    out = sample(sample_config(run, tmp_path / "samples.npz", sampler="ddim"))
    with np.load(out, allow_pickle=False) as z:
        assert z.files == ["arr_0", "arr_1"]
        images, labels = z["arr_0"], z["arr_1"]
    assert images.shape == (10, 16, 16, 3) and images.dtype == np.uint8
    assert labels.tolist() == [i % 10 for i in range(10)]
    assert images.std() > 0 and not os.path.exists(shard_dir(out))


def test_resume_from_shards_gives_the_same_npz(tmp_path, run):
    first = sample(sample_config(run, tmp_path / "a.npz", keep_shards=True, labels="uniform"))
    shards = shard_dir(first)
    os.remove(os.path.join(shards, "shard_000001.npz"))
    mtime = os.stat(os.path.join(shards, "shard_000000.npz")).st_mtime_ns
    os.rename(first, tmp_path / "a_first.npz")
    again = sample(sample_config(run, tmp_path / "a.npz", keep_shards=True, labels="uniform"))
    assert os.stat(os.path.join(shards, "shard_000000.npz")).st_mtime_ns == mtime  # not redone
    with np.load(again) as b, np.load(tmp_path / "a_first.npz") as a:
        assert np.array_equal(a["arr_0"], b["arr_0"]) and np.array_equal(a["arr_1"], b["arr_1"])
    with pytest.raises(ValueError, match="another configuration"):
        os.remove(again)
        sample(sample_config(run, tmp_path / "a.npz", keep_shards=True, labels="uniform", cfg_scale=2.0))


def sample_in_process(cfg):
    sample(cfg)


@pytest.mark.parametrize("objective,sampler,cfg_scale", [("ddpm", "ddpm", 1.5), ("sit", "sde", 1.0)])
def test_one_and_two_processes_give_the_same_npz(tmp_path, run, objective, sampler, cfg_scale):
    if objective == "sit":  # a raw SiT state dict: the official-checkpoint path, SDE noise per sample
        torch.manual_seed(0)
        sit = ptdit.create_model("SiT-S/2", input_size=16, in_channels=3, num_classes=10, **TINY)
        torch.save(sit.state_dict(), tmp_path / "sit.pt")
        kw = dict(checkpoint=str(tmp_path / "sit.pt"), model="SiT-S/2",
                  model_overrides=dict(input_size=16, in_channels=3, num_classes=10, **TINY), decoder="pixel")
    else:
        kw = dict(checkpoint=str(run))
    kw.update(sampler=sampler, cfg_scale=cfg_scale, labels="uniform", num_samples=7, batch_size=2)
    run_processes(1, sample_in_process, sample_config(out=tmp_path / "one.npz", **kw))
    run_processes(2, sample_in_process, sample_config(out=tmp_path / "two.npz", **kw))
    with np.load(tmp_path / "one.npz") as a, np.load(tmp_path / "two.npz") as b:
        assert a["arr_0"].shape == (7, 16, 16, 3)
        assert np.array_equal(a["arr_0"], b["arr_0"]) and np.array_equal(a["arr_1"], b["arr_1"])


def test_official_dit_train_checkpoint_through_a_vae(tmp_path):
    """DiT train.py's {model, ema, opt, args} on 4x4x4 latents, decoded by a (tiny) VAE folder."""
    import argparse
    tiny_vae(str(tmp_path / "vae"))
    overrides = dict(input_size=4, in_channels=4, num_classes=10, patch_size=2, **TINY)
    dit = ptdit.create_model("DiT-S/2", **overrides)
    torch.save({"model": dit.state_dict(), "ema": dit.state_dict(), "opt": {}, "args": argparse.Namespace(a=1)},
               tmp_path / "0400000.pt")
    out = sample(sample_config(tmp_path / "0400000.pt", tmp_path / "vae.npz", model="DiT-S/2",
                               model_overrides=overrides, decoder=str(tmp_path / "vae"), num_samples=3))
    with np.load(out) as z:
        assert z["arr_0"].shape == (3, 32, 32, 3) and z["arr_0"].dtype == np.uint8
    with pytest.raises(ValueError, match="--model"):
        sample(sample_config(tmp_path / "0400000.pt", tmp_path / "x.npz"))


def test_cli_verbs_end_to_end(tmp_path):
    data, latents, run_dir = tmp_path / "standin", tmp_path / "px", tmp_path / "run"
    assert main(["prepare-standin", str(data), "--source", "procedural", "--train-per-class", "4",
                 "--val-per-class", "1"]) == 0
    assert main(["encode", str(data / "train"), str(latents), "--image-size", "16", "--num-workers", "0"]) == 0
    assert main(["train", str(run_dir), "--data", str(latents), "--model", "PT-DiT/S-Class", "-m", "depth=1",
                 "-m", "hidden_size=32", "-m", "num_heads=2", "-m", "compression_ratio=[1,2,2]",
                 "--objective", "sit", "-o", "path_type=GVP", "--steps", "3", "--batch-size", "4",
                 "--ckpt-every", "2", "--log-every", "1"]) == 0
    assert sorted(os.listdir(run_dir / "checkpoints")) == ["0000002.pt", "0000003.pt"]
    assert {"config.yaml", "log.csv", "final.pt"} <= set(os.listdir(run_dir))
    assert main(["sample", str(run_dir / "final.pt"), str(tmp_path / "s.npz"), "--num-samples", "3",
                 "--num-steps", "4", "--sampler", "ode", "-s", "sampling_method=euler"]) == 0
    with np.load(tmp_path / "s.npz") as z:
        assert z["arr_0"].shape == (3, 16, 16, 3)


@pytest.mark.parametrize("objective,sampler", [("ddpm", "ddpm"), ("ddpm", "ddim"), ("sit", "ode"), ("sit", "sde")])
def test_batch_size_does_not_change_the_samples(tmp_path, objective, sampler):
    """Every per-step draw is seeded per sample (DDPM's ancestral noise included) and adaptive ODE steps
    are chosen per sample, so shards of 3 give the same images as one batch of 8."""
    torch.manual_seed(0)
    name = "DiT-S/2" if objective == "ddpm" else "SiT-S/2"
    overrides = dict(input_size=16, in_channels=3, num_classes=10, **TINY)
    model = ptdit.create_model(name, **overrides)
    with torch.no_grad():  # DiT's zero-initialised output layers would make every model predict 0
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    torch.save(model.state_dict(), tmp_path / "model.pt")
    kw = dict(model=name, model_overrides=overrides, decoder="pixel", objective=objective, sampler=sampler,
              labels="uniform", num_samples=8, num_steps=4, cfg_scale=1.5)
    images = {}
    for batch in (3, 8):
        out = sample(sample_config(tmp_path / "model.pt", tmp_path / f"b{batch}.npz", batch_size=batch, **kw))
        with np.load(out) as z:
            images[batch] = z["arr_0"]
    assert images[3].std() > 0 and len(np.unique(images[3].reshape(8, -1), axis=0)) == 8
    assert np.array_equal(images[3], images[8])
