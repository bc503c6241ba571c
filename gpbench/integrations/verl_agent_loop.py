"""The paper's multi-turn revision as a verl agent loop (verl 0.9's multi-turn API).

:class:`GpbenchAgentLoop` plays one ``gpbench generate --format verl`` row: the policy answers
(verl's server manager ``generate``), gpbench's episode judges the answer
(:func:`gpbench.integrations.verl.revision_turn`, the same turn :class:`~gpbench.integrations.
verl.GpbenchInteraction` plays), and a wrong answer gets the verifier's feedback as the next user
turn, until an answer is correct or the task's budget is spent at the row's decision point (5
attempts for GeneralPoints, 2 for a V-IRL decision point; each later V-IRL decision point is a
row of its own, with the true history in its prompt). The trajectory is one token
sequence: the row's prompt, then the policy's tokens (``response_mask`` 1) and the feedback turns
between them (``response_mask`` 0), tokenized by verl's Continuous Token builder as verl's own
agent loops do. Its reward, ``reward_score``, is the paper's multi-turn return: the sum of the
turns' step rewards (each verdict's reward, plus the task's budget penalty on the turn that
spends the budget), the same number as the TRL recipe's multi-turn ``VerifierReward``; verl
puts it on the last response token, so no reward function runs.

Register it with verl through ``actor_rollout_ref.rollout.agent.agent_loop_config_path`` =
:data:`AGENT_LOOP_CONFIG` (``verl_agent_loop.yaml`` beside this file; verl's agent-loop workers
read that file, they never import gpbench otherwise) and select it for every row with
``actor_rollout_ref.rollout.agent.default_agent_loop`` = :data:`AGENT_NAME`.

The module imports without verl (gpbench's own environment has none): there the class is a
stand-in whose constructor says what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

from gpbench.errors import ConfigError
from gpbench.integrations.verl import (
    VERIFIER_MODE,
    RevisionTurn,
    check_mode,
    open_episode,
    revision_turn,
)

AGENT_NAME = "gpbench_revision"
"""The agent loop's name in ``verl_agent_loop.yaml`` (verl's ``agent_name``)."""

AGENT_LOOP_CONFIG = Path(__file__).with_name("verl_agent_loop.yaml")
"""The agent-loop config to pass verl (``actor_rollout_ref.rollout.agent.agent_loop_config_path``)."""


class _NoVerl:
    """Stands in for verl's ``AgentLoopBase`` where verl's agent-loop API does not import."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ConfigError(
            f"GpbenchAgentLoop needs verl's agent-loop API (verl >= 0.9): {_MISSING}; "
            "pip install verl (see scripts/setup_verl.sh)"
        )


def _agent_loop_api() -> tuple[type, Callable[[str], Callable[[type], type]], str]:
    """verl's ``AgentLoopBase`` and ``register`` where they import, else a stand-in and a no-op,
    with why verl's API is missing (empty when it imports)."""
    try:
        from verl.experimental.agent_loop.agent_loop import (  # type: ignore[import-not-found,unused-ignore]
            AgentLoopBase,
            register,
        )
    except ImportError as error:
        # Kept for the stand-in's error: an installed verl whose agent loop misses a dependency
        # (e.g. cachetools, from verl's verl-core extra) reads differently from no verl at all.
        def no_register(name: str) -> Callable[[type], type]:
            return lambda cls: cls

        return _NoVerl, no_register, f"importing verl.experimental.agent_loop failed ({error})"
    base: type = AgentLoopBase
    registrar: Callable[[str], Callable[[type], type]] = register
    return base, registrar, ""


_BASE, _register, _MISSING = _agent_loop_api()


