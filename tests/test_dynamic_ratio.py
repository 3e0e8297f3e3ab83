"""Dynamic compression ratio (issue 16, ptdit/dynamic_ratio.py): the schedule picks the stated ratio at
every sampler step of both objectives, a one-bucket schedule is the static model exactly, a batch split
by bucket equals each sample at its own ratio, training resumes bit-exactly, and the GFLOPs are the
call-weighted mean of the per-ratio counts."""

import os
import signal
import subprocess
import sys

import pytest
import torch

import ptdit
from evaluation.efficiency.dynamic_ratio_cost import sampler_timesteps, schedule_cost
from evaluation.efficiency.flops import model_gflops
from ptdit.diffusion.respace import space_timesteps
from ptdit.dynamic_ratio import bucket_of, noise_fraction, parse_schedule, schedule_from_name, schedule_name, with_time_kind
from ptdit.objectives import make_objective
from ptdit.train import latest_checkpoint, train
from tests.test_train import KILLED_RUN, ROOT, config, losses, pixels, weights  # noqa: F401 (pixels: a fixture)

SCHEDULE = [[0.6, [1, 2, 2]], [1.0, [1, 4, 4]]]          # fine near the data, coarse at high noise
TINY = dict(depth=2, hidden_size=32, num_heads=2, input_size=32, in_channels=3, num_classes=10)


pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py


