"""Reading a run folder: run.json and every episode line checked against it.

Every reader checks a run against its run.json (:func:`read_episodes`): each line is a
well-formed episode of the run's task version, split, seed and budget, on one of its instances
(index range, shard, sample, and the uid its instance key gives), each ``(uid, sample)`` occurs
once, and a complete run holds exactly the episodes it promises, with no cut-off line. A
mismatch is a one-line :class:`RunIntegrityError` naming the file, what is wrong and how to fix
it; ``gpbench eval`` resuming the run repairs it instead (:class:`gpbench.harness.writer.RunWriter`).
A run still being written may end in a cut-off line (a killed writer): readers stop before it.

Lines are untrusted input: every field is checked for its type, and JSON Python cannot decode
(nesting 100k deep, huge integers) is refused in one line like any other bad line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpbench.errors import GpbenchError, RecordSchemaError
from gpbench.records import STOP_REASONS, Episode
from gpbench.runs.folder import EPISODES_FILE, RUN_FILE, STATUSES
from gpbench.serialization import JsonLimitError, parse_json, to_json

_RUN_FILE_LIMIT = 16 << 20  # a run.json is a few kB: anything this large is not one


class RunIntegrityError(RecordSchemaError):
    """A run folder whose files do not hold what its run.json promises.

    Attributes:
        problem: what is wrong, without the advice.
        fix: how to repair the run.
    """

    def __init__(self, path: str, line: int, problem: str, fix: str) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(path, line, f"{problem}; {fix}")


def read_run_spec(folder: Path) -> dict[str, Any]:
    """The ``run.json`` of a run folder, its fields checked (a bad one is a one-line error)."""
    path = folder / RUN_FILE
    if not path.is_file():
        raise GpbenchError(f"{folder} is not a run folder (no {RUN_FILE})")
    try:
        with path.open("rb") as handle:
            raw = handle.read(_RUN_FILE_LIMIT + 1)
    except OSError as exc:
        raise GpbenchError(f"cannot read {path}: {exc.strerror}") from None
    fix = "the file is damaged: run the command that wrote the run again"
    if len(raw) > _RUN_FILE_LIMIT:
        raise RecordSchemaError(str(path), 0, f"over {_RUN_FILE_LIMIT >> 20} MB: {fix}")
    try:
        data = _decode(raw, allow_nan=True)  # checkpoint metadata may hold NaN
        _check_spec(data)
    except ValueError as exc:
        raise RecordSchemaError(str(path), 0, f"{exc}; {fix}") from None
    result: dict[str, Any] = data
    return result


def run_status(folder: Path) -> str | None:
    """``complete``, ``running`` (interrupted or in progress), ``writing`` or None (no run)."""
    try:
        return run_spec_status(read_run_spec(folder))
    except GpbenchError:
        return None


def run_spec_status(spec: dict[str, Any]) -> str:
    """The status a run.json records (runs written before statuses existed are complete)."""
    return str(spec.get("status", "complete"))


def read_episodes(folder: Path, spec: dict[str, Any] | None = None) -> Iterator[Episode]:
    """The episodes of a run, in file order, each checked against the run (``spec``: its run.json,
    read when not given).

    Raises :class:`RunIntegrityError` at the first line that is not a well-formed episode of the
    run or repeats one, and, after the last line of a complete run, when the run holds other
    than the episodes it promises. A run still being written may end in a cut-off line (its
    writer was killed while writing it): that line is skipped.
    """
    spec = read_run_spec(folder) if spec is None else spec
    promise = RunPromise.of(folder, spec)
    complete = run_spec_status(spec) == "complete"
    path = folder / EPISODES_FILE
    seen: set[tuple[str, int]] = set()
    if path.is_file():
        yield from _checked_lines(path, promise, complete, seen)
    if complete and promise.count is not None and len(seen) != promise.count:
        where = f"holds {len(seen)} episodes" if path.is_file() else f"has no {EPISODES_FILE}"
        raise promise.error(folder, 0, f"{where} but its run.json promises {promise.count}")


def _checked_lines(
    path: Path, promise: RunPromise, complete: bool, seen: set[tuple[str, int]]
) -> Iterator[Episode]:
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.endswith(b"\n"):
                    if complete:
                        raise promise.error(path, number, "is cut off (no end of line)")
                    return  # the line a killed writer was writing: the episode was not finished
                if raw.isspace():
                    continue
                try:
                    episode = parse_episode(raw)
                except ValueError as exc:
                    raise promise.error(path, number, str(exc)) from None
                problem = promise.problem(episode)
                if problem is not None:
                    raise promise.error(path, number, problem)
                pair = (episode.uid, episode.sample)
                if pair in seen:
                    raise promise.error(
                        path,
                        number,
                        f"repeats the episode of instance {episode.index} sample {episode.sample}",
                    )
                seen.add(pair)
                yield episode
    except OSError as exc:
        raise promise.error(path, 0, f"cannot be read ({exc.strerror})") from None


@dataclass(frozen=True)
class RunPromise:
    """What a run's run.json says its episodes are (None: not recorded, so not checked).

    Attributes:
        tasks: the (task, version) pairs episodes may be of.
        splits, seeds: the splits and instance seeds episodes may be of.
        budget: the verification budget every episode ran under.
        n, shard: episodes are on instance indices ``range(shard[0], n, shard[1])``.
        samples: samples per instance.
        count: the number of episodes of the complete run.
        uid_prefix: the instance keys' common start (a uid is the hash of it plus the index).
        fix: how to repair the run, for error messages.
    """

    tasks: frozenset[tuple[str, int]] | None
    splits: frozenset[str] | None
    seeds: frozenset[int] | None
    budget: int | None
    n: int | None
    shard: tuple[int, int]
    samples: int | None
    count: int | None
    uid_prefix: str | None
    fix: str

    @classmethod
    def of(cls, folder: Path, spec: dict[str, Any]) -> RunPromise:
        """The promise of a run.json (checked by :func:`read_run_spec`)."""
        key = spec.get("run_key")
        if isinstance(key, dict):
            return cls._of_eval(folder, spec, key)
        tasks = spec.get("tasks")
        return cls(
            tasks=frozenset(tasks.items()) if isinstance(tasks, dict) else None,
            splits=frozenset(spec["splits"]) if "splits" in spec else None,
            seeds=frozenset(spec["seeds"]) if "seeds" in spec else None,
            budget=spec.get("max_attempts"),
            n=None,
            shard=(0, 1),
            samples=None,
            count=spec.get("episodes"),
            uid_prefix=None,
            fix=_fix(spec),
        )

    @classmethod
    def _of_eval(cls, folder: Path, spec: dict[str, Any], key: dict[str, Any]) -> RunPromise:
        task_id, _, version = key["task"].partition("@")
        shard = (key["shard"][0], key["shard"][1])
        count = len(range(shard[0], key["n"], shard[1])) * key["samples"]
        fix = _fix(spec)
        recorded = spec.get("episodes")
        if run_spec_status(spec) == "complete" and recorded is not None and recorded != count:
            raise RunIntegrityError(
                str(folder / RUN_FILE),
                0,
                f"says {recorded} episodes but its run key promises {count}",
                fix,
            )
        return cls(
            tasks=frozenset({(task_id, int(version))}),
            splits=frozenset({key["split"]}),
            seeds=frozenset({key["seed"]}),
            budget=key["budget"],
            n=key["n"],
            shard=shard,
            samples=key["samples"],
            count=count,
            uid_prefix=_uid_prefix(key),
            fix=fix,
        )

    def problem(self, episode: Episode) -> str | None:
        """Why ``episode`` is not one of the run's, or None."""
        if self.tasks is not None and (episode.task, episode.task_version) not in self.tasks:
            runs = ", ".join(f"{t}@{v}" for t, v in sorted(self.tasks))
            return f"is an episode of {episode.task}@{episode.task_version}, not {runs}"
        if self.splits is not None and episode.split not in self.splits:
            return f"is an episode of split {episode.split!r}, not {_names(self.splits)}"
        if self.seeds is not None and episode.seed not in self.seeds:
            return f"is an episode of instance seed {episode.seed}, not {_names(self.seeds)}"
        if self.budget is not None and episode.budget != self.budget:
            return f"ran under budget {episode.budget}, not the run's {self.budget}"
        return self.instance_problem(episode.uid, episode.index, episode.sample)

    def instance_problem(self, uid: str, index: int, sample: int) -> str | None:
        """Why ``(uid, index, sample)`` is not one of the run's instances and samples, or None."""
        first, step = self.shard
        if self.n is not None and not (index < self.n and index % step == first):
            shard = f", shard {first}/{step}" if step > 1 else ""
            return f"is on instance {index}, not one of the run's (n={self.n}{shard})"
        if self.samples is not None and sample >= self.samples:
            return f"is sample {sample}, but the run takes {self.samples} per instance"
        if self.uid_prefix is not None:
            from gpbench.generators.rng import content_hash

            if uid != content_hash(f"{self.uid_prefix}{index}"):
                return f"has uid {uid!r}, which is not the uid of the run's instance {index}"
        return None

    def error(self, path: Path, line: int, problem: str) -> RunIntegrityError:
        """The one-line error for ``problem`` at ``path:line`` (line 0: the whole file)."""
        return RunIntegrityError(str(path), line, problem, self.fix)


