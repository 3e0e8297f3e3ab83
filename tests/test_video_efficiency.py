"""Video efficiency (issue 8): the activation counter in closed form, counted points that agree with the
suite's GFLOPs counter, rows with frames in table_efficiency.csv, the frame figures, and the GPU
script's smoke run."""

import csv
import os
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from evaluation.efficiency.figures import make_figures
from evaluation.efficiency.flops import model_gflops
from evaluation.efficiency.table import write_tables
from evaluation.efficiency.video import FusedAttention, SavedTensors, count_sweep, count_video_point, video_point_filename

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"depth": 1, "hidden_size": 32, "num_heads": 2}
MODELS = ["Full3D-S/2-Video", "Factorized-S/2-Video", "PT-DiT/S-Video"]


def test_saved_tensor_count_in_closed_form():
    # Linear(4, 8) -> GELU -> Linear(8, 2) on a (3, 4) batch saves the input, the first output (for
    # GELU) and GELU's output (for the second Linear): (12 + 24 + 24) floats; weights are not counted.
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 2))
        x = torch.zeros(3, 4)
    saved = SavedTensors(model)
    with saved.hooks():
        model(x)
    assert saved.total == (12 + 24 + 24) * 4


def test_fused_attention_keeps_qkv_output_and_logsumexp():
    module = nn.Linear(8, 8, device="meta")
    saved = SavedTensors(module)
    q, k, v = (torch.zeros(1, 2, 16, 8, device="meta", requires_grad=True) for _ in range(3))
    with saved.hooks(), FusedAttention(saved):
        out = F.scaled_dot_product_attention(q, k, v)
    assert out.requires_grad
    assert saved.total == 4 * (1 * 2 * 16 * 8 * 4) + 1 * 2 * 16 * 4
    eager = SavedTensors(module)
    with eager.hooks():
        F.scaled_dot_product_attention(q, k, v)
    assert eager.total >= 2 * 16 * 16 * 4            # the softmax matrix is kept


@pytest.mark.parametrize("name", MODELS)
def test_counted_point_agrees_with_the_gflops_counter(name):
    point = count_video_point(name, 128, 8, overrides=TINY)
    params, gflops = model_gflops(name, input_size=16, num_frames=8, **TINY)
    assert point["status"] == "counted" and point["tokens"] == 8 * 8 * 8 and point["latent_frames"] == 8
    assert point["params"] == params and point["gflops"] == pytest.approx(gflops, rel=1e-9)
    assert 0 < point["act_mem_fused_mb_est"] and "not measured" in point["message"]


def test_eager_attention_keeps_one_softmax_matrix_more_than_fused():
    # Eager (MATH) SDPA keeps the (heads, N, N) fp32 softmax for backward; a fused kernel does not.
    # What remains of the difference is per token (the two kernels save different q/k/v copies), so it
    # doubles exactly when the tokens do (256 -> 512).
    rest = []
    for frames in (4, 8):
        point = count_video_point("Full3D-S/2-Video", 128, frames, overrides=TINY)
        diff = (point["act_mem_mb_est"] - point["act_mem_fused_mb_est"]) * 2**20
        rest.append(diff - 2 * point["tokens"] ** 2 * 4)
    assert rest[0] > 0 and rest[1] == pytest.approx(2 * rest[0])


def test_causal_vae_divides_frames_and_bad_points_are_invalid():
    point = count_video_point("Factorized-S/2-Video", 128, 16, temporal_compression=4, overrides=TINY)
    assert point["latent_frames"] == 4 and point["tokens"] == 4 * 64
    assert count_video_point("PT-DiT/S-Video", 128, 6, overrides=TINY)["status"] == "invalid"   # pf = 4


def test_rows_and_figures(tmp_path):
    points = count_sweep(MODELS, [128], [4, 8], str(tmp_path / "points"), overrides=TINY)
    assert (tmp_path / "points" / video_point_filename("PT-DiT/S-Video", 128, 8)).exists()
    paths = sorted(str(p) for p in (tmp_path / "points").iterdir())
    write_tables(paths, str(tmp_path / "table.csv"))
    with open(tmp_path / "table.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["frames"]]
    assert len(rows) == len(points) == 6
    for row in rows:
        assert row["peak_mem_mb"] == "" and float(row["act_mem_mb_est"]) > 0 and row["status"] == "counted"
    full = {int(r["frames"]): float(r["gflops"]) for r in rows if r["model"] == "Full3D-S/2-Video"}
    assert full[8] > 2 * full[4]                      # attention is quadratic in frames
    for path in make_figures(str(tmp_path / "table.csv"), str(tmp_path / "figures")):
        assert os.path.getsize(path) > 1000
    assert (tmp_path / "figures" / "memory_vs_frames.png").exists()


def test_gpu_video_script_smoke():
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gpu_video.py"), "--smoke"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("| ") and "Video" in line]
    assert len(lines) == 6 and all(line.rstrip().endswith("| ok |") for line in lines)
    for line in lines:
        assert float(line.split("|")[7]) > 0           # train it/s
