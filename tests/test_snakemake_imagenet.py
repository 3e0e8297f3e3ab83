"""The ImageNet DAG end to end on the CI config, its dry runs (default, paper, SLURM profile), the
paper config's missing-path message, and a run killed with SIGKILL mid-training then rerun."""

import csv
import math
import os
import signal
import subprocess
import time

import pytest

from tests.test_snakemake_efficiency import ROOT, SNAKEMAKE, snakemake

pytestmark = pytest.mark.skipif(not os.path.exists(SNAKEMAKE), reason="snakemake is not installed")

CI_CONFIG = os.path.join(ROOT, "tests", "imagenet_ci.yaml")
PAPER_CONFIG = os.path.join(ROOT, "workflows", "config", "paper.yaml")
TARGETS = ("results/table_imagenet.csv", "results/table_ablation.csv")
METRICS = ("fid", "sfid", "is", "precision", "recall")


def read_table(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("dag")
    done = snakemake(*TARGETS, "--cores", "2", "--configfile", CI_CONFIG, cwd=work, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return work


def test_table_imagenet_has_every_row_measured_and_finite(ci_run):
    rows = read_table(ci_run / "results" / "table_imagenet.csv")
    keys = [(r["model"], r["objective"], r["train_steps"]) for r in rows]
    assert keys == [("DiT-S/2", "ddpm", "30"), ("DiT-S/2", "ddpm", "0"), ("SiT-S/2", "sit", "30"),
                    ("PT-DiT/S-Class", "ddpm", "30"), ("PT-DiT/S-Class", "sit", "30"),
                    ("Agent-DiT-S/2", "ddpm", "30"), ("DAM-S/2-n64", "sit", "30")]
    for row in rows:
        assert row["scale"] == "ci" and row["feature_extractor"].startswith("small-cnn")
        for name in METRICS + ("params_M", "gflops"):
            assert math.isfinite(float(row[name])), (row["model"], name, row[name])
    by_key = {(r["model"], r["objective"], r["train_steps"]): r for r in rows}
    assert float(by_key[("DiT-S/2", "ddpm", "30")]["paper_fid"]) == pytest.approx(68.4)
    assert float(by_key[("PT-DiT/S-Class", "sit", "30")]["paper_fid"]) == pytest.approx(55.05)
    # measured GFLOPs of the models as trained: PT-DiT's windows make it cheaper than DiT at equal width
    assert float(by_key[("PT-DiT/S-Class", "ddpm", "30")]["gflops"]) < float(by_key[("DiT-S/2", "ddpm", "30")]["gflops"])
    for name in ("fid_vs_gflops", "training_loss"):
        assert (ci_run / "results" / "figures" / f"{name}.png").stat().st_size > 1000
    assert "not ImageNet" in (ci_run / "results" / "table_imagenet.md").read_text()


def test_table_ablation_rows(ci_run):
    rows = read_table(ci_run / "results" / "table_ablation.csv")
    assert len(rows) == 4
    assert all(math.isfinite(float(r["fid"])) for r in rows)
    assert any(r["paper_fid"] and float(r["paper_fid"]) == pytest.approx(23.71) for r in rows)  # w/o GIIM


def test_default_config_dry_run(tmp_path):
    done = snakemake("all", "-n", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "table_imagenet" in done.stdout and "table_ablation" in done.stdout


def test_paper_config_names_missing_paths_then_shows_full_dag(tmp_path):
    done = snakemake(*TARGETS, "-n", "--configfile", PAPER_CONFIG, cwd=tmp_path)
    assert done.returncode != 0
    for key in ("imagenet.data.train_dir", "imagenet.data.vae", "imagenet.extractor.weights", "imagenet.reference"):
        assert key in done.stdout + done.stderr
    (tmp_path / "ref.npz").touch()
    paths = ('imagenet={"data": {"train_dir": "/data/imagenet/train", "vae": "/weights/sd-vae-ft-ema"}, '
             '"extractor": {"weights": "/weights/inception.pth"}, "reference": "ref.npz"}')
    done = snakemake(*TARGETS, "-n", "--configfile", PAPER_CONFIG, "--config", paths, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "s400000" in done.stdout and "ddpm250_cfg1.0" in done.stdout
    assert "torchrun --standalone --nproc_per_node 8" in done.stdout or "train" in done.stdout


def test_slurm_profile_dry_run(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run([SNAKEMAKE, "--snakefile", os.path.join(ROOT, "Snakefile"), "--workflow-profile",
                           os.path.join(ROOT, "workflows", "profiles", "slurm"), "-n", *TARGETS],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def output_mtimes(work):
    found = {}
    for sub in ("results/eval", "results/samples", "results/runs"):
        for dirpath, _, files in os.walk(work / sub):
            for name in files:
                if name.endswith((".json", ".npz", "final.pt")):
                    path = os.path.join(dirpath, name)
                    found[path] = os.stat(path).st_mtime_ns
    return found


def test_killed_training_resumes_and_gives_the_same_table(ci_run, tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT}
    cmd = [SNAKEMAKE, "--snakefile", os.path.join(ROOT, "Snakefile"), "--workflow-profile", "none",
           "--cores", "1", "--configfile", CI_CONFIG, TARGETS[0]]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 600
    killed_run = None
    while time.time() < deadline and killed_run is None and proc.poll() is None:
        time.sleep(0.2)
        for dirpath, _, files in os.walk(tmp_path / "results" / "runs"):
            # a run with a checkpoint that is still training: the moment to pull the plug
            if "0000010.pt" in files and not os.path.exists(os.path.join(os.path.dirname(dirpath), "final.pt")):
                killed_run = os.path.dirname(dirpath)
                break
    assert killed_run is not None, "no training run reached its first checkpoint"
    finished_before = output_mtimes(tmp_path)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not os.path.exists(os.path.join(killed_run, "final.pt"))

    unlock = snakemake("--unlock", "--configfile", CI_CONFIG, cwd=tmp_path)
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    done = snakemake(TARGETS[0], "--cores", "2", "--configfile", CI_CONFIG, "--rerun-incomplete", cwd=tmp_path,
                     timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(os.path.join(killed_run, "log.csv")) as f:
        assert f.read().count("\n10,") <= 1          # the resumed run did not redo steps 1-10
    after = output_mtimes(tmp_path)
    assert {p: after[p] for p in finished_before} == finished_before   # nothing finished was recomputed
    assert read_table(tmp_path / "results" / "table_imagenet.csv") == read_table(ci_run / "results" / "table_imagenet.csv")
