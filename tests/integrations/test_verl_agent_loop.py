"""GpbenchAgentLoop, the multi-turn revision as a verl agent loop, driven by a scripted policy.

verl's parts are real (its ``AgentLoopBase``, Continuous Token builder, ``RLHFDataset`` rows,
``hydra.utils.instantiate`` on the shipped config as verl's agent-loop worker calls it); the
server manager is a fake that answers from a script, on the tiny tokenizer. They run in
.venv-verl (``make test-verl``) and skip elsewhere.
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from gpbench.errors import ConfigError
from gpbench.export import write_split
from gpbench.integrations import verl, verl_agent_loop
from gpbench.recipes.training_items import replay, resolve
from gpbench.tasks.registry import get_task

WRONG = "I cannot tell."
LOGPROB = -0.5


def _needs_verl() -> Any:
    return pytest.importorskip("verl.experimental.agent_loop.agent_loop")


class ScriptedServer:
    """verl's server manager ``generate`` answering each call with the script's next answer
    (its tokens plus EOS unless ``eos=False``), with a log-probability per token."""

    def __init__(self, tokenizer: Any, answers: list[str], *, eos: bool = True) -> None:
        self.tokenizer = tokenizer
        self.answers = list(answers)
        self.eos = eos
        self.prompts: list[list[int]] = []
        self.outputs: list[list[int]] = []

    async def generate(self, request_id: str, *, prompt_ids: list[int], **kwargs: Any) -> Any:
        from verl.workers.rollout.replica import TokenOutput

        assert kwargs["sampling_params"] == {"temperature": 1.0}
        self.prompts.append(list(prompt_ids))
        tokens = self.tokenizer.encode(self.answers.pop(0), add_special_tokens=False)
        tokens += [self.tokenizer.eos_token_id] if self.eos else []
        self.outputs.append(tokens)
        return TokenOutput(token_ids=tokens, log_probs=[LOGPROB] * len(tokens))


@pytest.fixture(scope="module")
def tokenizer(tiny_llama: Path) -> Any:
    _needs_verl()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama)


def _rows(tmp_path: Path, task_id: str, tokenizer: Any) -> list[dict[str, Any]]:
    """The export's rows as verl's RLHFDataset hands them to an agent loop."""
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset

    write_split(get_task(task_id), "id", 12, 2, tmp_path, fmt="verl")
    files = [str(tmp_path / task_id / "verl" / "id.parquet")]
    config = OmegaConf.create(
        {"max_prompt_length": 4096, "filter_overlong_prompts": False, "cache_dir": str(tmp_path)}
    )
    dataset = RLHFDataset(files, tokenizer, config, None)
    return [dataset[i] for i in range(len(dataset))]


def _play(
    tokenizer: Any, row: dict[str, Any], server: ScriptedServer, response_length: int = 2048
) -> Any:
    """Build the agent loop from the shipped config as verl's worker does, and run one row."""
    import hydra
    from omegaconf import OmegaConf
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap
    from verl.utils.dataset.rl_dataset import RLHFDataset

    [entry] = OmegaConf.load(verl_agent_loop.AGENT_LOOP_CONFIG)
    assert entry.name == verl_agent_loop.AGENT_NAME
    trainer = OmegaConf.create(
        {
            "actor_rollout_ref": {
                "rollout": {"prompt_length": 4096, "response_length": response_length}
            },
            "data": {},
        }
    )

    async def run() -> Any:
        # Inside the running event loop: the base class keeps the loop it was built in.
        loop = hydra.utils.instantiate(
            config=entry,
            trainer_config=DictConfigWrap(config=trainer),
            server_manager=server,
            tokenizer=tokenizer,
            processor=None,
            hf_model_type=None,
            dataset_cls=RLHFDataset,
            data_config=DictConfigWrap(trainer.data),
            tools=ToolListWrap([]),
        )
        assert isinstance(loop, verl_agent_loop.GpbenchAgentLoop)
        kwargs = {k: v for k, v in row.items() if k != "dummy_tensor"}
        return await loop.run({"temperature": 1.0}, **kwargs)

    return asyncio.run(run())


def _segments(output: Any) -> list[tuple[int, list[int]]]:
    """The response as runs of equal mask: (mask, tokens) in order."""
    runs: list[tuple[int, list[int]]] = []
    for token, bit in zip(output.response_ids, output.response_mask, strict=True):
        if runs and runs[-1][0] == bit:
            runs[-1][1].append(token)
        else:
            runs.append((bit, [token]))
    return runs


