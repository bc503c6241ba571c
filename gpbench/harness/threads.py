"""CPU threads for torch and the tokenizers: a default that never oversubscribes the CPUs.

Why: torch starts one intra-op thread per core it finds on the machine. Where the process may use
fewer CPUs than the machine has (``taskset``, a container's cpuset or CPU quota, a Slurm
allocation), or where other processes share the cores, its OpenMP threads wait for each other at
the end of every parallel region, and a descheduled thread stalls them all: on a 2-core machine
with other load, the README's first example took 41 minutes with torch's default and under 2
minutes with one thread (``bench/bench_threads.py`` measures it).

The default count (:func:`default_threads`) is the first of:

1. ``GPBENCH_THREADS``, gpbench's own setting;
2. ``OMP_NUM_THREADS``, the standard OpenMP setting (its first level where it lists several, as
   in ``4,2``), which a user or a scheduler may already have set for every job;
3. the CPUs this process may run on (:func:`available_cpus`: ``os.sched_getaffinity(0)`` where
   the platform has it, ``os.cpu_count()`` else, lowered to a cgroup CPU quota such as
   ``docker run --cpus``, rounded up), less the CPUs other processes keep busy: the machine's
   CPUs minus its 1-minute load average, rounded, at least 1 (:func:`free_cpus`).

Why the load counts and the model's size does not (``bench/bench_threads.py``, README): on a
quiet 2-core machine two threads beat one by 1.0-1.9x for models of 0.46M, 3.7M and 28M
parameters alike; beside one other process busy on 2 threads, one thread was as fast or faster
for all of them (two threads took 1.0-4.9x as long); and with other engineers' jobs loading the
machine (load 2.5-4.2), the README's first ``gpbench eval`` took 47-48 s on one thread and
226-257 s on torch's two. The loss risked is far larger than the gain. The load is read once,
when the count is chosen (a run does not follow the load later); the count a run used is
recorded with its results, and the thread count changed none of the measured outputs (generated
text, training losses). ``GPBENCH_THREADS`` or ``--threads`` fixes the count where the load
misleads (a host's load seen from inside a container).

:func:`apply_threads` gives a count to torch (intra-op threads every call; inter-op threads once
per process, before any inter-op work, as torch allows) and to the tokenizers library;
:func:`thread_env` is the environment that makes a subprocess follow the same count;
:func:`threads_option` is the ``--threads`` option of the commands that run models. This module
never imports torch at import time (gpbench's light layers must not).

>>> resolve_threads(3).count, resolve_threads(environ={"GPBENCH_THREADS": "2"}).source
(3, 'GPBENCH_THREADS')
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from gpbench.errors import ConfigError

ENV = "GPBENCH_THREADS"
OMP_ENV = "OMP_NUM_THREADS"
TOKENIZERS_ENV = "TOKENIZERS_PARALLELISM"
RAYON_ENV = "RAYON_NUM_THREADS"  # the size of the tokenizers library's thread pool
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_MEMBERSHIP = Path("/proc/self/cgroup")

F = TypeVar("F", bound=Callable[..., Any])

# The inter-op count this process gave torch (torch accepts it once per process).
_interop: int | None = None


@dataclass(frozen=True)
class ThreadCount:
    """A thread count and where it came from.

    Attributes:
        count: threads (>= 1).
        source: ``--threads``, ``GPBENCH_THREADS``, ``OMP_NUM_THREADS``, or how the default
            was found (``CPUs available (2)``, ``CPUs free (2 available, load 3.1)``).
    """

    count: int
    source: str


def available_cpus(cgroup_root: Path = CGROUP_ROOT, membership: Path = CGROUP_MEMBERSHIP) -> int:
    """CPUs this process may run on: its affinity (or the machine's count), capped by a cgroup
    CPU quota."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux; not on macOS or Windows
    cpus = len(affinity(0)) if affinity is not None else os.cpu_count() or 1
    quota = cgroup_cpu_limit(cgroup_root, membership)
    if quota is not None:
        cpus = min(cpus, quota)
    return max(1, cpus)


def cgroup_cpu_limit(
    cgroup_root: Path = CGROUP_ROOT, membership: Path = CGROUP_MEMBERSHIP
) -> int | None:
    """The CPU quota of this process's cgroups in whole CPUs (rounded up), or None without one.

    Reads cgroup v2 ``cpu.max`` and cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` of the
    process's cgroup and of every cgroup above it (a parent's quota binds its children), and
    takes the lowest. Missing or unreadable files mean no quota: the answer only ever lowers the
    count.
    """
    try:
        lines = membership.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    limits: list[float] = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and not controllers:  # the v2 unified hierarchy
            folders = [cgroup_root, *_ancestors(cgroup_root, path)]
            limits += filter(None, (_quota_v2(f / "cpu.max") for f in folders))
        elif "cpu" in controllers.split(","):
            mount = cgroup_root / controllers
            if not mount.is_dir():
                mount = cgroup_root / "cpu"
            folders = [mount, *_ancestors(mount, path)]
            limits += filter(None, (_quota_v1(f) for f in folders))
    return max(1, math.ceil(min(limits))) if limits else None


def _ancestors(mount: Path, path: str) -> list[Path]:
    """``mount/a``, ``mount/a/b``, ... for the cgroup path ``/a/b``."""
    parts = [p for p in path.strip().split("/") if p and p not in (".", "..")]
    return [mount.joinpath(*parts[: i + 1]) for i in range(len(parts))]


def _quota_v2(file: Path) -> float | None:
    """CPUs of a v2 ``cpu.max`` (``"200000 100000"`` -> 2.0; ``"max 100000"`` -> None)."""
    try:
        quota, period = file.read_text(encoding="ascii").split()[:2]
        cpus = int(quota) / int(period)
    except (OSError, ValueError, UnicodeDecodeError, ZeroDivisionError):
        return None
    return cpus if cpus > 0 else None


def _quota_v1(folder: Path) -> float | None:
    """CPUs of a v1 cgroup's CFS quota (``-1``: none)."""
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text(encoding="ascii"))
        period = int((folder / "cpu.cfs_period_us").read_text(encoding="ascii"))
        cpus = quota / period
    except (OSError, ValueError, UnicodeDecodeError, ZeroDivisionError):
        return None
    return cpus if cpus > 0 else None


