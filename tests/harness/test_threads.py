"""The thread count: its default, the environment, cgroup quotas, torch and subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gpbench.errors import ConfigError
from gpbench.harness.threads import (
    ThreadCount,
    available_cpus,
    cgroup_cpu_limit,
    default_threads,
    free_cpus,
    resolve_threads,
    thread_env,
    threads_option,
)

NO_CGROUP = Path("/nonexistent-gpbench-cgroup")


def _affinity() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def test_the_order_is_flag_then_gpbench_threads_then_omp_then_cpus() -> None:
    both = {"GPBENCH_THREADS": "3", "OMP_NUM_THREADS": "5"}
    assert resolve_threads(7, both) == ThreadCount(7, "--threads")
    assert resolve_threads(None, both) == ThreadCount(3, "GPBENCH_THREADS")
    assert default_threads({"OMP_NUM_THREADS": "5"}) == ThreadCount(5, "OMP_NUM_THREADS")
    assert default_threads({"OMP_NUM_THREADS": "4,2"}).count == 4  # OpenMP's nested levels
    quiet = default_threads({"GPBENCH_THREADS": " ", "OMP_NUM_THREADS": ""}, load=0.0)
    assert quiet.count == available_cpus() and quiet.source.startswith("CPUs available")


def test_the_default_leaves_the_cores_the_load_keeps_busy() -> None:
    """The issue's case: a 2-core machine with other load gets one thread, not torch's two."""
    assert free_cpus(2, 2, 0.0) == 2
    assert free_cpus(2, 2, 1.0) == 1 and free_cpus(2, 2, 6.5) == 1  # at least one
    assert free_cpus(2, 2, 0.4) == 2 and free_cpus(2, 2, 0.6) == 1  # rounded half up
    assert free_cpus(8, 64, 40.0) == 8  # pinned to 8 of 64 cores: others' load elsewhere
    assert free_cpus(8, 16, 10.0) == 6 and free_cpus(4, 4, -1.0) == 4
    busy = default_threads({}, load=float(os.cpu_count() or 1) + 3)
    assert busy.count == 1
    if available_cpus() > 1:
        assert busy.source.startswith("CPUs free (") and "load" in busy.source


@pytest.mark.parametrize(
    ("name", "value"),
    [
        *(
            (name, value)
            for name in ("GPBENCH_THREADS", "OMP_NUM_THREADS")
            for value in ("0", "-2", "two", "1.5", "x,2")
        ),
        ("GPBENCH_THREADS", "2,4"),  # OpenMP's per-level lists are for OMP_NUM_THREADS only
    ],
)
def test_a_bad_environment_value_is_a_one_line_error(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        default_threads({name: value})
    message = str(caught.value)
    assert name in message and repr(value) in message and "\n" not in message


def test_a_requested_count_below_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="--threads must be at least 1"):
        resolve_threads(0)


def test_the_default_never_exceeds_the_cpus_this_process_may_use() -> None:
    assert 1 <= available_cpus() <= _affinity()
    assert available_cpus(NO_CGROUP, NO_CGROUP) == _affinity()


def _cgroup_v2(tmp_path: Path, files: dict[str, str], path: str) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for folder, text in files.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "cpu.max").write_text(text)
    membership = tmp_path / "membership"
    membership.write_text(f"0::{path}\n")
    return root, membership


def test_a_cgroup_v2_quota_caps_the_count_rounded_up(tmp_path: Path) -> None:
    root, membership = _cgroup_v2(tmp_path, {"job": "150000 100000\n"}, "/job")
    assert cgroup_cpu_limit(root, membership) == 2
    assert available_cpus(root, membership) == min(2, _affinity())


def test_a_parent_cgroup_quota_binds_its_children(tmp_path: Path) -> None:
    files = {"slice": "100000 100000\n", "slice/job": "max 100000\n"}
    root, membership = _cgroup_v2(tmp_path, files, "/slice/job")
    assert cgroup_cpu_limit(root, membership) == 1


def test_no_quota_or_unreadable_files_leave_the_count_alone(tmp_path: Path) -> None:
    root, membership = _cgroup_v2(tmp_path, {"job": "max 100000\n"}, "/job")
    assert cgroup_cpu_limit(root, membership) is None
    root, membership = _cgroup_v2(tmp_path / "junk", {"job": "lots of cpus\n"}, "/job")
    assert cgroup_cpu_limit(root, membership) is None
    assert cgroup_cpu_limit(NO_CGROUP, NO_CGROUP) is None


def test_a_cgroup_v1_cfs_quota_caps_the_count(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    job = root / "cpu,cpuacct" / "docker" / "abc"
    job.mkdir(parents=True)
    (job / "cpu.cfs_quota_us").write_text("250000\n")
    (job / "cpu.cfs_period_us").write_text("100000\n")
    membership = tmp_path / "membership"
    membership.write_text("4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n")
    assert cgroup_cpu_limit(root, membership) == 3
    (job / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_limit(root, membership) is None


def test_thread_env_makes_children_follow_the_count() -> None:
    env = thread_env(3, {"PATH": "/bin", "OMP_NUM_THREADS": "8"})
    assert env["GPBENCH_THREADS"] == env["OMP_NUM_THREADS"] == "3" and env["PATH"] == "/bin"
    assert "TOKENIZERS_PARALLELISM" not in env  # tokenizers keep their default beyond one thread
    one = thread_env(1, {"TOKENIZERS_PARALLELISM": "true"})
    assert one["TOKENIZERS_PARALLELISM"] == "true"  # the user's own setting wins
    assert thread_env(1, {})["TOKENIZERS_PARALLELISM"] == "false"


def _in_fresh_python(code: str, **env: str) -> dict[str, object]:
    """Run ``code`` in a new interpreter (torch's inter-op count is set once per process)."""
    base = {k: v for k, v in os.environ.items() if k not in ("TOKENIZERS_PARALLELISM",)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_apply_sets_torch_intra_and_inter_op_once_and_the_tokenizers() -> None:
    pytest.importorskip("torch")
    code = (
        "import json, os, torch\n"
        "from gpbench.harness.threads import apply_threads, describe\n"
        "first = apply_threads(1)\n"
        "one = (torch.get_num_threads(), torch.get_num_interop_threads())\n"
        "second = apply_threads(2)\n"
        "print(json.dumps({'one': one, 'after': describe(second),\n"
        "    'tok': os.environ.get('TOKENIZERS_PARALLELISM')}))\n"
    )
    out = _in_fresh_python(code, GPBENCH_THREADS="", OMP_NUM_THREADS="2")
    assert out["one"] == [1, 1]
    # intra-op follows every call; the inter-op pool keeps the count torch accepted first
    assert out["after"] == {
        "count": 2,
        "source": "--threads",
        "torch_intra_op": 2,
        "torch_inter_op": 1,
    }
    assert out["tok"] == "false"


def test_apply_survives_an_inter_op_count_set_before_it() -> None:
    pytest.importorskip("torch")
    code = (
        "import json, torch\n"
        "torch.set_num_interop_threads(3)\n"
        "from gpbench.harness.threads import apply_threads, describe\n"
        "print(json.dumps(describe(apply_threads(None))))\n"
    )
    out = _in_fresh_python(code, GPBENCH_THREADS="1")
    assert out == {
        "count": 1,
        "source": "GPBENCH_THREADS",
        "torch_intra_op": 1,
        "torch_inter_op": 3,
    }


def test_importing_the_module_does_not_import_torch() -> None:
    code = (
        "import json, sys\nimport gpbench.harness.threads\n"
        "print(json.dumps({'torch': 'torch' in sys.modules}))\n"
    )
    assert _in_fresh_python(code) == {"torch": False}


def test_this_test_process_and_its_children_follow_the_default() -> None:
    """tests/conftest.py: the suite itself never runs more threads than the CPUs."""
    torch = pytest.importorskip("torch")
    count = default_threads().count
    assert os.environ["OMP_NUM_THREADS"] == os.environ["GPBENCH_THREADS"] == str(count)
    assert torch.get_num_threads() == count
    code = "import json, torch\nprint(json.dumps({'n': torch.get_num_threads()}))\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"n": count}


def test_the_option_takes_a_count_and_says_its_default() -> None:
    @click.command()
    @threads_option
    def command(threads: int | None) -> None:
        click.echo(f"threads={threads}")

    runner = CliRunner()
    assert runner.invoke(command, []).output == "threads=None\n"
    assert runner.invoke(command, ["--threads", "2"]).output == "threads=2\n"
    refused = runner.invoke(command, ["--threads", "0"])
    assert refused.exit_code == 2 and "--threads" in refused.output
    help_text = " ".join(runner.invoke(command, ["--help"]).output.split())
    assert "$GPBENCH_THREADS" in help_text and "$OMP_NUM_THREADS" in help_text
    assert "affinity" in help_text