def _expected_return(row: dict[str, Any], answers: list[str]) -> float:
    task, instance, point = resolve(row["reward_model"]["ground_truth"])
    return replay(task.episode(instance, start=point), answers).reward


def test_wrong_wrong_right_masks_the_feedback_and_returns_the_episodes_reward(
    tmp_path: Path, tokenizer: Any
) -> None:
    task = get_task("gp-l")
    row = _rows(tmp_path, "gp-l", tokenizer)[0]
    right = row["extra_info"]["reference_answer"]
    server = ScriptedServer(tokenizer, [WRONG, WRONG, right])
    output = _play(tokenizer, row, server)

    assert server.answers == [] and len(server.prompts) == 3
    prompt = tokenizer.apply_chat_template(
        list(row["raw_prompt"]), add_generation_prompt=True, tokenize=True, return_dict=False
    )
    assert output.prompt_ids == list(prompt)
    # The policy's tokens carry mask 1, the two feedback turns between them mask 0.
    runs = _segments(output)
    assert [bit for bit, _ in runs] == [1, 0, 1, 0, 1]
    assert [tokens for bit, tokens in runs if bit] == server.outputs
    feedback = task.verify(task.instance("id", 12, 0), WRONG).feedback
    assert feedback.startswith("You failed this trial because")
    for _, tokens in runs[1::2]:
        assert feedback in tokenizer.decode(tokens, skip_special_tokens=True)
    # Each attempt saw the whole exchange so far.
    sequence = output.prompt_ids + output.response_ids
    for seen in server.prompts:
        assert sequence[: len(seen)] == seen
    assert output.response_logprobs == [LOGPROB if bit else 0.0 for bit in output.response_mask]

    assert output.reward_score == _expected_return(row, [WRONG, WRONG, right])
    assert output.reward_score == sum(output.extra_fields["turn_scores"])
    assert len(output.extra_fields["turn_scores"]) == 3
    assert output.num_turns == 6  # the prompt, three answers, two feedback turns
    info = output.extra_fields["reward_extra_info"]
    assert info == {"correct": 1.0, "status": "correct", "attempts": 3.0, "stop_reason": "solved"}


def test_general_points_budget_is_five_with_the_penalty_on_the_last(
    tmp_path: Path, tokenizer: Any
) -> None:
    task = get_task("gp-l")
    row = _rows(tmp_path, "gp-l", tokenizer)[0]
    server = ScriptedServer(tokenizer, [WRONG] * 6)
    output = _play(tokenizer, row, server)
    assert len(server.prompts) == 5 and server.answers == [WRONG]
    reward = task.verify(task.instance("id", 12, 0), WRONG).reward
    assert output.extra_fields["turn_scores"] == [reward] * 4 + [reward + task.budget_penalty]
    assert output.reward_score == _expected_return(row, [WRONG] * 5)
    assert output.extra_fields["reward_extra_info"]["stop_reason"] == "budget_exhausted"
    assert output.extra_fields["reward_extra_info"]["correct"] == 0.0
    # The response ends with the last answer: no feedback after the budget is spent.
    assert _segments(output)[-1] == (1, server.outputs[-1])


def test_virl_plays_the_rows_decision_point_two_attempts_at_most(
    tmp_path: Path, tokenizer: Any
) -> None:
    task = get_task("virl-l")
    instance = task.instance("id", 12, 0)
    actions = task.reference_answers(instance)
    rows = _rows(tmp_path, "virl-l", tokenizer)
    assert rows[1]["extra_info"]["point"] == 1
    for row in rows[:2]:
        # A correct action ends the trajectory: the next decision point is the next row.
        right = actions[row["extra_info"]["point"]]
        server = ScriptedServer(tokenizer, [WRONG, right, WRONG])
        output = _play(tokenizer, row, server)
        assert len(server.prompts) == 2 and server.answers == [WRONG]
        assert [bit for bit, _ in _segments(output)] == [1, 0, 1]
        info = output.extra_fields["reward_extra_info"]
        assert info["stop_reason"] == "solved" and info["correct"] == 1.0
        assert output.reward_score == _expected_return(row, [WRONG, right])

    spent = ScriptedServer(tokenizer, [WRONG] * 3)
    output = _play(tokenizer, rows[1], spent)
    assert len(spent.prompts) == 2
    assert output.extra_fields["reward_extra_info"]["stop_reason"] == "budget_exhausted"
    assert output.reward_score == _expected_return(rows[1], [WRONG, WRONG])
    at_point_one = task.episode(instance, start=1).step(WRONG).reward
    assert output.extra_fields["turn_scores"] == [at_point_one, at_point_one + task.budget_penalty]