def _names(values: Iterable[Any]) -> str:
    return " or ".join(repr(v) for v in sorted(values))


def _fix(spec: dict[str, Any]) -> str:
    if "merged_from" in spec:
        return "run its gpbench merge command again with --overwrite"
    if "run_key" in spec:
        return "run its gpbench eval command again: it repairs the run and runs what is missing"
    return "run the command that wrote it again (gpbench score ... --overwrite)"


def _uid_prefix(key: dict[str, Any]) -> str | None:
    """The instance keys' common start for a run key, or None where it cannot be recomputed
    (a task version this gpbench does not know, options it does not take)."""
    from gpbench.tasks.registry import get_task

    try:
        task = get_task(key["task"])
    except GpbenchError:
        return None
    options = key["options"]
    if not set(options) <= set(task.options):
        return None
    defaults = {name: option.default for name, option in task.options.items()}
    try:
        return task.key_prefix(key["split"], key["seed"], {**defaults, **options})
    except (TypeError, ValueError, KeyError):  # option values of a kind the task never makes
        return None


# --- decoding untrusted lines ----------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _decode(raw: bytes, *, allow_nan: bool = False) -> Any:
    """One JSON document from untrusted bytes (:func:`gpbench.serialization.parse_json`, so
    absurd nesting and huge integers are refused too); ValueError with a short reason otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    try:
        if allow_nan:
            return parse_json(text)
        return parse_json(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        where = "" if isinstance(exc, JsonLimitError) else f" at column {exc.colno}"
        raise ValueError(f"not valid JSON ({exc.msg}{where})") from None
    except ValueError as exc:  # a NaN refused by _reject_constant
        raise ValueError(f"not valid JSON ({exc})") from None


_MISSING: Any = object()


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a list" if isinstance(value, list) else "an object"


def _get(data: dict[str, Any], key: str, where: str, default: Any) -> Any:
    value = data.get(key, default)
    if value is _MISSING:
        raise ValueError(f"has no field {where}{key}")
    return value


def _wrong(where: str, key: str, expected: str, value: Any) -> ValueError:
    return ValueError(f"field {where}{key} must be {expected}, found {_kind(value)}")


def _string(data: dict[str, Any], key: str, where: str = "", default: Any = _MISSING) -> str:
    value = _get(data, key, where, default)
    if not isinstance(value, str):
        raise _wrong(where, key, "a string", value)
    return value


def _integer(
    data: dict[str, Any],
    key: str,
    where: str = "",
    minimum: int | None = 0,
    default: Any = _MISSING,
) -> int:
    value = _get(data, key, where, default)
    if type(value) is not int or (minimum is not None and value < minimum):
        expected = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise _wrong(where, key, expected, value)
    return value


def _optional_integer(data: dict[str, Any], key: str, where: str = "") -> int | None:
    value = data.get(key)
    return None if value is None else _integer(data, key, where)


def _boolean(data: dict[str, Any], key: str, where: str = "", default: Any = _MISSING) -> bool:
    value = _get(data, key, where, default)
    if not isinstance(value, bool):
        raise _wrong(where, key, "true or false", value)
    return value


def _finite(data: dict[str, Any], key: str, where: str = "", default: Any = _MISSING) -> float:
    value = _get(data, key, where, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _wrong(where, key, "a finite number", value)
    return value


def _optional_finite(data: dict[str, Any], key: str, where: str = "") -> float | None:
    value = data.get(key)
    return None if value is None else _finite(data, key, where)


def _strings(data: dict[str, Any], key: str, where: str = "", default: Any = _MISSING) -> list[str]:
    value = _get(data, key, where, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _wrong(where, key, "a list of strings", value)
    return value


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object, found {_kind(value)}")
    return value


def parse_episode(raw: bytes) -> Episode:
    """An Episode from one line of ``episodes.jsonl``, every field checked.

    Raises ValueError naming the first field that is missing, of the wrong type, or
    inconsistent with the others (``attempts_used`` against the turns, ``correct`` against the
    stop reason), so no reader counts a malformed record.
    """
    data = _mapping(_decode(raw), "the line")
    turns = _get(data, "turns", "", _MISSING)
    if not isinstance(turns, list):
        raise _wrong("", "turns", "a list", turns)
    for position, turn in enumerate(turns):
        _check_turn(turn, f"turns[{position}].")
    stop = _string(data, "stop_reason")
    if stop not in STOP_REASONS:
        raise ValueError(f"field stop_reason must be one of {', '.join(STOP_REASONS)}")
    correct = _boolean(data, "correct")
    attempts = _integer(data, "attempts_used")
    first_try = _boolean(data, "first_try_correct")
    if attempts != len(turns):
        raise ValueError(f"says attempts_used {attempts} but holds {len(turns)} turns")
    if correct != (stop == "solved") or (first_try and not correct):
        raise ValueError(f"says correct {str(correct).lower()} but stopped as {stop}")
    if correct and not turns[-1]["verdict"]["correct"]:
        raise ValueError("is solved but its last attempt was not correct")
    error = data.get("error")
    if error is not None and not isinstance(error, str):
        raise _wrong("", "error", "a string or null", error)
    return Episode(
        uid=_string(data, "uid"),
        task=_string(data, "task"),
        task_version=_integer(data, "task_version"),
        split=_string(data, "split"),
        seed=_integer(data, "seed", minimum=None),
        index=_integer(data, "index"),
        sample=_integer(data, "sample"),
        turns=turns,
        correct=correct,
        return_=_finite(data, "return"),
        attempts_used=attempts,
        first_try_correct=first_try,
        stop_reason=stop,
        budget=_integer(data, "budget", minimum=1),
        flags=_strings(data, "flags", default=[]),
        error=error,
    )


def _check_turn(value: Any, where: str) -> None:
    turn = _mapping(value, f"field {where[:-1]}")
    _integer(turn, "attempt", where, minimum=1)
    _string(turn, "response", where)
    _boolean(turn, "output_truncated", where, default=False)
    _optional_integer(turn, "prompt_tokens", where)
    _optional_integer(turn, "completion_tokens", where)
    _optional_finite(turn, "latency_s", where)
    _integer(turn, "decision_point", where, default=0)
    _finite(turn, "reward", where, default=0.0)
    verdict = _mapping(_get(turn, "verdict", where, _MISSING), f"field {where}verdict")
    inner = f"{where}verdict."
    _boolean(verdict, "correct", inner)
    _string(verdict, "status", inner)
    _strings(verdict, "statuses", inner)
    _finite(verdict, "reward", inner)
    _string(verdict, "feedback", inner)
    _strings(verdict, "flags", inner, default=[])
    extracted = _mapping(verdict.get("extracted", {}), f"field {inner}extracted")
    detection = extracted.get("detection")
    if detection is not None:
        found = _mapping(detection, f"field {inner}extracted.detection")
        _boolean(found, "intersection_correct", f"{inner}extracted.detection.")
        _integer(found, "landmarks_visible", f"{inner}extracted.detection.")
        _integer(found, "landmarks_named", f"{inner}extracted.detection.")


def _check_spec(data: Any) -> None:
    """The run.json fields gpbench's readers rely on have their types (ValueError otherwise)."""
    spec = _mapping(data, "the file")
    if "status" in spec and spec["status"] not in STATUSES:
        raise ValueError(f"field status must be one of {', '.join(STATUSES)}")
    if "episodes" in spec:
        _integer(spec, "episodes")
    if "max_attempts" in spec:
        _integer(spec, "max_attempts", minimum=1)
    if "splits" in spec:
        _strings(spec, "splits")
    seeds = spec.get("seeds", [])
    if not isinstance(seeds, list) or not all(type(s) is int for s in seeds):
        raise _wrong("", "seeds", "a list of integers", seeds)
    tasks = spec.get("tasks", {})
    if not isinstance(tasks, dict) or not all(type(v) is int for v in tasks.values()):
        raise _wrong("", "tasks", "an object of task versions", tasks)
    if "run_key" in spec:
        _check_run_key(_mapping(spec["run_key"], "field run_key"))


