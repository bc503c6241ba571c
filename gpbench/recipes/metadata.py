"""``gpbench_checkpoint.json``: what a recipe writes beside every checkpoint it saves.

Fields (read back by :func:`gpbench.harness.checkpoints.checkpoint_metadata`, copied into each
run's ``run.json`` by ``gpbench eval``, and used by ``gpbench report --x compute``):

- ``method``: ``init`` (an SFT initialisation: the shared start of the SFT and RL series),
  ``sft`` or ``rl``;
- ``step``: optimizer steps of this run (an ``init`` checkpoint is the start of the series, so
  its step is 0 and its own steps are in ``init_steps``);
- ``tokens_seen``: tokens this run trained on (SFT: prompt and answer tokens of its examples;
  RL: prompt and model-generated tokens of its rollouts; padding and verifier feedback excluded);
- ``init_tokens``, ``init_steps``: the same for everything the base checkpoint was trained on
  by gpbench's recipes (0 for a base without metadata);
- ``parameter_count``: N, every parameter of the model;
- ``compute``: training FLOPs by the paper's formula (docs/tasks.md §3), cumulative from the first
  recipe run on the chain: the base's ``compute`` plus this run's 6 N D (SFT, init) or
  6 N D + 2 N lambda D (RL, lambda 6 for GeneralPoints, 5.1 for V-IRL). For the paper's set-up
  (base = init) this is 6N(D_init + D_sft) and 6N(D_init + D_rl) + 2N lambda D_rl;
- ``compute_formula``, ``rl_lambda``;
- ``task``: the task the run trained on, version pinned;
- ``base_checkpoint``: path, fingerprint, method and compute of the checkpoint training started from;
- ``config``: the recipe's resolved config (``threads``: the CPU thread count used);
- ``threads``: that count, where it came from (``--threads``, ``GPBENCH_THREADS``,
  ``OMP_NUM_THREADS``, ``CPUs available``) and torch's intra-op and inter-op settings
  (the floating point of a CPU run can depend on them);
- ``gpbench_version``, ``git_commit``, ``git_dirty``, ``packages`` (torch, transformers, trl, ...),
  ``created``.

>>> recorder = MetadataRecorder("rl", 1000, BaseCheckpoint("base/", None, None), {}, "gp-l@1", 6.0)
>>> recorder.run_compute(10)
180000.0
>>> record = recorder.record(step=3, tokens_seen=10)
>>> record["compute"], record["method"], record["compute_formula"]
(180000.0, 'rl', '6N(D_init + D_rl) + 2N*lambda*D_rl')
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpbench.errors import ConfigError
from gpbench.harness.checkpoints import checkpoint_metadata, fingerprint
from gpbench.harness.folders import METADATA_FILE
from gpbench.reports.compute import number
from gpbench.runs.folder import provenance

METHODS = ("init", "sft", "rl")
FORMULAS = {
    "init": "6N*D_init",
    "sft": "6N(D_init + D_sft)",
    "rl": "6N(D_init + D_rl) + 2N*lambda*D_rl",
}


@dataclass(frozen=True)
class BaseCheckpoint:
    """The checkpoint a run starts from.

    Attributes:
        path: the folder (absolute) or hub id.
        fingerprint: :func:`gpbench.harness.checkpoints.fingerprint` of a local folder, else None.
        metadata: its ``checkpoint_metadata`` when it was written by a recipe, else None.
    """

    path: str
    fingerprint: str | None
    metadata: dict[str, Any] | None

    @property
    def compute(self) -> float:
        """FLOPs already spent on it by gpbench recipes (0 for a base without metadata)."""
        return (number(self.metadata, "compute") or 0.0) if self.metadata else 0.0

    @property
    def tokens(self) -> float:
        """Tokens it was trained on by gpbench recipes: its init tokens plus its own."""
        if not self.metadata:
            return 0.0
        return (number(self.metadata, "init_tokens") or 0.0) + (
            number(self.metadata, "tokens_seen") or 0.0
        )

    @property
    def steps(self) -> float:
        """Optimizer steps it was trained for by gpbench recipes."""
        if not self.metadata:
            return 0.0
        return (number(self.metadata, "init_steps") or 0.0) + (number(self.metadata, "step") or 0.0)


def base_checkpoint(model: str) -> BaseCheckpoint:
    """Describe the starting checkpoint: a local folder is fingerprinted and its metadata read."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return BaseCheckpoint(model, None, None)
    meta = checkpoint_metadata(folder)
    recorded = meta if meta.get("source", {}).get("method") == METADATA_FILE else None
    if recorded is not None:
        recorded = {k: v for k, v in recorded.items() if k not in ("path", "source")}
    return BaseCheckpoint(str(folder.resolve()), fingerprint(folder), recorded)