def _env_count(environ: Mapping[str, str], name: str) -> int | None:
    """A positive thread count from an environment variable, None when unset or empty."""
    text = environ.get(name, "").strip()
    if not text:
        return None
    first = text.split(",")[0].strip() if name == OMP_ENV else text  # OpenMP: "4,2" per level
    try:
        count = int(first)
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(
            f"{name}={text!r} is not a positive whole number of threads; set it to 1, 2, ... "
            f"or unset it (default: the CPUs this process may use)"
        )
    return count


def resolve_threads(
    requested: int | None = None, environ: Mapping[str, str] | None = None
) -> ThreadCount:
    """The count to use: ``requested`` (``--threads``) when given, else :func:`default_threads`.

    Raises:
        ConfigError: ``requested`` is below 1, or an environment setting is not a positive count.
    """
    if requested is not None:
        if requested < 1:
            raise ConfigError(f"--threads must be at least 1, got {requested}")
        return ThreadCount(requested, "--threads")
    return default_threads(environ)


def default_threads(
    environ: Mapping[str, str] | None = None, load: float | None = None
) -> ThreadCount:
    """``GPBENCH_THREADS``, else ``OMP_NUM_THREADS``, else the available CPUs the load leaves
    free (``load``: the 1-minute load average; default: the machine's, where it has one)."""
    environ = os.environ if environ is None else environ
    for name in (ENV, OMP_ENV):
        count = _env_count(environ, name)
        if count is not None:
            return ThreadCount(count, name)
    cpus = available_cpus()
    if load is None and hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
    if load is None:  # Windows: no load average
        return ThreadCount(cpus, f"CPUs available ({cpus})")
    free = free_cpus(cpus, os.cpu_count() or cpus, load)
    if free == cpus:
        return ThreadCount(cpus, f"CPUs available ({cpus}, load {load:.1f})")
    return ThreadCount(free, f"CPUs free ({cpus} available, load {load:.1f})")


def free_cpus(available: int, machine: int, load: float) -> int:
    """The ``available`` CPUs that a load average of ``load`` on a machine of ``machine`` CPUs
    leaves idle, rounded half up, at least 1.

    >>> free_cpus(2, 2, 0.3), free_cpus(2, 2, 0.7), free_cpus(2, 2, 5.0), free_cpus(8, 64, 40.0)
    (2, 1, 1, 8)
    """
    idle = machine - max(0.0, load)
    return max(1, min(available, math.floor(idle + 0.5)))


def apply_threads(
    requested: int | None = None, environ: Mapping[str, str] | None = None
) -> ThreadCount:
    """Resolve the count and give it to torch and the tokenizers library; returns it.

    torch: ``set_num_threads`` (intra-op) on every call; ``set_num_interop_threads`` once per
    process, and only before any inter-op work has started (torch refuses it after: the pool then
    keeps its size, which :func:`describe` reports). Skipped when torch is not installed.
    Tokenizers: ``RAYON_NUM_THREADS`` (its pool's size, read when the pool starts) and, for one
    thread, ``TOKENIZERS_PARALLELISM=false``; each only where the environment does not set it
    already, so a user's own tokenizers setting wins.
    """
    global _interop
    threads = resolve_threads(requested, environ)
    os.environ.setdefault(RAYON_ENV, str(threads.count))
    if threads.count == 1:
        os.environ.setdefault(TOKENIZERS_ENV, "false")
    try:
        import torch
    except ImportError:
        return threads
    torch.set_num_threads(threads.count)
    if _interop is None:
        # torch refuses once inter-op work has started (or someone set it): the pool keeps its size
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(threads.count)
        _interop = threads.count
    return threads


def describe(threads: ThreadCount) -> dict[str, Any]:
    """What to record beside a result: the count, its source, and torch's actual settings."""
    record: dict[str, Any] = {"count": threads.count, "source": threads.source}
    try:
        import torch
    except ImportError:
        return record
    record["torch_intra_op"] = int(torch.get_num_threads())
    record["torch_inter_op"] = int(torch.get_num_interop_threads())
    return record


def thread_env(count: int, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default: this process's) with the settings that make a subprocess use
    ``count`` threads: ``GPBENCH_THREADS`` for gpbench commands, ``OMP_NUM_THREADS`` for torch
    in any other program, and the tokenizers' settings as :func:`apply_threads` sets them."""
    env = dict(os.environ if environ is None else environ)
    env[ENV] = env[OMP_ENV] = str(count)
    env.setdefault(RAYON_ENV, str(count))
    if count == 1:
        env.setdefault(TOKENIZERS_ENV, "false")
    return env


def threads_option(command: F) -> F:
    """The ``--threads N`` option (default None: :func:`default_threads`), for commands that run
    models on the CPU; the command passes the value to :func:`apply_threads`."""
    option = click.option(
        "--threads",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        help=(
            f"CPU threads for torch and the tokenizers. Default: ${ENV}, else ${OMP_ENV}, else "
            "the CPUs this process may use (affinity, cgroup quota) less those the load average "
            "keeps busy, at least 1: threads beyond the free cores wait for each other at every "
            "step (two threads beside one busy process ran up to 5x slower than one). Recorded "
            "with the results."
        ),
    )
    return option(command)
