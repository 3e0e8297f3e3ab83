"""A real single-node SLURM cluster on this machine, for the tests (Debian's slurm-wlm and munge;
the recipe and its pitfalls: shared/reference/ecosystem.md).

    with single_node_cluster(scratch) as cluster:   # munged, slurmctld, slurmd; node idle
        ...sbatch / snakemake --executor slurm ...
    # daemons stopped by pid, also when the body raised

The node declares more CPUs and memory than the machine has (SlurmdParameters=config_overrides), so
that the production profile's requests (workflows/profiles/slurm: 256 GB for training) are accepted
unchanged; nothing is enforced (no cgroups), jobs just share the real cores. The plugin's job step
strips SLURM_* variables, so the config must live at /etc/slurm/slurm.conf; a slurm.conf that this
module did not write is never overwritten.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import time

SLURM_CONF = "/etc/slurm/slurm.conf"
MARKER = "# written by ptdit tests/slurm_cluster.py"
PARTITION = "debug"
NODE_CPUS = 8                 # two jobs of the profile's cpus_per_task=4 run at once
NODE_MEMORY_MB = 512_000      # > the profile's largest request (train: 256 GB)
DAEMONS = ("slurmctld", "slurmd")


class ClusterUnavailable(RuntimeError):
    """SLURM cannot be started here (not root, packages missing, a foreign slurm.conf)."""


def why_unavailable():
    if os.geteuid() != 0:
        return "starting slurmctld/slurmd/munged needs root"
    missing = [tool for tool in ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel") if not shutil.which(tool)]
    if missing:
        return f"not installed: {', '.join(missing)} (apt-get install -y slurm-wlm munge)"
    running = [d for d in DAEMONS if subprocess.run(["pgrep", "-x", d], capture_output=True).returncode == 0]
    if running:
        return f"{', '.join(running)} already running on this machine; stop it first"
    if os.path.exists(SLURM_CONF) and MARKER not in open(SLURM_CONF).read():
        return f"{SLURM_CONF} exists and was not written by the tests; not overwriting it"
    return None


def slurm_conf(scratch):
    return f"""{MARKER}
ClusterName=ptditci
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=300
StateSaveLocation={scratch}/state
SlurmdSpoolDir={scratch}/spool
SlurmctldPidFile={scratch}/slurmctld.pid
SlurmdPidFile={scratch}/slurmd.pid
SlurmctldLogFile={scratch}/slurmctld.log
SlurmdLogFile={scratch}/slurmd.log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
SchedulerParameters=sched_interval=1
NodeName=localhost NodeAddr=127.0.0.1 CPUs={NODE_CPUS} RealMemory={NODE_MEMORY_MB} State=UNKNOWN
PartitionName={PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def run(*cmd, check=True, timeout=30):
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout)


def read_pid(path):
    try:
        return int(open(path).read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop(pid_file, timeout=10):
    pid = read_pid(pid_file)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + timeout
        while time.time() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


def wait_for_idle_node(timeout=30):
    deadline = time.time() + timeout
    state = ""
    while time.time() < deadline:
        state = run("sinfo", "-h", "-N", "-o", "%t", check=False).stdout.strip()
        if state.startswith("idle"):
            return state
        time.sleep(0.2)
    raise ClusterUnavailable(f"the SLURM node did not become idle in {timeout} s (sinfo state: '{state}')")


@contextlib.contextmanager
def single_node_cluster(scratch):
    reason = why_unavailable()
    if reason:
        raise ClusterUnavailable(reason)
    scratch = os.path.abspath(scratch)
    for sub in ("state", "spool"):
        os.makedirs(os.path.join(scratch, sub), exist_ok=True)
    os.makedirs(os.path.dirname(SLURM_CONF), exist_ok=True)
    with open(SLURM_CONF, "w") as f:
        f.write(slurm_conf(scratch))
    munge_pid = "/run/munge/munged.pid"
    pid_files = [os.path.join(scratch, f"{d}.pid") for d in DAEMONS]
    try:
        run("install", "-d", "-o", "munge", "-g", "munge", "/run/munge")
        if read_pid(munge_pid) is None or not os.path.exists(f"/proc/{read_pid(munge_pid)}"):
            run("runuser", "-u", "munge", "--", "/usr/sbin/munged", "--force")
        run("slurmctld", "-i")
        run("slurmd", "-N", "localhost")
        state = wait_for_idle_node()
        yield {"scratch": scratch, "partition": PARTITION, "node_state": state,
               "version": run("sinfo", "--version").stdout.strip(),
               "ctld_log": os.path.join(scratch, "slurmctld.log")}
    finally:
        for pid_file in reversed(pid_files):
            stop(pid_file)
        stop(munge_pid)
        with contextlib.suppress(OSError):
            if MARKER in open(SLURM_CONF).read():
                os.remove(SLURM_CONF)