def trained_like(model, seed=0):
    """Weights moved off DiT's zero init, so that every block and GIIM computes something (the fixed
    sin-cos positions stay)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model.eval()


def test_schedule_reading_and_errors():
    assert parse_schedule(SCHEDULE) == ((0.6, (1, 2, 2)), (1.0, (1, 4, 4)))
    assert schedule_name(SCHEDULE) == "1x2x2@0.6+1x4x4@1"
    assert schedule_from_name("1x2x2@0.6+1x4x4@1") == SCHEDULE
    for bad in ([[0.6, [1, 2, 2]]], [[0.7, [1, 2, 2]], [0.6, [1, 4, 4]], [1.0, [1, 8, 8]]], [[1.0, [2, 2]]], [0.5, 1.0]):
        with pytest.raises(ValueError, match="dynamic_ratio"):
            parse_schedule(bad)
    with pytest.raises(ValueError, match="does not tile"):
        ptdit.create_model("PT-DiT/S-Class", dynamic_ratio=[[1.0, [1, 3, 3]]], **TINY)
    with pytest.raises(ValueError, match="linear"):
        ptdit.create_model("PT-DiT/S-Class", dynamic_ratio=SCHEDULE, injection="linear", **TINY)
    with pytest.raises(ValueError, match="contradicts"):
        with_time_kind({"dynamic_ratio": SCHEDULE, "dynamic_ratio_time": "ddpm"}, "sit")
    assert with_time_kind({"dynamic_ratio": SCHEDULE}, "sit")["dynamic_ratio_time"] == "sit"
    assert with_time_kind({"depth": 2}, "sit") == {"depth": 2}


def test_ddpm_and_sit_times_of_one_noise_level_pick_one_ratio():
    # DDPM: 999 is the noisiest of 1000 steps; SiT: t = 0 is noise, t = 1 data (ptdit/transport/path.py)
    ddpm = torch.tensor([0, 300, 600, 601, 999])
    sit = torch.tensor([1.0, 0.7, 0.4, 0.399, 0.001])
    torch.testing.assert_close(noise_fraction(ddpm, "ddpm"), noise_fraction(sit, "sit"), atol=1e-6, rtol=0)
    schedule = parse_schedule(SCHEDULE)
    assert bucket_of(ddpm, schedule, "ddpm").tolist() == [0, 0, 0, 1, 1]
    assert bucket_of(sit, schedule, "sit").tolist() == [0, 0, 0, 1, 1]
    with pytest.raises(ValueError, match="not sit times"):
        bucket_of(ddpm, schedule, "sit")


@pytest.mark.parametrize("objective,sampler", [("ddpm", "ddpm"), ("ddpm", "ddim"), ("sit", "sde")])
def test_each_sampler_step_runs_at_the_stated_ratio(objective, sampler, monkeypatch):
    model = trained_like(ptdit.create_model("PT-DiT/S-Class", dynamic_ratio=SCHEDULE, dynamic_ratio_time=objective,
                                            learn_sigma=objective == "ddpm", **TINY))
    calls, forward_at = [], type(model).forward_at

    def recording(self, window, x, t, y):
        out = forward_at(self, window, x, t, y)
        calls.append((t.tolist(), tuple(window), self.window))
        return out
    monkeypatch.setattr(type(model), "forward_at", recording)
    noise = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        make_objective(objective).sample(model, noise, torch.tensor([1, 2]), num_steps=6, sampler=sampler)
    assert calls
    for ts, window, after in calls:
        assert len(set(ts)) == 1                 # a sampler calls with one t for the whole batch
        t = ts[0]
        noisy = t > 600 if objective == "ddpm" else t < 0.4      # the schedule, read independently
        assert window == ((1, 4, 4) if noisy else (1, 2, 2)), (t, window)
        assert after == (1, 2, 2)                # back at the built window after every call
    first, last = calls[0][1], calls[-1][1]
    assert first == (1, 4, 4) and last == (1, 2, 2)  # sampling starts coarse (noise), ends fine (data)


def test_one_bucket_schedule_is_the_static_model_exactly():
    torch.manual_seed(0)
    dynamic = trained_like(ptdit.create_model("PT-DiT/S-Class", dynamic_ratio=[[1.0, [1, 4, 4]]], **TINY))
    static = ptdit.create_model("PT-DiT/S-Class", compression_ratio=[1, 4, 4], **TINY).eval()
    static.load_state_dict(dynamic.state_dict())     # the same keys and shapes: no ratio-specific parameter
    gen = torch.Generator().manual_seed(1)
    x, t, y = torch.randn(3, 3, 32, 32, generator=gen), torch.tensor([5, 500, 999]), torch.tensor([0, 3, 10])
    with torch.no_grad():
        assert torch.equal(dynamic(x, t, y), static(x, t, y))
        assert torch.equal(dynamic.forward_with_cfg(x[:2].repeat(2, 1, 1, 1), t[:2].repeat(2), torch.tensor([0, 3, 10, 10]), 2.0),
                           static.forward_with_cfg(x[:2].repeat(2, 1, 1, 1), t[:2].repeat(2), torch.tensor([0, 3, 10, 10]), 2.0))


def test_a_batch_split_by_bucket_equals_each_sample_at_its_ratio():
    two = trained_like(ptdit.create_model("PT-DiT/S-Class", dynamic_ratio=SCHEDULE, **TINY))
    fine = ptdit.create_model("PT-DiT/S-Class", **TINY).eval()
    coarse = ptdit.create_model("PT-DiT/S-Class", compression_ratio=[1, 4, 4], **TINY).eval()
    for m in (fine, coarse):
        m.load_state_dict(two.state_dict())
    gen = torch.Generator().manual_seed(2)
    x, t, y = torch.randn(4, 3, 32, 32, generator=gen), torch.tensor([900, 10, 650, 599]), torch.tensor([1, 2, 3, 4])
    with torch.no_grad():
        out = two(x, t, y)
        for i, model in enumerate((coarse, fine, coarse, fine)):
            torch.testing.assert_close(out[i:i + 1], model(x[i:i + 1], t[i:i + 1], y[i:i + 1]), atol=1e-6, rtol=0)
    # gradients reach the shared parameters from both buckets
    two.train()
    two(x, t, y).square().mean().backward()
    assert all(p.grad is not None for p in two.parameters() if p.requires_grad)


def test_training_with_a_dynamic_ratio_resumes_bit_exactly(tmp_path, pixels, monkeypatch):  # noqa: F811
    # 16 px -> 8x8 tokens: (1,2,2) and (1,4,4) both tile it; SiT's t, 8 per batch, falls in both buckets
    overrides = dict(depth=2, hidden_size=32, num_heads=2, dynamic_ratio=SCHEDULE)
    kw = dict(model="PT-DiT/S-Class", model_overrides=overrides, objective="sit")
    reference = config(tmp_path / "reference", pixels, **kw)
    PTDiT = type(ptdit.create_model("PT-DiT/S-Class", **TINY))
    parts, forward_at = [], PTDiT.forward_at

    def recording(self, window, *args):
        parts.append(tuple(window))
        return forward_at(self, window, *args)
    monkeypatch.setattr(PTDiT, "forward_at", recording)
    ref_model, ref_ema = weights(train(reference))
    assert len(parts) > reference.steps and set(parts) == {(1, 2, 2), (1, 4, 4)}   # batches were split by bucket
    final = torch.load(os.path.join(reference.run_dir, "final.pt"), weights_only=True)
    assert final["model_overrides"]["dynamic_ratio_time"] == "sit"

    killed = config(tmp_path / "killed", pixels, **kw)
    script = KILLED_RUN.format(root=ROOT, kill_at=7, fields=killed.to_dict())
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert latest_checkpoint(killed.run_dir).endswith("0000004.pt")
    model, ema = weights(train(killed))
    assert all(torch.equal(model[k], ref_model[k]) for k in ref_model)
    assert all(torch.equal(ema[k], ref_ema[k]) for k in ref_ema)
    assert losses(killed.run_dir) == losses(reference.run_dir)


def test_gflops_are_the_call_weighted_mean_of_the_ratios():
    overrides = dict(TINY, dynamic_ratio=SCHEDULE)
    params, mean, per_ratio = schedule_cost("PT-DiT/S-Class", overrides, "ddpm", "ddpm", 25)
    # DiT's 25-step respacing of 1000 steps, read independently: the share of steps above t = 600
    kept = sorted(space_timesteps(1000, "25"))
    coarse_share = sum(t > 600 for t in kept) / len(kept)
    static = {r: model_gflops("PT-DiT/S-Class", **TINY, compression_ratio=list(r)) for r in ((1, 2, 2), (1, 4, 4))}
    assert params == static[(1, 2, 2)][0] == static[(1, 4, 4)][0]       # one set of weights
    assert per_ratio[(1, 4, 4)][0] == pytest.approx(coarse_share)
    assert mean == pytest.approx(coarse_share * static[(1, 4, 4)][1] + (1 - coarse_share) * static[(1, 2, 2)][1])
    assert static[(1, 4, 4)][1] < mean < static[(1, 2, 2)][1]
    # SiT's SDE: its calls run from t ~ 0 (noise) to ~ 1 (data), so the first calls are coarse
    ts = sampler_timesteps("sit", "sde", 25)
    assert ts[0] < 0.05 and ts[-1] > 0.9
    with pytest.raises(ValueError, match="per ratio"):
        model_gflops("PT-DiT/S-Class", **overrides)


def test_gflops_follow_the_sampler_options():
    """SiT's Euler ODE (the default config's sampler option): num_steps = 25 time points from 0 to 1 (SiT's
    linspace), one call at the start of each of the 24 intervals; with the schedule's bound at noise
    fraction 0.6 (t = 0.4) the 10 calls at t < 0.4 are coarse. Without the option the ODE is dopri5,
    whose adaptive calls are another count."""
    ts = sampler_timesteps("sit", "ode", 25, sampler_options={"sampling_method": "euler"})
    assert ts == pytest.approx([i / 24 for i in range(24)])
    overrides = dict(TINY, dynamic_ratio=SCHEDULE)
    _, _, per_ratio = schedule_cost("PT-DiT/S-Class", overrides, "sit", "ode", 25,
                                    sampler_options={"sampling_method": "euler"})
    assert per_ratio[(1, 4, 4)][0] == pytest.approx(10 / 24)
    assert len(sampler_timesteps("sit", "ode", 25)) != 24
