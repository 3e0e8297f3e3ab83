"""Training: tiny DiT / PT-DiT learn on the stand-in, kill-and-resume is bit-exact, NaN stops the run,
DDP on 2 CPU processes equals one process on the same global batch."""

import csv
import functools
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from ptdit.data.latents import encode_folder
from ptdit.data.standin import write_standin
from ptdit.train import NonFiniteLoss, TrainConfig, latest_checkpoint, lr_at, train
from tests.multiprocess import run_processes
from tests.tolerance import assert_close_scaled

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(depth=2, hidden_size=64, num_heads=4)
# PT-DiT on a 8x8 token grid: 2x2 windows (16 windows) instead of the default 64.
TINY_PT = dict(TINY, compression_ratio=[1, 2, 2])


@pytest.fixture(autouse=True)
def one_thread():
    # One thread: bit-exact comparisons across processes, and no slowdown on a busy 2-core machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pixels(tmp_path_factory):
    """The procedural stand-in at 16x16 px (8x8 tokens with patch 2), encoded in pixel mode."""
    root = tmp_path_factory.mktemp("standin")
    write_standin(root / "standin", "procedural", train_per_class=20, val_per_class=0)
    encode_folder(str(root / "standin" / "train"), str(root / "px"), image_size=16, num_workers=0, shard_size=64)
    return str(root / "px")


def config(run_dir, data, **kw):
    fields = dict(run_dir=str(run_dir), data=data, model="DiT-S/2", model_overrides=TINY, steps=12,
                  global_batch_size=8, lr=1e-3, ema_decay=0.99, ckpt_every=4, log_every=2, progress=False)
    fields.update(kw)
    return TrainConfig(**fields)


def losses(run_dir):
    with open(os.path.join(run_dir, "log.csv")) as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def weights(path):
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return ckpt["model"], ckpt["ema"]


@pytest.mark.parametrize("model,overrides,objective", [("DiT-S/2", TINY, "ddpm"),
                                                       ("PT-DiT/S-Class", TINY_PT, "sit")])
def test_tiny_models_learn(tmp_path, pixels, model, overrides, objective):
    cfg = config(tmp_path / "run", pixels, model=model, model_overrides=overrides, objective=objective,
                 steps=200, global_batch_size=16, ckpt_every=200, log_every=1)
    final = train(cfg)
    curve = losses(cfg.run_dir)
    assert len(curve) == 200
    start, end = np.mean(curve[:3]), np.mean(curve[-20:])
    print(f"{model} {objective}: loss {start:.4f} -> {end:.4f}")
    assert end < 0.6 * start
    model_state, ema_state = weights(final)
    assert all(torch.isfinite(v).all() for v in model_state.values())
    with open(os.path.join(cfg.run_dir, "log.csv")) as f:
        row = next(csv.DictReader(f))
    assert float(row["steps_per_s"]) > 0 and float(row["lr"]) == 1e-3 and float(row["grad_norm"]) > 0


KILLED_RUN = textwrap.dedent("""
    import os, signal, sys, torch
    sys.path.insert(0, {root!r})
    torch.set_num_threads(1)
    from ptdit.train import TrainConfig, train
    def kill(step, model, ctx):
        if step == {kill_at}:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no flush: as a preempted job
    train(TrainConfig.from_dict({fields!r}), on_step=kill)
""")


def test_kill_and_resume_is_bit_exact(tmp_path, pixels):
    reference = config(tmp_path / "reference", pixels)
    ref_model, ref_ema = weights(train(reference))

    killed = config(tmp_path / "killed", pixels)
    script = KILLED_RUN.format(root=ROOT, kill_at=7, fields=killed.to_dict())
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert latest_checkpoint(killed.run_dir).endswith("0000004.pt")
    assert not os.path.exists(os.path.join(killed.run_dir, "final.pt"))
    # A checkpoint write cut short leaves only a temporary, which resume ignores.
    open(os.path.join(killed.run_dir, "checkpoints", "0000008.pt.tmp999"), "wb").write(b"partial")

    model, ema = weights(train(killed))  # same command again: resumes from step 4
    assert all(torch.equal(model[k], ref_model[k]) for k in ref_model)
    assert all(torch.equal(ema[k], ref_ema[k]) for k in ref_ema)
    assert losses(killed.run_dir) == losses(reference.run_dir)  # the log has no duplicated steps
    ref_opt = torch.load(latest_checkpoint(reference.run_dir), weights_only=True)["opt"]["state"]
    opt = torch.load(latest_checkpoint(killed.run_dir), weights_only=True)["opt"]["state"]
    assert all(torch.equal(opt[i]["exp_avg_sq"], ref_opt[i]["exp_avg_sq"]) for i in ref_opt)


