"""gpbench's inspect tasks, ``gpbench/gp_l``, ``gpbench/gp_vl``, ``gpbench/virl_l`` and
``gpbench/virl_vl`` (this module is the ``inspect_ai`` entry point that registers them).

Task parameters (``-T name=value``; inspect reads the values as YAML):

    ``split``    the split (default ``id``; ``gpbench tasks`` lists them).
    ``seed``     the instance seed, which chooses the instances (default: the split's paper
                 seed); a decoding seed is inspect's ``--seed``.
    ``n``        how many instances (default: the split's paper size; ``--limit`` also works).
    ``options``  the task's generation options as a mapping, e.g. ``-T options='{rotation: 30}'``
                 (default: the paper's).
    ``mode``     ``gpbench`` (default) or ``reference``, the paper code's rewards and feedback.
    ``budget``   attempts per decision point (default: the paper's, 5 for GeneralPoints and 2
                 for V-IRL); ``budget=1`` is single-turn.

Example: ``inspect eval gpbench/gp_l -T split=ood-rule -T n=50 --model openai/gpt-4o-mini``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpbench.errors import ConfigError, MissingDependencyError
from gpbench.inspect_bridge.bridge import check_mode, gpbench_scorer, revision_loop, samples
from gpbench.serialization import parse_json
from gpbench.tasks.registry import get_task

try:
    from inspect_ai import Task, task
except ImportError:
    raise MissingDependencyError("inspect_ai", "inspect", "gpbench's inspect_ai tasks") from None

Options = Mapping[str, Any] | str | None


def gpbench_task(
    task_id: str,
    split: str = "id",
    seed: int | None = None,
    n: int | None = None,
    options: Options = None,
    mode: str = "gpbench",
    budget: int | None = None,
) -> Task:
    """The inspect ``Task`` for one split of gpbench task ``task_id`` (parameters as above)."""
    spec = get_task(task_id)
    if not isinstance(split, str):  # inspect reads -T split=a,b as a list
        raise ConfigError(f"one split per task, got {split!r}; run one eval per split")
    split_spec = spec.split(split)
    check_mode(spec, mode)
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)):
        raise ConfigError(f"budget must be an integer >= 1, got {budget!r}")
    if budget is not None and budget < 1:
        raise ConfigError(f"budget must be an integer >= 1, got {budget}")
    dataset = samples(
        task_id,
        split,
        split_spec.paper_seed if seed is None else _integer(seed, "seed"),
        split_spec.paper_size if n is None else _integer(n, "n"),
        _options(options),
        mode,
    )
    return Task(
        dataset=dataset,
        solver=revision_loop(budget),
        scorer=gpbench_scorer(spec),
        name=f"gpbench/{spec.id.replace('-', '_')}",
        version=spec.version,
        metadata={"gpbench_task": f"{spec.id}@{spec.version}", "split": split, "mode": mode},
    )


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None


def _options(options: Options) -> dict[str, Any]:
    if options is None:
        return {}
    if isinstance(options, str):  # -T options='{"rotation": 30}' may arrive as text
        try:
            options = parse_json(options)
        except ValueError:
            raise ConfigError(
                f"-T options is not a mapping of task options: {options!r}; write e.g. "
                "-T options='{\"rotation\": 30}'"
            ) from None
    if not isinstance(options, Mapping):
        raise ConfigError(f"-T options must be a mapping of task options, got {options!r}")
    return dict(options)


@task
def gp_l(
    split: str = "id",
    seed: int | None = None,
    n: int | None = None,
    options: Options = None,
    mode: str = "gpbench",
    budget: int | None = None,
) -> Task:
    """GeneralPoints, text (gpbench's ``gp-l``): make 24 from four cards."""
    return gpbench_task("gp-l", split, seed, n, options, mode, budget)


@task
def gp_vl(
    split: str = "id",
    seed: int | None = None,
    n: int | None = None,
    options: Options = None,
    mode: str = "gpbench",
    budget: int | None = None,
) -> Task:
    """GeneralPoints from an image of the cards (gpbench's ``gp-vl``)."""
    return gpbench_task("gp-vl", split, seed, n, options, mode, budget)


@task
def virl_l(
    split: str = "id",
    seed: int | None = None,
    n: int | None = None,
    options: Options = None,
    mode: str = "gpbench",
    budget: int | None = None,
) -> Task:
    """V-IRL navigation, text observations (gpbench's ``virl-l``); one sample is a route."""
    return gpbench_task("virl-l", split, seed, n, options, mode, budget)


@task
def virl_vl(
    split: str = "id",
    seed: int | None = None,
    n: int | None = None,
    options: Options = None,
    mode: str = "gpbench",
    budget: int | None = None,
) -> Task:
    """V-IRL navigation from street views (gpbench's ``virl-vl``); one sample is a route."""
    return gpbench_task("virl-vl", split, seed, n, options, mode, budget)
