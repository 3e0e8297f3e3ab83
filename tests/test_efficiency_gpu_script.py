"""bench/gpu_efficiency.py cannot run here (no GPU); --smoke runs the same code on the CPU."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_gpu_script_smoke(tmp_path):
    out = tmp_path / "gpu.md"
    done = subprocess.run([sys.executable, "bench/gpu_efficiency.py", "--smoke", "--out", str(out)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    for model in ("DiT-S/2", "DAM-S/2-n64", "PT-DiT/S-Class"):
        assert f"| {model} | 128 |" in text
    assert "MFU train" in text and (tmp_path / "gpu.json").exists()