def test_exception_and_resume_with_more_steps(tmp_path, pixels):
    """An exception mid-run (kill at step 10), then a longer run on the same folder, equals one run."""
    reference = config(tmp_path / "reference", pixels, model="PT-DiT/S-Class", model_overrides=TINY_PT,
                       objective="sit", steps=12)
    ref_model, _ = weights(train(reference))

    def crash(step, model, ctx):
        if step == 10:
            raise KeyboardInterrupt
    short = config(tmp_path / "run", pixels, model="PT-DiT/S-Class", model_overrides=TINY_PT, objective="sit",
                   steps=12)
    with pytest.raises(KeyboardInterrupt):
        train(short, on_step=crash)
    model, _ = weights(train(short))
    assert all(torch.equal(model[k], ref_model[k]) for k in ref_model)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, pixels):
    def poison(step, model, ctx):
        if step == 5:
            with torch.no_grad():
                model.final_layer.linear.weight.fill_(float("nan"))
    cfg = config(tmp_path / "run", pixels)
    with pytest.raises(NonFiniteLoss, match="NaN/inf between steps 5 and 6") as err:
        train(cfg, on_step=poison)
    assert "0000004.pt" in str(err.value)
    assert sorted(os.listdir(os.path.join(cfg.run_dir, "checkpoints"))) == ["0000004.pt"]
    model, _ = weights(latest_checkpoint(cfg.run_dir))
    assert all(torch.isfinite(v).all() for v in model.values())


def test_resume_with_another_config_is_an_error(tmp_path, pixels):
    train(config(tmp_path / "run", pixels, steps=2))
    with pytest.raises(ValueError, match="lr"):
        train(config(tmp_path / "run", pixels, steps=4, lr=5e-4))


def test_lr_schedules_closed_form():
    cfg = TrainConfig(run_dir="r", data="d", steps=110, lr=2e-3, warmup_steps=10, lr_schedule="cosine")
    assert lr_at(cfg, 0) == pytest.approx(2e-4) and lr_at(cfg, 9) == pytest.approx(2e-3)  # linear warm-up
    assert lr_at(cfg, 10) == pytest.approx(2e-3)                                       # decay starts at lr
    assert lr_at(cfg, 60) == pytest.approx(1e-3)                                       # half-way: lr / 2
    assert lr_at(cfg, 85) == pytest.approx(1e-3 * (1 + np.cos(0.75 * np.pi)))
    assert lr_at(cfg, 110) == pytest.approx(0.0, abs=1e-12)
    constant = TrainConfig(run_dir="r", data="d", steps=110, lr=2e-3)
    assert {lr_at(constant, s) for s in (0, 50, 109)} == {2e-3}                        # DiT's default
    with pytest.raises(ValueError, match="lr_schedule: 'linear'"):
        lr_at(TrainConfig(run_dir="r", data="d", lr_schedule="linear"), 0)


def test_cosine_run_logs_its_lr_resumes_exactly_and_keeps_its_steps(tmp_path, pixels):
    reference = config(tmp_path / "reference", pixels, lr_schedule="cosine", warmup_steps=2, log_every=1)
    ref_model, _ = weights(train(reference))
    with open(os.path.join(reference.run_dir, "log.csv")) as f:
        logged = [float(r["lr"]) for r in csv.DictReader(f)]
    assert logged == pytest.approx([lr_at(reference, s) for s in range(12)])  # the rate each update used

    def crash(step, model, ctx):
        if step == 6:
            raise KeyboardInterrupt
    run = config(tmp_path / "run", pixels, lr_schedule="cosine", warmup_steps=2, log_every=1)
    with pytest.raises(KeyboardInterrupt):
        train(run, on_step=crash)
    with pytest.raises(ValueError, match="steps: 12 -> 20"):  # would bend the curve already followed
        train(config(tmp_path / "run", pixels, lr_schedule="cosine", warmup_steps=2, log_every=1, steps=20))
    model, _ = weights(train(run))
    assert all(torch.equal(model[k], ref_model[k]) for k in ref_model)


def mtimes(run_dir):
    return {os.path.relpath(os.path.join(d, f), run_dir): os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _, files in os.walk(run_dir) for f in files}