def test_the_response_length_ends_the_loop_with_the_turns_played(
    tmp_path: Path, tokenizer: Any
) -> None:
    row = _rows(tmp_path, "gp-l", tokenizer)[0]
    one_turn = len(tokenizer.encode(WRONG, add_special_tokens=False)) + 1  # with its EOS
    server = ScriptedServer(tokenizer, [WRONG] * 5)
    output = _play(tokenizer, row, server, response_length=one_turn + 1)
    # The feedback would overflow the response: the loop stops after the first answer.
    assert len(server.prompts) == 1
    assert output.response_ids == server.outputs[0] and output.response_mask == [1] * one_turn
    info = output.extra_fields["reward_extra_info"]
    assert info["stop_reason"] == "response_length" and info["attempts"] == 1.0
    assert output.reward_score == _expected_return(row, [WRONG])


def test_a_cut_off_answer_is_judged_and_the_loop_goes_on(tmp_path: Path, tokenizer: Any) -> None:
    row = _rows(tmp_path, "gp-l", tokenizer)[0]
    right = row["extra_info"]["reference_answer"]
    server = ScriptedServer(tokenizer, [WRONG, right], eos=False)
    output = _play(tokenizer, row, server)
    assert len(server.prompts) == 2
    assert output.extra_fields["reward_extra_info"]["stop_reason"] == "solved"


def test_the_row_or_the_config_sets_the_verifier_mode(tmp_path: Path, tokenizer: Any) -> None:
    row = _rows(tmp_path, "gp-l", tokenizer)[0]
    seen: list[str] = []
    real = verl.open_episode

    def recording(ground_truth: str | None, mode: str, *, who: str) -> Any:
        seen.append(mode)
        return real(ground_truth, mode, who=who)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(verl_agent_loop, "open_episode", recording)
        _play(tokenizer, row, ScriptedServer(tokenizer, [WRONG] * 5))
        reference = {**row, "extra_info": {**row["extra_info"], "verifier_mode": "reference"}}
        _play(tokenizer, reference, ScriptedServer(tokenizer, [WRONG] * 5))
    assert seen == ["gpbench", "reference"]


def test_rows_without_an_item_and_unknown_modes_are_refused(tmp_path: Path, tokenizer: Any) -> None:
    row = _rows(tmp_path, "gp-l", tokenizer)[0]
    server = ScriptedServer(tokenizer, [WRONG])
    bare = {**row, "reward_model": {"style": "rule"}}
    with pytest.raises(ConfigError, match=r"needs the row's ground_truth .*--format verl"):
        _play(tokenizer, bare, server)
    assert server.prompts == []  # refused before any generation
    with pytest.raises(ConfigError, match="verifier_mode 'paper' is not one of"):
        asyncio.run(_bad_mode(tokenizer))


async def _bad_mode(tokenizer: Any) -> None:
    from omegaconf import OmegaConf
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap
    from verl.utils.dataset.rl_dataset import RLHFDataset

    config = OmegaConf.create(
        {"actor_rollout_ref": {"rollout": {"prompt_length": 8, "response_length": 8}}, "data": {}}
    )
    verl_agent_loop.GpbenchAgentLoop(
        DictConfigWrap(config),
        None,
        tokenizer,
        None,
        RLHFDataset,
        DictConfigWrap(config.data),
        verifier_mode="paper",
    )


def test_registered_under_its_name_with_verl() -> None:
    agent_loop = _needs_verl()
    assert issubclass(verl_agent_loop.GpbenchAgentLoop, agent_loop.AgentLoopBase)
    entry = agent_loop._agent_loop_registry[verl_agent_loop.AGENT_NAME]
    assert entry["_target_"] == "gpbench.integrations.verl_agent_loop.GpbenchAgentLoop"


def test_without_verl_the_class_says_what_is_missing() -> None:
    if importlib.util.find_spec("verl") is not None:
        pytest.skip("verl is installed here: the class is verl's agent loop")
    with pytest.raises(ConfigError, match=r"needs verl's agent-loop API .*pip install verl"):
        verl_agent_loop.GpbenchAgentLoop()
