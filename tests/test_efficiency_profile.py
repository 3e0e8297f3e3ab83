"""evaluation/efficiency/profile.py and `ptdit profile`: points, JSON, a sweep that survives bad points."""

import json
import os

import pytest
import torch

import evaluation.efficiency.cpu_allocator as cpu_allocator
import evaluation.efficiency.profile as profile
from ptdit.cli import main

TINY = {"depth": 1, "hidden_size": 64, "num_heads": 2}     # seconds, not minutes, on a CPU


def test_timed_point_has_every_field():
    point = profile.profile_point("DiT-S/2", 64, infer_batch=1, throughput_batch=2, train_batch=2,
                                  warmup=1, repeats=3, overrides=TINY)
    assert point["status"] == "ok" and point["tokens"] == 16 and point["gflops"] > 0
    for phase, batch in (("infer", 1), ("infer_throughput", 2), ("train", 2)):
        stats = point[phase]
        assert stats["batch"] == batch and stats["n"] == 3
        assert stats["min_s"] <= stats["q1_s"] <= stats["median_s"] <= stats["q3_s"] <= stats["max_s"]
        assert stats["steps_per_s"] == pytest.approx(1 / stats["median_s"])
    for key in ("device_name", "cpu_capability", "torch_version", "torch_threads", "dtype", "peak_mem_mb", "overrides"):
        assert key in point
    assert point["cpu_capability"] == torch.backends.cpu.get_cpu_capability()      # AVX2, AVX512, ...


def test_sweep_survives_impossible_points(tmp_path):
    # 72 px -> 9x9 latents: patch 2 cannot tile them; 64 px -> 4x4 tokens: PT-DiT's 8x8 windows cannot.
    points = profile.sweep(["DiT-S/2", "PT-DiT/S-Class"], [64, 72], tmp_path, isolate=False, timing=False)
    status = {(p["model"], p["resolution"]): p["status"] for p in points}
    assert status == {("DiT-S/2", 64): "counted", ("DiT-S/2", 72): "invalid",
                      ("PT-DiT/S-Class", 64): "invalid", ("PT-DiT/S-Class", 72): "invalid"}
    assert "not divisible" in json.loads((tmp_path / "DiT-S_2_72.json").read_text())["message"]
    assert sorted(os.listdir(tmp_path)) == ["DiT-S_2_64.json", "DiT-S_2_72.json",
                                            "PT-DiT_S-Class_64.json", "PT-DiT_S-Class_72.json"]


def test_oom_is_recorded_and_earlier_phases_kept(monkeypatch):
    def no_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")
    monkeypatch.setattr(profile, "time_training", no_memory)
    point = profile.profile_point("DiT-S/2", 64, train_batch=4, repeats=2, warmup=0, overrides=TINY)
    assert point["status"] == "oom" and "train phase" in point["message"]
    assert "infer" in point and "train" not in point


def test_training_step_takes_its_target_shape_from_the_eager_module():
    """A compiled model's no-grad call would compile a second graph (and record a CUDA graph) that the
    timed steps never use; the target's shape comes from the module torch.compile wraps."""
    model = profile.build("DiT-S/2", 64, "cpu", TINY)
    calls = []

    class Compiled(torch.nn.Module):           # what torch.compile returns: the eager model as _orig_mod
        def __init__(self):
            super().__init__()
            self._orig_mod = model
            self.config = model.config          # torch.compile's wrapper forwards attributes

        def forward(self, *inputs):
            calls.append(torch.is_grad_enabled())
            return self._orig_mod(*inputs)
    step = profile.training_step(Compiled(), 2, "cpu", "fp32")
    assert calls == []
    step()
    assert calls == [True]


def test_unknown_device_and_missing_gpu_are_clear_errors():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        profile.profile_point("DiT-S/2", 256, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            profile.profile_point("DiT-S/2", 256, device="cuda")


def test_isolated_point_measures_its_own_process(tmp_path):
    point = profile.run_isolated(model_name="DiT-S/2", resolution=64, infer_batch=1, warmup=0, repeats=2,
                                 overrides=TINY, threads=1)
    assert point["status"] == "ok" and point["torch_threads"] == 1
    assert point["peak_mem_mb"] >= point["rss_before_model_mb"] > 0
    # CPU points are timed with freed memory kept mapped (evaluation/efficiency/cpu_allocator.py)
    assert point["cpu_allocator"] == ("retain" if cpu_allocator.is_glibc() else "system")


def test_compiled_point_runs_on_the_cpu_in_its_own_file(tmp_path):
    # Inference only: inductor compiles the forward with the C++ compiler, ~18 s cold on a 2-core CPU
    # (3 s with its cache warm); the backward would add ~30 s more.
    points = profile.sweep(["DiT-S/2"], [64], tmp_path, threads=1, infer_batch=1, warmup=1, repeats=2,
                           compile=True, overrides=TINY)
    assert points[0]["status"] == "ok" and points[0]["compile"] is True
    assert points[0]["infer"]["steps_per_s"] > 0
    assert os.listdir(tmp_path) == ["DiT-S_2_64-compiled.json"]         # beside, not over, the eager point


def test_cli_writes_one_json_per_point(tmp_path, capsys):
    out = tmp_path / "point.json"
    assert main(["profile", "--model", "PT-DiT/B-Class", "--resolution", "512", "--no-timing", "--out", str(out)]) == 0
    point = json.loads(out.read_text())
    assert point["status"] == "counted" and point["tokens"] == 1024 and point["window"] == [1, 4, 4]
    assert "PT-DiT/B-Class" in capsys.readouterr().out
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]     # the write was atomic
    assert main(["profile", "--model", "DiT-S/2", "--resolution", "256", "--device", "cuda" if not
                 torch.cuda.is_available() else "cpu", "--no-timing", "--out", str(out)]) in (0, 2)
