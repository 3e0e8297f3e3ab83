"""CPU timings without page faults: freed memory kept mapped, as a GPU's caching allocator keeps it.

glibc's malloc serves a large block with mmap (above a threshold that adapts up to 32 MiB) and
unmaps it on free, so a full-width training step maps its large activations and gradients afresh
every step and the kernel zeroes each new page on first touch. PyTorch's CUDA caching allocator
keeps freed blocks, so a GPU pays nothing of the kind. Measured here (PT-DiT/B-Class vs DiT-B/2,
512 px, batch 4, one thread, two consecutive steps each): 1.0-1.9 GB of minor page faults per step,
1.0-2.8 s of system time in steps of 12-18 s, and relatively more of it in PT-DiT's step (its
activations per FLOP are larger: five LayerNorm / modulation / gate sub-layers to DiT's two); with
the setting below both steps have no page faults and no system time, and both get faster
(DiT 17.7-18.4 -> 16.4 s, PT-DiT 11.9-13.8 -> 10.9 s).

The setting is glibc's own (GLIBC_TUNABLES, read once at process start): no mmap for allocations
(mmap_max=0) and no returning of the heap's free top to the system (trim_threshold 64 GiB), so a
freed block is reused by the next step. It changes where memory comes from, not what is computed;
peak memory is the same working set. CPU timings (bench/cpu_ratio.py, `ptdit profile` points on the
CPU) run in a process started with it; elsewhere (musl, macOS) the variable does nothing and the
point records the allocator as "system".
"""

import os
import platform

TUNABLES = "GLIBC_TUNABLES"
RETAIN = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"
CHOICES = ("retain", "system")


def is_glibc():
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def allocator_in_use(env=None):
    """"retain" when this process (or one started with `env`) keeps freed memory mapped, else "system"."""
    env = os.environ if env is None else env
    return "retain" if is_glibc() and RETAIN in env.get(TUNABLES, "") else "system"


def environment_for(allocator, env=None):
    """A copy of `env` (default os.environ) that starts a process with `allocator` ("retain" or "system")."""
    if allocator not in CHOICES:
        raise ValueError(f"unknown CPU allocator setting '{allocator}'; choose one of {CHOICES}")
    env = dict(os.environ if env is None else env)
    kept = [t for t in env.get(TUNABLES, "").split(":") if t and not t.startswith(("glibc.malloc.mmap_max=",
                                                                                 "glibc.malloc.trim_threshold="))]
    if allocator == "retain":
        kept.append(RETAIN)
    if kept:
        env[TUNABLES] = ":".join(kept)
    else:
        env.pop(TUNABLES, None)
    return env


def restart_with(allocator, argv):
    """Replace this process by `argv` started with `allocator`, unless it already runs with it; the
    tunables are read only at start-up, so a script that wants them must begin again."""
    if allocator_in_use() == allocator or (allocator == "retain" and not is_glibc()):
        return
    os.execve(argv[0], argv, environment_for(allocator))