@_register(AGENT_NAME)
class GpbenchAgentLoop(_BASE):  # type: ignore[misc,valid-type]
    """verl agent loop: the paper's revision loop on a gpbench row (see the module docstring).

    verl builds it per trajectory with ``hydra.utils.instantiate`` from the entry in
    ``verl_agent_loop.yaml``; the entry's keys besides ``name`` and ``_target_`` arrive as
    keyword arguments.

    Args:
        *args: verl's ``AgentLoopBase`` arguments (trainer config, server manager, tokenizer,
            processor, dataset class, data config).
        verifier_mode: ``gpbench``, or ``reference`` for the paper code's verifier quirks; a
            row's ``extra_info.verifier_mode`` comes first.
        **kwargs: the rest of verl's keyword arguments (``hf_model_type``, ``tools``, the
            entry's ``name``), passed on.
    """

    def __init__(self, *args: Any, verifier_mode: str = VERIFIER_MODE, **kwargs: Any) -> None:
        kwargs.pop("name", None)  # the config entry's own name, not a base-class argument
        super().__init__(*args, **kwargs)
        self.verifier_mode = check_mode(str(verifier_mode))
        self.response_length: int = int(self.rollout_config.response_length)

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> Any:
        """Play the row's item until solved or out of budget; returns verl's ``AgentLoopOutput``.

        Args:
            sampling_params: verl's sampling parameters, passed to every ``generate``.
            **kwargs: the dataset row's fields: ``raw_prompt`` (the chat), ``reward_model``
                (its ``ground_truth`` names the item) and ``extra_info``.

        Returns:
            ``AgentLoopOutput`` with ``reward_score`` (the sum of the turns' rewards),
            ``num_turns`` (user and assistant turns, the prompt included), and in
            ``extra_fields`` the ``turn_scores`` and ``reward_extra_info`` (``correct``: 1.0 when
            solved, ``status`` of the last verdict, ``attempts``, ``stop_reason``:
            ``solved``, ``budget_exhausted``, or ``response_length`` when verl's response
            length ran out first; the return then sums the turns played, with no penalty).
        """
        from verl.experimental.agent_loop.agent_loop import (  # type: ignore[import-not-found,unused-ignore]
            AgentLoopOutput,
        )
        from verl.utils.profiler import simple_timer  # type: ignore[import-not-found,unused-ignore]

        extra_info = dict(kwargs.get("extra_info") or {})
        reward_model = dict(kwargs.get("reward_model") or {})
        mode = str(extra_info.get("verifier_mode") or self.verifier_mode)
        _, env = open_episode(
            reward_model.get("ground_truth"), mode, who="GpbenchAgentLoop (reward_model)"
        )
        messages: list[dict[str, Any]] = [dict(m) for m in kwargs["raw_prompt"]]

        multi_modal_data = await self.process_multi_modal_info(messages)
        images = multi_modal_data.get("images")
        videos = multi_modal_data.get("videos")
        self._assert_mm_supported(bool(multi_modal_data))
        mm_processor_kwargs = self._get_mm_processor_kwargs(None)
        runtime: list[int] = await self.ct_build_initial_tokens(
            messages, images=images, videos=videos
        )

        metrics: dict[str, Any] = {}
        server_fields: dict[str, Any] = {}
        request_id = uuid4().hex
        eos = self.tokenizer.eos_token_id
        mask: list[int] = []
        logprobs: list[float] = []
        turns: list[RevisionTurn] = []
        user_turns = 0
        stop_reason = "response_length"
        while True:
            with simple_timer("generate_sequences", metrics):
                output = await self.server_manager.generate(
                    request_id=request_id,
                    prompt_ids=runtime,
                    sampling_params=sampling_params,
                    image_data=images,
                    video_data=videos,
                    mm_processor_kwargs=mm_processor_kwargs,
                )
            preempted = output.num_preempted if output.num_preempted is not None else 0
            metrics["num_preempted"] = metrics.get("num_preempted", 0) + preempted
            # The server's fields (weight versions in verl's async modes) as verl's tool agent
            # loop keeps them: the first call's, with the latest max_global_steps.
            if not server_fields:
                server_fields.update(output.extra_fields)
            elif output.extra_fields.get("max_global_steps"):
                server_fields["max_global_steps"] = output.extra_fields["max_global_steps"]
            tokens = [int(t) for t in output.token_ids]
            merged, mask, new_logprobs = await self.ct_merge_assistant_token(
                runtime,
                tokens,
                mask,
                logprobs if (logprobs or output.log_probs) else None,
                assistant_logprobs=output.log_probs or None,
            )
            runtime = merged.token_ids
            logprobs = new_logprobs or []
            answer = self.tokenizer.decode(tokens, skip_special_tokens=True)
            # An attempt that stopped without EOS hit the token limit: flagged in its verdict.
            turn = revision_turn(env, answer, output_truncated=not tokens or tokens[-1] != eos)
            turns.append(turn)
            if turn.done:
                stop_reason = str(turn.info["stop_reason"])
                break
            if len(mask) >= self.response_length:
                break
            # The assistant turn goes in before the snapshot: its tokens are already in
            # ``runtime``, so only the user turn is tokenized and appended.
            messages.append({"role": "assistant", "content": answer})
            previous = list(messages)
            messages.append({"role": "user", "content": turn.next_user})
            merged, next_mask, next_logprobs = await self.ct_merge_context_msg(
                previous, messages, runtime, mask, logprobs or None
            )
            if len(next_mask) >= self.response_length:
                break
            runtime, mask = merged.token_ids, next_mask
            logprobs = next_logprobs or []
            user_turns += 1

        # The mask covers the response: the builder may edit tokens at a merge junction, so
        # the split follows the mask (as verl's tool agent loop splits), not the first prompt.
        prompt_ids = runtime[: len(runtime) - len(mask)]
        response_ids = runtime[len(prompt_ids) :]
        solved = stop_reason == "solved"
        result = AgentLoopOutput(
            prompt_ids=prompt_ids,
            response_ids=response_ids[: self.response_length],
            response_mask=mask[: self.response_length],
            response_logprobs=logprobs[: self.response_length] if logprobs else None,
            multi_modal_data=multi_modal_data,
            mm_processor_kwargs=mm_processor_kwargs,
            reward_score=sum(t.reward for t in turns),
            num_turns=1 + len(turns) + user_turns,
            metrics=metrics,
            extra_fields=server_fields,
        )
        result.extra_fields.update(
            {
                "turn_scores": [t.reward for t in turns],
                "tool_rewards": [],
                "reward_extra_info": {
                    "correct": 1.0 if solved else 0.0,
                    "status": str(turns[-1].info["status"]),
                    "attempts": float(len(turns)),
                    "stop_reason": stop_reason,
                },
            }
        )
        return result
