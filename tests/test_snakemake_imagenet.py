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
KILL_CONFIG = os.path.join(ROOT, "tests", "imagenet_kill_ci.yaml")
PAPER_CONFIG = os.path.join(ROOT, "workflows", "config", "paper.yaml")
TARGETS = ("results/table_imagenet.csv", "results/table_ablation.csv", "results/table_compression.csv")
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
    table = read_table(ci_run / "results" / "table_imagenet.csv")
    rows = [r for r in table if r["kind"] == "measured"]
    keys = [(r["model"], r["objective"], r["train_steps"]) for r in rows]
    assert keys == [("DiT-S/2", "ddpm", "30"), ("DiT-S/2", "ddpm", "0"), ("SiT-S/2", "sit", "30"),
                    ("PT-DiT/S-Class", "ddpm", "30"), ("PT-DiT/S-Class", "sit", "30"),
                    ("Agent-DiT-S/2", "ddpm", "30"), ("DAM-S/2-n64", "sit", "30"),
                    ("DiT-S/2-ToMe0.25", "ddpm", "30"), ("DiT-S/2-ToMe0.5", "ddpm", "30")]
    assert {r["model"] for r in table if r["kind"] == "paper_only"} >= {"MDT-XL/2-G", "VAR-d30", "DiT-XL/2-G"}
    for row in rows:
        assert row["scale"] == "ci" and row["feature_extractor"].startswith("small-cnn")
        for name in METRICS + ("params_M", "gflops"):
            assert math.isfinite(float(row[name])), (row["model"], name, row[name])
    by_key = {(r["model"], r["objective"], r["train_steps"]): r for r in rows}
    assert float(by_key[("DiT-S/2", "ddpm", "30")]["paper_fid"]) == pytest.approx(68.4)
    assert float(by_key[("PT-DiT/S-Class", "sit", "30")]["paper_fid"]) == pytest.approx(55.05)
    # measured GFLOPs of the models as trained: PT-DiT's windows make it cheaper than DiT at equal width
    assert float(by_key[("PT-DiT/S-Class", "ddpm", "30")]["gflops"]) < float(by_key[("DiT-S/2", "ddpm", "30")]["gflops"])
    # token merging on the DiT row's checkpoint (no run of its own): fewer GFLOPs as the ratio grows
    dit, tome25, tome50 = (float(by_key[(m, "ddpm", "30")]["gflops"]) for m in ("DiT-S/2", "DiT-S/2-ToMe0.25", "DiT-S/2-ToMe0.5"))
    assert dit > tome25 > tome50
    assert not os.path.exists(ci_run / "results" / "runs" / "standin" / "DiT-S_2-ToMe0.25")
    assert by_key[("DiT-S/2-ToMe0.25", "ddpm", "30")]["paper_fid"] == ""
    for name in ("fid_vs_gflops", "training_loss"):
        assert (ci_run / "results" / "figures" / f"{name}.png").stat().st_size > 1000
    assert "not ImageNet" in (ci_run / "results" / "table_imagenet.md").read_text()
    for row in rows:  # issue 15: class accuracy on the stand-in CNN and an interval for every metric
        assert 0 <= float(row["class_acc"]) <= 1 and not row["class_acc_note"]
        for name in METRICS + ("class_acc",):
            assert float(row[f"{name}_ci_low"]) <= float(row[f"{name}_ci_high"]), (row["model"], name)
        assert 0 <= float(row["class_acc_ci_low"]) <= float(row["class_acc_ci_high"]) <= 1
    for row in rows[1:]:
        assert row["fid_vs_reference"] in ("", "overlaps") or row["fid_vs_reference"].startswith(("better", "worse"))
    assert (ci_run / "results" / "figures" / "samples.png").stat().st_size > 1000
    grids = list((ci_run / "results" / "samples").rglob("*.png"))
    # one grid per sample file: the 9 table rows (7 trained/untrained + 2 ToMe), the 4 ablation-only runs
    # and the compression plan's one run of its own (sit's dynamic ratio)
    assert len(grids) == len(rows) + 5 and all(g.with_suffix(".npz").is_file() for g in grids)


