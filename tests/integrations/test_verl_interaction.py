"""GpbenchInteraction, the multi-turn revision as a verl interaction, driven by a fake policy."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Any

import pytest

from gpbench.errors import ConfigError
from gpbench.export import write_split
from gpbench.integrations import verl
from gpbench.tasks.registry import get_task

WRONG = "I cannot tell."


def _kwargs(tmp_path: Path, task_id: str, index: int = 0) -> dict[str, Any]:
    pq = pytest.importorskip("pyarrow.parquet")
    written = write_split(get_task(task_id), "id", 12, 2, tmp_path, fmt="verl")
    row = pq.read_table(written.path).to_pylist()[index]
    kwargs: dict[str, Any] = row["extra_info"]["interaction_kwargs"]
    assert kwargs["name"] == verl.INTERACTION_NAME
    assert kwargs["ground_truth"] == row["reward_model"]["ground_truth"]
    return kwargs


def _play(
    interaction: Any, kwargs: dict[str, Any], answers: list[str]
) -> list[tuple[bool, str, float, dict[str, Any]]]:
    """What verl does: start, then one generate_response per model turn until it says stop."""

    async def run() -> list[tuple[bool, str, float, dict[str, Any]]]:
        key = await interaction.start_interaction("req-1", **kwargs)
        assert key == "req-1"
        messages: list[dict[str, Any]] = [{"role": "user", "content": "prompt"}]
        turns = []
        for answer in answers:
            messages.append({"role": "assistant", "content": answer})
            turn = await interaction.generate_response(key, messages)
            turns.append(turn)
            assert await interaction.calculate_score(key) == turn[2]
            if turn[0]:
                break
            messages.append({"role": "user", "content": turn[1]})
        await interaction.finalize_interaction(key)
        return turns

    return asyncio.run(run())


def test_wrong_wrong_right_gets_feedback_then_stops(tmp_path: Path) -> None:
    task = get_task("gp-l")
    instance = task.instance("id", 12, 0)
    right = task.reference_answers(instance)[0]
    turns = _play(verl.GpbenchInteraction({}), _kwargs(tmp_path, "gp-l"), [WRONG, WRONG, right])
    wrong = task.verify(instance, WRONG)
    assert [t[0] for t in turns] == [False, False, True]
    assert [t[1] for t in turns] == [wrong.feedback, wrong.feedback, ""]
    assert wrong.feedback.startswith("You failed this trial because")
    assert [t[2] for t in turns] == [
        wrong.reward,
        wrong.reward,
        task.verify(instance, right).reward,
    ]
    assert [t[3]["attempt"] for t in turns] == [1, 2, 3]
    assert turns[-1][3]["correct"] and turns[-1][3]["stop_reason"] == "solved"


def test_general_points_budget_is_five_with_the_penalty_on_the_last(tmp_path: Path) -> None:
    task = get_task("gp-l")
    turns = _play(verl.GpbenchInteraction({}), _kwargs(tmp_path, "gp-l"), [WRONG] * 6)
    reward = task.verify(task.instance("id", 12, 0), WRONG).reward
    assert [t[0] for t in turns] == [False] * 4 + [True]
    assert [t[2] for t in turns] == [reward] * 4 + [reward + task.budget_penalty]
    assert turns[-1][3]["stop_reason"] == "budget_exhausted"


def test_virl_stops_at_the_rows_decision_point(tmp_path: Path) -> None:
    task = get_task("virl-l")
    instance = task.instance("id", 12, 0)
    actions = task.reference_answers(instance)
    assert task.decision_points(instance) >= 2
    # A correct action ends the row's exchange: the next decision point is a row of its own.
    turns = _play(verl.GpbenchInteraction({}), _kwargs(tmp_path, "virl-l"), [WRONG, *actions])
    assert [t[0] for t in turns] == [False, True]
    assert [t[3]["decision_point"] for t in turns] == [0, 0]
    assert turns[-1][3]["stop_reason"] == "solved" and turns[-1][3]["correct"]
    # Two wrong actions at one decision point spend its budget.
    spent = _play(verl.GpbenchInteraction({}), _kwargs(tmp_path, "virl-l"), [WRONG] * 3)
    assert [t[0] for t in spent] == [False, True]
    assert spent[-1][3]["stop_reason"] == "budget_exhausted"


@pytest.mark.parametrize(
    ("task_id", "point", "script"),
    [("gp-l", 0, "wwr"), ("gp-l", 0, "wwwwww"), ("virl-l", 1, "wr"), ("virl-l", 0, "www")],
)
def test_the_turns_rewards_sum_to_the_trl_recipes_reward(
    task_id: str, point: int, script: str
) -> None:
    # revision_turn (both verl components) and replay (the TRL recipe's multi-turn reward) agree.
    from gpbench.recipes.training_items import ref_of, replay

    task = get_task(task_id)
    instance = task.instance("id", 12, 0)
    right = task.reference_answers(instance)[point]
    answers = [right if c == "r" else WRONG for c in script]
    _, env = verl.open_episode(ref_of(task, instance, point).to_json(), "gpbench", who="test")
    turns = []
    for answer in answers:
        turns.append(verl.revision_turn(env, answer))
        if turns[-1].done:
            break
    assert [t.done for t in turns] == [False] * (len(turns) - 1) + [True]
    assert all(t.next_user.startswith("You failed this trial") for t in turns[:-1])
    expected = replay(task.episode(instance, start=point), answers)
    assert sum(t.reward for t in turns) == expected.reward
    assert len(turns) == len(expected.verdicts)
    assert (turns[-1].info["stop_reason"] == "solved") == expected.solved


def test_a_row_at_a_later_decision_point_starts_there(tmp_path: Path) -> None:
    task = get_task("virl-l")
    instance = task.instance("id", 12, 0)
    [second] = _play(verl.GpbenchInteraction({}), _kwargs(tmp_path, "virl-l", 1), [WRONG])
    assert second[3]["decision_point"] == 1
    expected = task.episode(instance, start=1).step(WRONG)
    assert second[1] == expected.verdict.feedback and second[2] == expected.reward


def test_the_shipped_config_names_an_importable_interaction(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    [entry] = yaml.safe_load(verl.INTERACTION_CONFIG.read_text())["interaction"]
    assert entry["name"] == verl.INTERACTION_NAME
    module, _, name = entry["class_name"].rpartition(".")
    # As verl's interaction registry builds it: the class from its path, the config dict
    # with the entry's name added.
    config = {**entry["config"], "name": entry["name"]}
    interaction = getattr(importlib.import_module(module), name)(config=config)
    assert isinstance(interaction, verl.GpbenchInteraction)
    assert interaction.name == "gpbench" and interaction.verifier_mode == "gpbench"
    turns = _play(interaction, _kwargs(tmp_path, "gp-l"), [WRONG])
    assert turns[0][3]["status"] != "correct"


def test_interaction_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="verifier_mode 'paper' is not one of"):
        verl.GpbenchInteraction({"verifier_mode": "paper"})
    interaction = verl.GpbenchInteraction({})
    with pytest.raises(ConfigError, match=r"needs the row's ground_truth .*--format verl"):
        asyncio.run(interaction.start_interaction("a"))
    with pytest.raises(ConfigError, match="verifier_mode 'paper' is not one of"):
        asyncio.run(interaction.start_interaction("a", ground_truth="{}", verifier_mode="paper"))
    with pytest.raises(ConfigError, match=r"no gpbench interaction 'b': call start_interaction"):
        asyncio.run(interaction.generate_response("b", []))


def test_subclasses_verls_base_interaction_where_verl_has_one() -> None:
    # verl 0.9 has no verl.interactions: there the class is a plain one with the same methods.
    base = pytest.importorskip("verl.interactions.base")
    assert issubclass(verl.GpbenchInteraction, base.BaseInteraction)


def test_verls_dataset_passes_the_interaction_kwargs(tmp_path: Path, tiny_llama: Path) -> None:
    # Runs where verl imports (.venv-verl): the kwargs verl's dataset hands the interaction.
    rl_dataset = pytest.importorskip("verl.utils.dataset.rl_dataset")
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer

    config = OmegaConf.create(
        {"max_prompt_length": 4096, "filter_overlong_prompts": False, "cache_dir": str(tmp_path)}
    )
    write_split(get_task("gp-l"), "id", 12, 2, tmp_path, fmt="verl")
    files = [str(tmp_path / "gp-l" / "verl" / "id.parquet")]
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    item = rl_dataset.RLHFDataset(files, tokenizer, config, None)[0]
    answer = item["extra_info"]["reference_answer"]
    turns = _play(verl.GpbenchInteraction({}), dict(item["interaction_kwargs"]), [WRONG, answer])
    assert [t[0] for t in turns] == [False, True] and turns[-1][3]["correct"]


def test_the_base_is_verls_where_the_installed_verl_has_interactions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    if "verl" in sys.modules:
        pytest.skip("a real verl is imported in this process")
    # A stand-in verl with verl.interactions.base, first on the path.
    package = tmp_path / "verl" / "interactions"
    package.mkdir(parents=True)
    (tmp_path / "verl" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "base.py").write_text("class BaseInteraction:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert verl._interaction_base().__module__ == "verl.interactions.base"
        (package / "base.py").unlink()
        assert verl._interaction_base() is verl._PlainInteraction
    finally:
        for name in [n for n in sys.modules if n == "verl" or n.startswith("verl.")]:
            monkeypatch.delitem(sys.modules, name)
