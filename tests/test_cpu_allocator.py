"""evaluation/efficiency/cpu_allocator.py: CPU timings without page faults."""

import subprocess
import sys
import textwrap

import pytest

from evaluation.efficiency import cpu_allocator
from evaluation.efficiency.cpu_allocator import RETAIN, TUNABLES, environment_for

glibc_only = pytest.mark.skipif(not cpu_allocator.is_glibc(), reason="GLIBC_TUNABLES is glibc's")


def test_environment_for_adds_and_removes_only_its_own_tunables():
    env = {TUNABLES: "glibc.pthread.rseq=0:glibc.malloc.mmap_max=7", "PATH": "/bin"}
    retain = environment_for("retain", env)
    assert retain[TUNABLES] == f"glibc.pthread.rseq=0:{RETAIN}" and retain["PATH"] == "/bin"
    assert environment_for("system", retain)[TUNABLES] == "glibc.pthread.rseq=0"
    assert TUNABLES not in environment_for("system", {TUNABLES: RETAIN})
    assert env[TUNABLES] == "glibc.pthread.rseq=0:glibc.malloc.mmap_max=7"       # the caller's copy untouched
    with pytest.raises(ValueError, match="unknown CPU allocator setting 'jemalloc'"):
        environment_for("jemalloc", env)


# A step that makes three 64 MiB tensors, run again and again: with glibc's defaults each is mapped
# afresh every step and its 16,384 pages fault on first touch (four steps: 196,608 faults); retained,
# a step reuses the pages of the steps before. Which freed block a new one fits into varies from run to
# run, so once warm a step now and then still extends the heap by one tensor: in 142 runs of four warm
# steps, 0 faults in 110 and 16,384 in 32, never more. The bound allows two of the twelve tensors.
FAULTS = textwrap.dedent("""
    import resource, torch
    from evaluation.efficiency.cpu_allocator import allocator_in_use
    def step():
        a = torch.ones(16 * 2**20); b = a * 2; c = b + a
        return float(c[-1])
    for _ in range(8):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(4):
        step()
    print(allocator_in_use(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


@glibc_only
@pytest.mark.parametrize("allocator", ["system", "retain"])
def test_retained_memory_has_no_page_faults(allocator):
    out = subprocess.run([sys.executable, "-c", FAULTS], env=environment_for(allocator), capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[0] == allocator
    if allocator == "system":
        assert int(out[1]) >= 12 * 16_000
    else:
        assert int(out[1]) < 3 * 16_384


@glibc_only
def test_restart_with_starts_the_script_again_with_the_setting(tmp_path):
    script = tmp_path / "again.py"
    script.write_text(textwrap.dedent("""
        import sys
        from evaluation.efficiency.cpu_allocator import allocator_in_use, restart_with
        print("start", allocator_in_use(), flush=True)
        restart_with(sys.argv[1], [sys.executable, *sys.argv])
        print("running", allocator_in_use())
    """))
    for allocator, starts in (("retain", ["start system", "start retain"]), ("system", ["start system"])):
        out = subprocess.run([sys.executable, str(script), allocator], env=environment_for("system"),
                             capture_output=True, text=True, check=True).stdout.splitlines()
        assert out == starts + [f"running {allocator}"]
