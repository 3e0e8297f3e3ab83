"""The DAG on a real single-node SLURM cluster (tests/slurm_cluster.py): submitted through
workflows/profiles/slurm unchanged, with test-time overrides on the command line only (partition,
status command, poll interval); 2-process training (torchrun + gloo) inside the allocations; a
training job cancelled mid-run (as a preemption would) resubmitted by Snakemake's retries and resumed
from its checkpoint. Every table must equal the local run's.

Runs where the cluster can start (root + Debian's slurm-wlm and munge; .ci/run installs them and sets
PTDIT_REQUIRE_SLURM=1, which turns "cannot start" into a failure instead of a skip)."""

import os
import re
import signal
import subprocess
import time

import pytest
import yaml

from tests.slurm_cluster import ClusterUnavailable, single_node_cluster, why_unavailable
from tests.test_snakemake_efficiency import ROOT, SNAKEMAKE, snakemake
from tests.test_snakemake_imagenet import read_table

CONFIGS = ("--configfile", os.path.join(ROOT, "tests", "imagenet_ci.yaml"), os.path.join(ROOT, "tests", "slurm_ci.yaml"))
TARGET = "results/table_imagenet.csv"
PROFILE = os.path.join(ROOT, "workflows", "profiles", "slurm")
RUN_TIMEOUT = 600          # a hung status poll can never hang CI
STEPS = 200                # tests/slurm_ci.yaml: cancellable between checkpoints


def say(request, line):
    """A line in the CI log, whatever pytest's capture and -q settings."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is None or reporter is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"[slurm] {line}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, request):
    reason = why_unavailable()
    if reason:
        if os.environ.get("PTDIT_REQUIRE_SLURM") == "1":
            pytest.fail(f"PTDIT_REQUIRE_SLURM=1 but the SLURM cluster cannot start: {reason}")
        pytest.skip(reason)
    try:
        with single_node_cluster(tmp_path_factory.mktemp("slurm")) as info:
            say(request, f"cluster up: {info['version']}, node localhost {info['node_state']}, partition {info['partition']}")
            yield info
            subprocess.run(["scancel", "--user", "root"], capture_output=True)
    except ClusterUnavailable as err:
        pytest.fail(str(err))


def slurm_command(partition):
    """snakemake through the production profile; only the partition, the status command (no
    accounting database here, so squeue) and the poll intervals are the test's."""
    with open(os.path.join(PROFILE, "profile.yaml")) as f:
        defaults = yaml.safe_load(f)["default-resources"]
    # --default-resources on the command line replaces the profile's whole dict: pass it back with
    # only the partition changed.
    defaults = {**defaults, "slurm_partition": partition}
    return [SNAKEMAKE, "--snakefile", os.path.join(ROOT, "Snakefile"), "--workflow-profile", PROFILE,
            "--default-resources", *[f"{k}={v}" for k, v in defaults.items()],
            "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
            "--seconds-between-status-checks", "2",
            TARGET, *CONFIGS]


def env():
    return {**os.environ, "PYTHONPATH": ROOT}


def submissions(ctld_log):
    with open(ctld_log) as f:
        return [line for line in f if "_slurm_rpc_submit_batch_job" in line]


@pytest.fixture(scope="module")
def local_table(tmp_path_factory):
    work = tmp_path_factory.mktemp("local")
    done = snakemake(TARGET, "--cores", "2", *CONFIGS, cwd=work, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return read_table(work / TARGET), work


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory, request):
    """One submission of the DAG through the profile; one of its training jobs is cancelled with
    scancel after a checkpoint, as a preemption would, once every other job submitted so far has
    finished (so "finished before the cancel" is well defined)."""
    work = tmp_path_factory.mktemp("slurm_dag")
    submitted_before = len(submissions(cluster["ctld_log"]))
    start = time.time()
    proc = subprocess.Popen(slurm_command(cluster["partition"]), cwd=work, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        run_dir, job_id, seen = wait_for_checkpointed_training(work, proc)
        finished_before = finished_outputs(work)
        subprocess.run(["scancel", job_id], check=True)
        say(request, f"scancel {job_id} (train {os.path.relpath(run_dir, work / 'results' / 'runs')}) after a checkpoint")
        seen |= watch_jobs(proc)
        out, _ = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-4000:]
    jobs = len(submissions(cluster["ctld_log"])) - submitted_before
    say(request, f"DAG through sbatch: {jobs} SLURM jobs in {time.time() - start:.0f} s")
    return {"work": work, "out": out, "jobs": jobs, "run_dir": run_dir, "cancelled": job_id, "seen": seen,
            "finished_before": finished_before}