@dataclass(frozen=True)
class MetadataRecorder:
    """Builds the ``gpbench_checkpoint.json`` record of a run at a given step and token count.

    Attributes:
        method: ``init``, ``sft`` or ``rl``.
        parameter_count: N.
        base: the starting checkpoint.
        config: the recipe's resolved config (JSON-able).
        task: the task id with its version (``gp-l@1``).
        rl_lambda: the paper's lambda for the task (6 GeneralPoints, 5.1 V-IRL).
        threads: the run's CPU threads (:func:`gpbench.harness.threads.describe`), or None.
    """

    method: str
    parameter_count: int
    base: BaseCheckpoint
    config: dict[str, Any]
    task: str
    rl_lambda: float
    threads: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")

    def run_compute(self, tokens_seen: float) -> float:
        """FLOPs of this run alone for ``tokens_seen`` training tokens (the paper's formula)."""
        n = float(self.parameter_count)
        compute = 6 * n * tokens_seen
        if self.method == "rl":
            compute += 2 * n * self.rl_lambda * tokens_seen
        return compute

    def record(self, *, step: int, tokens_seen: float) -> dict[str, Any]:
        """The metadata of a checkpoint saved after ``step`` steps and ``tokens_seen`` tokens."""
        init = self.method == "init"
        base_meta = self.base.metadata or {}
        record: dict[str, Any] = {
            "method": self.method,
            "step": 0 if init else step,
            "tokens_seen": int(tokens_seen),
            "init_tokens": int(self.base.tokens),
            "init_steps": int(self.base.steps) + (step if init else 0),
            "parameter_count": self.parameter_count,
            "compute": self.base.compute + self.run_compute(tokens_seen),
            "compute_formula": FORMULAS[self.method],
            "task": self.task,
            "base_checkpoint": {
                "path": self.base.path,
                "fingerprint": self.base.fingerprint,
                "method": base_meta.get("method"),
                "compute": base_meta.get("compute"),
            },
            "config": self.config,
        }
        if self.threads is not None:
            record["threads"] = dict(self.threads)
        if self.method == "rl":
            record["rl_lambda"] = self.rl_lambda
        if init:
            # An initialisation's tokens count as init tokens for the series it starts.
            record["init_tokens"] = int(self.base.tokens + tokens_seen)
            record["tokens_seen"] = 0
        prov = provenance()
        record.update(
            {
                "gpbench_version": prov["gpbench_version"],
                "git_commit": prov["git_commit"],
                "git_dirty": prov["git_dirty"],
                "packages": {**prov["packages"], **_training_packages()},
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec="seconds"
                ),
            }
        )
        return record


def _training_packages() -> dict[str, str | None]:
    """Versions of the training stack (beyond what every gpbench run records)."""
    found: dict[str, str | None] = {}
    for name in ("trl", "accelerate", "peft", "deepspeed"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def write_metadata(folder: Path, record: dict[str, Any]) -> Path:
    """Write ``gpbench_checkpoint.json`` into a checkpoint folder (atomically: a reader never
    sees half a file)."""
    target = folder / METADATA_FILE
    tmp = folder / f".{METADATA_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(target)
    return target
