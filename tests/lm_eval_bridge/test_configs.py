"""The lm-eval YAMLs: generated from the registry, shipped equal to a fresh export, read by lm-eval."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from gpbench.cli import cli
from gpbench.lm_eval_bridge import configs, hooks, include_path
from gpbench.tasks.registry import all_tasks

yaml = pytest.importorskip("yaml")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader that reads ``!function x`` as ``("!function", "x")``."""


_Loader.add_constructor(
    "!function", lambda loader, node: ("!function", loader.construct_scalar(node))
)


def _load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass


def test_shipped_yamls_equal_a_fresh_export(tmp_path: Path) -> None:
    shipped = include_path()
    fresh = tmp_path / "fresh"
    configs.export(fresh)
    names = sorted(p.name for p in fresh.iterdir())
    shipped_names = sorted(p.name for p in shipped.iterdir() if p.name != "__pycache__")
    fix = "run `gpbench lm-eval-export gpbench/lm_eval_bridge/include` and commit the result"
    assert shipped_names == names, fix
    for name in names:
        assert (shipped / name).read_bytes() == (fresh / name).read_bytes(), f"{name}: {fix}"


def test_every_task_and_split_has_a_task_with_generate_sizes_and_seeds() -> None:
    files = configs.render_files()
    for task in all_tasks():
        for split, spec in task.splits.items():
            config = _load(files[f"{configs.task_name(task, split)}.yaml"])
            assert config["task"] == f"gpbench_{task.id}_{split}".replace("-", "_")
            meta = config["metadata"]
            # The same seed and size `gpbench generate` uses without -n/--seed.
            assert (meta["gpbench_seed"], meta["gpbench_n"]) == (spec.paper_seed, spec.paper_size)
            assert meta["gpbench_task"] == f"{task.id}@{task.version}"
            assert meta["gpbench_split"] == split and meta["gpbench_options"] == {}
            assert meta["version"] == task.version
            assert "Single-turn" in meta["description"]
            assert "description" not in config  # lm-eval would send it as a system prompt
            # Generator settings live in metadata only (never in dataset_kwargs).
            assert "dataset_kwargs" not in config and "dataset_path" not in config
            assert config["custom_dataset"] == ("!function", "gpbench_hooks.custom_dataset")
            assert config["process_results"] == ("!function", "gpbench_hooks.process_results")
            assert ("doc_to_image" in config) == (task.modality == "vision")
            assert config["doc_to_text"] == "prompt" and config["num_fewshot"] == 0
            assert config["generation_kwargs"] == {
                "until": [],
                "max_gen_toks": 256,
                "do_sample": False,
                "temperature": 0.0,
            }
            metrics = config["metric_list"]
            assert [m["metric"] for m in metrics] == hooks.metric_names(task)
            for metric in metrics:
                assert metric["aggregation"] == "mean"
                assert isinstance(metric["higher_is_better"], bool)
            better = {m["metric"] for m in metrics if m["higher_is_better"]}
            assert better == {"success", "reward", f"status_{hooks.statuses(task)[0]}"}


def test_groups_collect_evaluation_splits_and_never_mix_modalities() -> None:
    files = configs.render_files()
    groups = {name: _load(text) for name, text in files.items() if "\ngroup: " in text}
    by_task = {configs.task_name(task): task for task in all_tasks()}
    for name, task in by_task.items():
        members = groups[f"{name}.yaml"]["task"]
        assert members == [configs.task_name(task, s) for s in task.splits if s != "train"]
        assert "aggregate_metric_list" not in groups[f"{name}.yaml"]
    assert groups["gpbench.yaml"]["task"] == ["gpbench_gp_l", "gpbench_virl_l"]
    assert groups["gpbench_vision.yaml"]["task"] == ["gpbench_gp_vl", "gpbench_virl_vl"]


def test_export_writes_max_gen_toks_and_removes_only_its_own_stale_files(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("task: mine\n")
    stale = tmp_path / "gpbench_gp_l_old_split.yaml"
    stale.write_text(f"{configs.GENERATED_MARK} long ago\ntask: gpbench_gp_l_old_split\n")
    result = CliRunner().invoke(cli, ["lm-eval-export", str(tmp_path), "--max-gen-toks", "1024"])
    assert result.exit_code == 0, result.output
    assert "wrote 25 lm-eval YAMLs and gpbench_hooks.py" in result.output
    assert (tmp_path / "mine.yaml").read_text() == "task: mine\n"
    assert not stale.exists()
    config = _load((tmp_path / "gpbench_virl_l_ood_rule.yaml").read_text())
    assert config["generation_kwargs"]["max_gen_toks"] == 1024
    assert config["generation_kwargs"]["until"] == []


def test_lm_eval_path_prints_the_shipped_folder() -> None:
    result = CliRunner().invoke(cli, ["lm-eval-path"])
    assert result.exit_code == 0, result.output
    assert Path(result.output.strip()) == include_path()
    assert (include_path() / "gpbench_gp_l_ood_rule.yaml").is_file()


_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
_SCALARS = st.one_of(
    _TEXT,
    st.sampled_from(["yes", "No", "null", "~", "1e3", "0x10", "-", "@x", "a: b", "#c", "12"]),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
_KEYS = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=12)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(st.one_of(_SCALARS, st.dictionaries(_KEYS, inner, max_size=3)), max_size=4),
        st.dictionaries(_KEYS, inner, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, min_size=1, max_size=6))
def test_render_yaml_reads_back_as_written(config: dict[str, Any]) -> None:
    assert _load(configs.render_yaml(config, ["# header"])) == config


def test_lm_eval_indexes_every_task_and_group() -> None:
    pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(include_path()), include_defaults=False)
    expected = {
        name.removesuffix(".yaml") for name in configs.render_files() if name.endswith(".yaml")
    }
    assert expected <= set(manager.all_tasks)
    assert {"gpbench", "gpbench_vision", "gpbench_gp_l", "gpbench_virl_vl_ood_spatial"} <= expected


def test_lm_eval_builds_a_task_from_the_generator_and_takes_metadata_overrides() -> None:
    pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager

    from gpbench.tasks.registry import get_task

    manager = TaskManager(include_path=str(include_path()), include_defaults=False)
    [task] = manager.load(["gpbench_gp_l_ood_rule"])["tasks"].values()
    docs = list(task.eval_docs)
    gp = get_task("gp-l")
    instances = list(gp.dataset("ood-rule", 42, 234))
    assert [d["instance_uid"] for d in docs] == [i.uid for i in instances]
    assert task.doc_to_text(docs[5]) == instances[5].messages[0]["content"]
    assert task.config.generation_kwargs["until"] == []
    assert task.OUTPUT_TYPE == "generate_until"

    # `lm_eval --metadata '{"gpbench_n": 3, "gpbench_seed": 7}'` reaches the generator.
    manager = TaskManager(
        include_path=str(include_path()),
        include_defaults=False,
        metadata={"gpbench_n": 3, "gpbench_seed": 7},
    )
    [task] = manager.load(["gpbench_virl_l_id"])["tasks"].values()
    routes = list(get_task("virl-l").dataset("id", 7, 3))
    assert len(task.eval_docs) == sum(len(r.problem["actions"]) for r in routes)
    assert {d["instance_uid"] for d in task.eval_docs} == {r.uid for r in routes}