def test_dag_ran_through_sbatch_and_gives_the_local_table(slurm_run, local_table, request):
    submitted = slurm_run["out"].count("has been submitted with SLURM jobid")
    assert slurm_run["jobs"] >= 10 and submitted == slurm_run["jobs"], (submitted, slurm_run["jobs"])
    table, _ = local_table
    assert read_table(slurm_run["work"] / TARGET) == table
    say(request, f"results/table_imagenet.csv under SLURM == local run ({len(table)} rows)")


def test_training_ran_two_processes_inside_its_allocation(slurm_run, request):
    logs = [p for p in (slurm_run["work"] / "logs" / "standin" / "train").glob(f"*_s{STEPS}.log")]
    assert len(logs) == 2
    for log in logs:
        assert "2 process(es)" in log.read_text(), log.read_text()[-2000:]
    say(request, "each training job ran torchrun with 2 processes (gloo) inside its SLURM allocation")


def test_cancelled_training_was_resubmitted_and_resumed(slurm_run, request):
    work, run_dir, seen = slurm_run["work"], slurm_run["run_dir"], slurm_run["seen"]
    comment = seen[slurm_run["cancelled"]]
    attempts = sorted((j for j, c in seen.items() if c == comment), key=int)
    assert len(attempts) >= 2, (slurm_run["cancelled"], seen)          # resubmitted by Snakemake's retries
    log = open(work / train_log(run_dir, work)).read()
    resumed = re.search(r"resuming \S+ from step (\d+)", log)
    assert resumed and 20 <= int(resumed.group(1)) < STEPS, log[-2000:]
    with open(os.path.join(run_dir, "log.csv")) as f:
        steps = [line.split(",")[0] for line in f.read().splitlines()[1:]]
    assert len(steps) == len(set(steps)) and steps[-1] == str(STEPS)   # no step logged twice
    after = finished_outputs(work)
    before = slurm_run["finished_before"]
    assert len(before) >= 4                                            # data, extractor, reference at least
    assert {p: after[p] for p in before} == before                     # nothing finished was recomputed
    say(request, f"SLURM jobs {' -> '.join(attempts)} for the cancelled training: resumed from step {resumed.group(1)}, "
                 f"{len(before)} finished outputs untouched")


def finished_outputs(work):
    """mtimes of every finished result file: data, extractor, reference, final.pt, samples, evals
    (not the checkpoints and logs of trainings still running)."""
    found = {}
    for dirpath, _, files in os.walk(work / "results"):
        for name in files:
            path = os.path.join(dirpath, name)
            in_run = f"{os.sep}runs{os.sep}" in path
            if name.endswith((".json", ".npz", ".pt", ".safetensors")) and (not in_run or name == "final.pt"):
                found[path] = os.stat(path).st_mtime_ns
    return found


def train_log(run_dir, work):
    parts = os.path.relpath(run_dir, os.path.join(work, "results", "runs")).split(os.sep)
    dataset, model, objective, variant, steps = parts
    return os.path.join("logs", dataset, "train", f"{model}_{objective}_{variant}_{steps}.log")


def squeue_jobs():
    done = subprocess.run(["squeue", "-h", "-o", "%i|%k"], capture_output=True, text=True)
    return dict(line.split("|", 1) for line in done.stdout.split() if "|" in line)


def watch_jobs(proc):
    seen = {}
    while proc.poll() is None:
        seen |= squeue_jobs()
        time.sleep(0.2)
    return seen


def others_finished(work):
    """Every job Snakemake has submitted, other than trainings, is reported finished in its log."""
    logs = sorted((work / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        return False
    text = logs[-1].read_text()
    submitted = set(re.findall(r"Job (\d+) has been submitted with SLURM jobid \d+ \(log: \S*/rule_(?!train/)", text))
    finished = set(re.findall(r"Finished jobid: (\d+) ", text))
    return submitted <= finished


def wait_for_checkpointed_training(work, proc, timeout=RUN_TIMEOUT):
    """A training run that has written a checkpoint and not finished, its SLURM job id, and the jobs
    seen so far; only once every other job submitted so far has finished."""
    deadline = time.time() + timeout
    seen = {}
    while time.time() < deadline and proc.poll() is None:
        jobs = squeue_jobs()
        seen |= jobs
        if not others_finished(work):
            time.sleep(0.05)
            continue
        for dirpath, _, files in os.walk(work / "results" / "runs"):
            run = os.path.dirname(dirpath)
            if os.path.basename(dirpath) == "checkpoints" and any(f.endswith(".pt") for f in files) \
                    and not os.path.exists(os.path.join(run, "final.pt")):
                model, objective = run.split(os.sep)[-4:-2]
                running = [j for j, c in jobs.items() if c.startswith("rule_train") and model in c and objective in c]
                if running:
                    return run, running[0], seen
        time.sleep(0.05)
    raise AssertionError("no SLURM training job was caught between its first checkpoint and its end")