def _check_run_key(key: dict[str, Any]) -> None:
    task = _string(key, "task", "run_key.")
    name, _, version = task.partition("@")
    if not name or not version.isdigit():
        raise ValueError(f"field run_key.task must be TASK@VERSION, found {task!r}")
    _string(key, "split", "run_key.")
    _integer(key, "seed", "run_key.", minimum=None)
    _integer(key, "n", "run_key.")
    _integer(key, "samples", "run_key.", minimum=1)
    _integer(key, "budget", "run_key.", minimum=1)
    _mapping(key.get("options", {}), "field run_key.options")
    shard = key.get("shard")
    if (
        not isinstance(shard, list)
        or len(shard) != 2
        or not all(type(s) is int for s in shard)
        or not 0 <= shard[0] < shard[1]
    ):
        raise _wrong("run_key.", "shard", "[i, N] with 0 <= i < N", shard)


# --- in-flight turns ---------------------------------------------------------------------------


@dataclass(frozen=True)
class InflightTurn:
    """One line of ``inflight.jsonl``: an answered turn of an episode still in flight.

    ``finish_reason`` is the backend's word for why the answer ended; the harness, which owns
    that vocabulary, checks it when it replays the turn.
    """

    uid: str
    index: int
    sample: int
    turn: int
    text: str
    finish_reason: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float | None

    def line(self) -> bytes:
        """The line that stores this turn (JSON, newline-terminated)."""
        payload = {
            "uid": self.uid,
            "index": self.index,
            "sample": self.sample,
            "turn": self.turn,
            "text": self.text,
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_s": self.latency_s,
        }
        return (to_json(payload) + "\n").encode("utf-8")

    @classmethod
    def parse(cls, raw: bytes) -> InflightTurn:
        """The turn one line stores; ValueError with a short reason for a malformed one."""
        data = _mapping(_decode(raw), "the line")
        return cls(
            uid=_string(data, "uid"),
            index=_integer(data, "index"),
            sample=_integer(data, "sample"),
            turn=_integer(data, "turn"),
            text=_string(data, "text"),
            finish_reason=_string(data, "finish_reason"),
            prompt_tokens=_optional_integer(data, "prompt_tokens"),
            completion_tokens=_optional_integer(data, "completion_tokens"),
            latency_s=_optional_finite(data, "latency_s"),
        )
