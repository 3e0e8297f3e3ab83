"""The Snakemake DAG of the efficiency benchmark on a tiny config, and `snakemake --lint`."""

import csv
import os
import shutil
import subprocess
import sys

import pytest

from evaluation.efficiency.cpu_allocator import is_glibc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SNAKEMAKE = shutil.which("snakemake") or os.path.join(os.path.dirname(sys.executable), "snakemake")

pytestmark = pytest.mark.skipif(not os.path.exists(SNAKEMAKE), reason="snakemake is not installed")


def snakemake(*args, cwd=ROOT, timeout=300):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    return subprocess.run([SNAKEMAKE, "--snakefile", os.path.join(ROOT, "Snakefile"), "--workflow-profile", "none",
                           *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


EFFICIENCY_PARTS = ("Snakefile:", "common.smk", "efficiency.smk", "rule profile_point", "rule efficiency_table")


def test_lint_is_clean_for_the_efficiency_rules():
    # Other stages' .smk files are linted by their own tests; this one owns the Snakefile, common.smk
    # and efficiency.smk.
    assert not lints_about(EFFICIENCY_PARTS)


def lints_about(parts):
    """The `snakemake --lint` headers that name one of `parts` (each stage's test checks its own)."""
    done = snakemake("--lint")
    text = done.stdout + done.stderr
    if "Congratulations" in text:
        return []
    headers = [line for line in text.splitlines() if line.startswith("Lints for")]
    assert headers, text[-3000:]
    return [h for h in headers if any(part in h for part in parts)]


def test_bad_config_fails_at_start_up(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("efficiency:\n  resolutions: [250]\n")
    done = snakemake("results/table_efficiency.csv", "-n", "--configfile", str(bad), cwd=tmp_path)
    assert done.returncode != 0 and "multiple" in (done.stdout + done.stderr).lower()


def test_bad_compile_value_fails_at_start_up(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("efficiency:\n  cpu:\n    compile: [reduce-overhead]\n")
    done = snakemake("results/table_efficiency.csv", "-n", "--configfile", str(bad), cwd=tmp_path)
    text = done.stdout + done.stderr
    assert done.returncode != 0 and "'reduce-overhead' is not of type 'boolean'" in text
    assert "['cpu']['compile'][0]" in text and "true = time torch.compile(model), false = eager" in text


def test_compiled_points_sit_beside_the_eager_ones(tmp_path):
    # The CI config with eager and compiled CPU timings: a dry run plans both files of the timed point,
    # the compiled one with --compile and the same batches, and no compiled file for counted points.
    config = tmp_path / "compiled.yaml"
    with open(os.path.join(ROOT, "tests", "efficiency_ci.yaml")) as f:
        text = f.read()
    assert "    torch_threads: 1\n" in text
    config.write_text(text.replace("    torch_threads: 1\n", "    torch_threads: 1\n    compile: [false, true]\n"))
    done = snakemake("results/table_efficiency.csv", "-n", "-p", "--configfile", str(config), cwd=tmp_path)
    text = done.stdout + done.stderr
    assert done.returncode == 0, text[-3000:]
    commands = [line for line in text.splitlines() if "ptdit profile" in line]      # "Shell command: ..."
    compiled = [c for c in commands if "--compile" in c]
    assert len(compiled) == 1 and "DiT-S_2_64-compiled.json" in compiled[0]
    eager = [c for c in commands if "cpu-fp32/DiT-S_2_64.json" in c]
    assert len(eager) == 1 and "--compile" not in eager[0]
    batches = "--batch 1 --throughput-batch 2 --train-batch 2"
    assert batches in compiled[0] and batches in eager[0]
    assert len(commands) == 5            # 2 models x 2 resolutions counted (one of them timed), + compiled


def test_table_on_the_ci_config(tmp_path):
    done = snakemake("results/table_efficiency.csv", "--cores", "2",
                     "--configfile", os.path.join(ROOT, "tests", "efficiency_ci.yaml"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(tmp_path / "results" / "table_efficiency.csv") as f:
        rows = {(r["model"], int(r["resolution"])): r for r in csv.DictReader(f)}
    assert rows[("DiT-S/2", 256)]["status"] == "counted" and float(rows[("DiT-S/2", 256)]["paper_gflops"]) == 6.06
    assert rows[("DiT-S/2", 64)]["status"] == "ok" and float(rows[("DiT-S/2", 64)]["infer_steps_per_s"]) > 0
    assert rows[("DiT-S/2", 64)]["compiled"] == "false"                # the config's default: eager only
    # timed in a process that keeps freed memory mapped (evaluation/efficiency/cpu_allocator.py)
    assert rows[("DiT-S/2", 64)]["cpu_allocator"] == ("retain" if is_glibc() else "system")
    assert rows[("PT-DiT/S-Class", 64)]["status"] == "invalid"        # 4x4 tokens: no 8x8 windows
    assert float(rows[("PT-DiT/S-Class", 256)]["gflops"]) == pytest.approx(3.86, abs=0.01)
    assert rows[("DiT-XL/2", 256)]["status"] == "paper_only"           # not profiled, paper kept
    for name in ("gflops_vs_resolution", "memory_vs_resolution", "throughput_vs_resolution"):
        for ext in ("png", "pdf"):
            assert (tmp_path / "results" / "figures" / f"{name}.{ext}").stat().st_size > 1000
