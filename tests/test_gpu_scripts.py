"""The prepared GPU scripts run (on the CPU, tiny models) and print their tables."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(script):
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", script), "--smoke"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_gpu_train_script_smoke():
    out = run("gpu_train.py")
    assert "DiT-XL/2" in out and "PT-DiT/L-Class" in out and "MFU" in out


def test_gpu_zoo_script_smoke():
    out = run("gpu_zoo.py")
    lines = [line for line in out.splitlines() if line.startswith(("DiT", "SiT", "DAM", "Agent", "PT-DiT"))]
    assert len(lines) == 8
    for line in lines:   # batched outputs equal one-at-a-time outputs on every model
        assert float(line.split()[3]) < 1e-5


def test_gpu_compile_check_script_smoke():
    out = run("gpu_compile_check.py")
    rows = [line.split() for line in out.splitlines()
            if line.startswith(("DiT-B/2 ", "PT-DiT/B-Class ")) and "kernels" not in line]
    rates = {row[0]: float(row[1]) for row in rows}
    assert set(rates) == {"DiT-B/2", "PT-DiT/B-Class"} and all(r > 0 for r in rates.values())
    assert "top kernels" in out


def test_gpu_speed_script_smoke():
    out = run("gpu_speed.py")
    rows = [line.split() for line in out.splitlines() if line.startswith(("S/256 ", "B/1024 ")) and " graphs " not in line]
    assert [row[1] for row in rows] == ["DiT-S/2", "PT-DiT/S-Class", "DiT-B/2", "PT-DiT/B-Class"]
    assert all(float(row[4]) > 0 for row in rows)
    assert "MFU DiT-XL/2" in out and "video memory" in out and "PT-DiT/B-Class / DiT-B/2 B/1024" in out
    # the S/256 pair under each SDPA backend: the CPU has math and flash, not the CUDA-only two
    kernels = {line.split()[0]: line.split()[1:] for line in out.splitlines()
               if line.startswith(("default ", "MATH ", "FLASH_ATTENTION ", "EFFICIENT_ATTENTION ", "CUDNN_ATTENTION "))}
    assert all(float(r) > 0 for r in kernels["MATH"] + kernels["FLASH_ATTENTION"])
    assert kernels["EFFICIENT_ATTENTION"] == kernels["CUDNN_ATTENTION"] == ["-", "-", "-"]
    assert "S/256, best kernels" in out
    # CUDA graphs need a GPU: the row is there and says so, its target line unmet-unknown
    assert "S/256 graphs   not on the CPU" in out
    graphs = next(line for line in out.splitlines() if line.startswith("PT-DiT/S-Class / DiT-S/2 S/256, CUDA graphs"))
    assert graphs.split()[-1] == "-"
    # the shifted-window formulations, timed (the CPU has no FlexAttention backward: "-")
    sw = next(line for line in out.splitlines() if line.startswith("tiny "))
    regions_s, bias_ratio, flex_ratio = sw.split()[5:8]
    assert float(regions_s) > 0 and float(bias_ratio) > 0 and flex_ratio == "-"