def test_training_a_finished_run_does_nothing(tmp_path, pixels, monkeypatch, caplog):
    """A finished SLURM job resubmitted by Snakemake's retries re-enters `ptdit train`: it must write
    nothing (final.pt, config.yaml, log.csv and checkpoints keep their mtimes) and cost seconds."""
    cfg = config(tmp_path / "run", pixels, steps=4, ckpt_every=2)
    final = train(cfg)
    before = mtimes(cfg.run_dir)
    assert {"final.pt", "config.yaml", "log.csv", os.path.join("checkpoints", "0000004.pt")} <= set(before)

    def no_data(folder):
        raise AssertionError("a finished run opened its training data")
    monkeypatch.setattr("ptdit.train.open_training_data", no_data)   # returns before any real work
    with caplog.at_level("INFO", logger="ptdit.train"):
        assert train(cfg) == final
    assert f"already finished: {final} holds step 4 (of 4); nothing to do" in caplog.text
    assert mtimes(cfg.run_dir) == before
    monkeypatch.undo()

    # The CLI says so too (the line a workflow log shows), and writes nothing.
    cli = [sys.executable, "-m", "ptdit.cli", "train", cfg.run_dir, "--data", pixels, "--model", "DiT-S/2",
           *[f"-m{k}={v}" for k, v in TINY.items()], "--steps", "4", "--batch-size", "8", "--lr", "1e-3",
           "--ema-decay", "0.99", "--ckpt-every", "2", "--log-every", "2", "--no-progress"]
    done = subprocess.run(cli, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0 and "already finished" in done.stderr, done.stderr[-2000:]
    assert mtimes(cfg.run_dir) == before

    # More steps than final.pt holds: the run goes on from its last checkpoint.
    longer = config(tmp_path / "run", pixels, steps=6, ckpt_every=2)
    assert torch.load(train(longer), weights_only=True)["step"] == 6


def test_a_final_pt_of_another_config_is_an_error(tmp_path, pixels):
    cfg = config(tmp_path / "run", pixels, steps=2)
    final = train(cfg)
    os.remove(os.path.join(cfg.run_dir, "config.yaml"))       # only final.pt tells what was trained
    with pytest.raises(ValueError, match=r"final\.pt' was trained with another config \(differs in lr: 0\.001 -> 0\.0005\)"):
        train(config(tmp_path / "run", pixels, steps=2, lr=5e-4))
    with open(final, "wb") as f:
        f.write(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"final\.pt' is not a readable `ptdit train` final\.pt"):
        train(cfg)


def save_grads(out_dir, step, model, ctx):
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    torch.save(grads, os.path.join(out_dir, f"grads_w{ctx.world_size}_r{ctx.rank}.pt"))


def train_one_step(run_dir, data, out_dir):
    train(config(run_dir, data, steps=1, ckpt_every=1, log_every=1), on_step=functools.partial(save_grads, out_dir))


def test_ddp_two_processes_equal_one(tmp_path, pixels):
    run_processes(1, train_one_step, str(tmp_path / "one"), pixels, str(tmp_path))
    run_processes(2, train_one_step, str(tmp_path / "two"), pixels, str(tmp_path))
    one = torch.load(tmp_path / "grads_w1_r0.pt", weights_only=True)
    for rank in range(2):  # after DDP's all-reduce every rank holds the mean gradient of the global batch
        two = torch.load(tmp_path / f"grads_w2_r{rank}.pt", weights_only=True)
        assert one.keys() == two.keys() and len(one) > 10
        for name in one:
            assert_close_scaled(two[name], one[name], what=f"gradient of {name}")
    model_one, _ = weights(tmp_path / "one" / "final.pt")
    model_two, _ = weights(tmp_path / "two" / "final.pt")
    for name in model_one:
        assert_close_scaled(model_two[name], model_one[name], what=name)
    assert losses(tmp_path / "one") == pytest.approx(losses(tmp_path / "two"), rel=1e-5)


def test_grad_checkpointing_gives_the_same_weights(tmp_path, pixels):
    plain, _ = weights(train(config(tmp_path / "plain", pixels, steps=2)))
    recomputed, _ = weights(train(config(tmp_path / "ckpt", pixels, steps=2, grad_checkpointing=True)))
    for name in plain:
        assert_close_scaled(recomputed[name], plain[name], what=name)


def test_compile_modes():
    import argparse

    from ptdit.cli.train import add_parser
    from ptdit.train import compile_mode
    parser = argparse.ArgumentParser().add_subparsers()
    add_parser(parser)
    cli = parser.choices["train"]
    assert cli.parse_args(["run", "--compile"]).compile == "default"
    assert cli.parse_args(["run", "--compile", "max-autotune"]).compile == "max-autotune"
    assert cli.parse_args(["run", "--no-compile"]).compile is False
    assert compile_mode(TrainConfig(run_dir="r", data="d")) is None
    assert compile_mode(TrainConfig(run_dir="r", data="d", compile=True)) == "default"
    assert compile_mode(TrainConfig(run_dir="r", data="d", compile="reduce-overhead")) == "reduce-overhead"
    with pytest.raises(ValueError, match="max-autotune"):
        compile_mode(TrainConfig(run_dir="r", data="d", compile="fast"))