def test_html_report(ci_run):
    done = snakemake("--report", "results/report.html", "--cores", "2", "--configfile", CI_CONFIG, cwd=ci_run, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    page = (ci_run / "results" / "report.html").read_text(errors="replace")
    for name in ("table_imagenet.csv", "fid_vs_gflops.png", "samples.png", "table_ablation.csv", "table_compression.csv",
                 "fid_vs_compression.png"):
        assert name in page, name


def test_table_ablation_rows(ci_run):
    rows = read_table(ci_run / "results" / "table_ablation.csv")
    assert len(rows) == 5
    assert all(math.isfinite(float(r["fid"])) for r in rows)
    assert any(r["paper_fid"] and float(r["paper_fid"]) == pytest.approx(23.71) for r in rows)  # w/o GIIM
    dynamic = [r for r in rows if r["group"] == "other (dynamic_ratio)"]
    assert [r["setting"] for r in dynamic] == ["dynamic_ratio = 1x2x2@0.5+1x4x4@1"] and not dynamic[0]["paper_fid"]


def test_table_compression(ci_run):
    rows = read_table(ci_run / "results" / "table_compression.csv")
    keys = [(r["model"], r["objective"], r["role"], r["compression_ratio"]) for r in rows]
    assert keys == [("PT-DiT/S-Class", "ddpm", "pt-dit", "1x2x2"), ("PT-DiT/S-Class", "ddpm", "pt-dit", "dynamic"),
                    ("PT-DiT/S-Class", "sit", "pt-dit", "1x2x2"), ("PT-DiT/S-Class", "sit", "pt-dit", "dynamic"),
                    ("DiT-S/2", "ddpm", "reference", ""), ("SiT-S/2", "sit", "reference", "")]
    for row in rows:
        for name in ("fid", "fid_ci_low", "fid_ci_high", "gflops", "params_M", "class_acc"):
            assert math.isfinite(float(row[name])), (row["model"], name, row[name])
        assert float(row["fid_ci_low"]) <= float(row["fid"]) <= float(row["fid_ci_high"])
    # the static (1,2,2) rows are the table's PT-DiT rows: the same eval JSON, the same numbers
    table = {(r["model"], r["objective"], r["train_steps"]): r for r in read_table(ci_run / "results" / "table_imagenet.csv")}
    for row in rows:
        if row["compression_ratio"] in ("1x2x2", ""):
            assert row["fid"] == table[(row["model"], row["objective"], row["train_steps"])]["fid"]
    # the dynamic point costs the mean of (1,2,2) and (1,4,4) over the sampler's calls: less than (1,2,2)
    assert float(rows[1]["gflops"]) < float(rows[0]["gflops"]) and float(rows[3]["gflops"]) < float(rows[2]["gflops"])
    assert (ci_run / "results" / "figures" / "fid_vs_compression.png").stat().st_size > 1000


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


def test_killed_training_resumes_and_gives_the_same_table(tmp_path):
    configs = ("--configfile", CI_CONFIG, KILL_CONFIG)
    uninterrupted = tmp_path / "uninterrupted"
    uninterrupted.mkdir()
    done = snakemake(TARGETS[0], "--cores", "2", *configs, cwd=uninterrupted, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    work = tmp_path / "killed"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": ROOT}
    cmd = [SNAKEMAKE, "--snakefile", os.path.join(ROOT, "Snakefile"), "--workflow-profile", "none",
           "--cores", "1", TARGETS[0], *configs]
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    killed_run = wait_for_mid_training(work, proc)
    finished_before = output_mtimes(work)
    os.killpg(proc.pid, signal.SIGKILL)             # snakemake and its jobs, as a preemption would
    proc.wait()
    assert not os.path.exists(os.path.join(killed_run, "final.pt"))

    unlock = snakemake("--unlock", *configs, cwd=work)
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    done = snakemake(TARGETS[0], "--cores", "2", "--rerun-incomplete", *configs, cwd=work, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(os.path.join(killed_run, "log.csv")) as f:
        assert f.read().count("\n20,") == 1           # resumed from a checkpoint: no step logged twice
    after = output_mtimes(work)
    assert {p: after[p] for p in finished_before} == finished_before   # nothing finished was recomputed
    assert read_table(work / "results" / "table_imagenet.csv") == read_table(uninterrupted / "results" / "table_imagenet.csv")


def wait_for_mid_training(work, proc, timeout=600):
    """The run folder of a training that has written a checkpoint and not finished yet."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        for dirpath, _, files in os.walk(work / "results" / "runs"):
            run = os.path.dirname(dirpath)
            if os.path.basename(dirpath) == "checkpoints" and "0000020.pt" in files \
                    and not os.path.exists(os.path.join(run, "final.pt")):
                return run
        time.sleep(0.05)
    raise AssertionError("no training run was caught between its first checkpoint and its end")


def test_classifier_weights_reach_evaluate_and_are_refused_on_the_standin(tmp_path):
    (tmp_path / "ref.npz").touch()
    paths = ('imagenet={"data": {"train_dir": "/data/imagenet/train", "vae": "/weights/sd-vae-ft-ema"}, '
             '"extractor": {"weights": "/weights/inception.pth", "classifier_weights": "/weights/resnet50-11ad3fa6.pth"}, '
             '"reference": "ref.npz"}')
    done = snakemake("results/table_imagenet.csv", "-n", "-p", "--configfile", PAPER_CONFIG, "--config", paths,
                     cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "--classifier-weights /weights/resnet50-11ad3fa6.pth" in done.stdout
    done = snakemake("all", "-n", "--config", 'imagenet={"extractor": {"classifier_weights": "r.pth"}}', cwd=tmp_path)
    assert done.returncode != 0 and "imagenet.extractor.classifier_weights" in done.stdout + done.stderr
