"""The paper's multi-turn verifier loop inside GRPO rollouts (TRL's ``rollout_func``).

For each prompt the policy answers; gpbench's episode judges the answer; a wrong answer gets
the verifier's feedback as a new user turn (``You failed this trial because ...``) and the
policy answers again, until an answer is correct or the verification budget is spent (GP 5
attempts, V-IRL 2 per decision point). The rollout's completion is the whole exchange as one
token sequence: the policy's tokens (trained on) and the feedback turns between them (masked
out of the loss through TRL's ``env_mask``). The reward (:class:`~gpbench.recipes.rewards.
VerifierReward`) replays the recorded ``attempts`` through the same episode: the sum of the
attempts' rewards plus the budget penalty.

Feedback turns are tokenized as the chat template renders them after an assistant turn (the
approach TRL takes for tool results), so the policy sees what the evaluation harness shows it.
The template must render earlier turns unchanged when a turn is added (true of Llama's, Qwen's
and the tiny models'); otherwise the recipe says so and single-turn (``--budget 1``) remains.

Prompts reach ``rollout_func`` without their dataset row, so each prompt is matched to its
item by its text (the prompt fully determines the problem: cards and rule, or instructions
and history). Text models only: vision-language RL runs single-turn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gpbench.errors import ConfigError
from gpbench.recipes.training_items import resolve
from gpbench.tasks.episode import Message


def prompt_key(messages: Sequence[Message]) -> str:
    """The text of a prompt's messages (image parts ignored), to find its item again."""
    texts = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            texts.append(content)
        else:
            texts.extend(str(p.get("text") or "") for p in content if p.get("type") == "text")
    return "\x1e".join(texts)


@dataclass(frozen=True)
class RolloutSettings:
    """Decoding and budget of the verifier loop.

    Attributes:
        budget: attempts per decision point (the verification budget).
        max_attempt_tokens: new tokens per attempt.
        temperature: sampling temperature (0 = greedy).
        top_p: nucleus sampling.
        mode: verifier mode.
    """

    budget: int
    max_attempt_tokens: int
    temperature: float
    top_p: float
    mode: str = "gpbench"


def _chat_ids(tokenizer: Any, messages: list[Message], *, generation_prompt: bool) -> list[int]:
    ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=generation_prompt, tokenize=True, return_dict=False
    )
    return [int(t) for t in ids]


def feedback_ids(tokenizer: Any, feedback: str) -> list[int]:
    """Tokens that follow a finished assistant turn (ending in EOS) to add a user turn and
    open the next assistant turn, as the chat template renders them."""
    dummy: list[Message] = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "y"},
    ]
    prefix = _chat_ids(tokenizer, dummy, generation_prompt=False)
    eos = tokenizer.eos_token_id
    ends = [i for i, t in enumerate(prefix) if t == eos]
    if ends:
        prefix = prefix[: ends[-1] + 1]
    full = _chat_ids(
        tokenizer, [*dummy, {"role": "user", "content": feedback}], generation_prompt=True
    )
    if full[: len(prefix)] != prefix:
        raise ConfigError(
            "this chat template changes earlier turns when a turn is added, so the verifier "
            "loop cannot continue a rollout token by token; use --budget 1 (single-turn)"
        )
    return full[len(prefix) :]


class VerifierLoopRollout:
    """TRL ``rollout_func``: each prompt's decision point played with the verifier loop.

    Args:
        refs_by_prompt: :func:`prompt_key` of each training prompt -> its item ref (JSON).
        settings: budget and decoding.
    """

    def __init__(self, refs_by_prompt: dict[str, str], settings: RolloutSettings) -> None:
        self.refs_by_prompt = refs_by_prompt
        self.settings = settings
        self._feedback_cache: dict[str, list[int]] = {}

    def __call__(self, prompts: list[list[Message]], trainer: Any) -> dict[str, Any]:
        """Roll out every prompt; returns TRL's rollout dict plus ``env_mask`` and ``attempts``."""
        from trl.models import unwrap_model_for_generation

        tokenizer = trainer.processing_class
        envs = []
        for prompt in prompts:
            task, instance, point = resolve(self.refs_by_prompt[prompt_key(prompt)])
            envs.append(
                task.episode(
                    instance, budget=self.settings.budget, mode=self.settings.mode, start=point
                )
            )
        prompt_ids = [_chat_ids(tokenizer, p, generation_prompt=True) for p in prompts]
        contexts = [list(ids) for ids in prompt_ids]
        completions: list[list[int]] = [[] for _ in prompts]
        masks: list[list[int]] = [[] for _ in prompts]
        attempts: list[list[str]] = [[] for _ in prompts]
        live = list(range(len(prompts)))
        eos = int(tokenizer.eos_token_id)
        with unwrap_model_for_generation(
            trainer.model_wrapped,
            trainer.accelerator,
            gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs,
        ) as model:
            while live:
                outputs = self._generate(model, tokenizer, [contexts[i] for i in live])
                still = []
                for i, out in zip(live, outputs, strict=True):
                    finished = bool(out) and out[-1] == eos
                    text = tokenizer.decode(out, skip_special_tokens=True)
                    attempts[i].append(text)
                    completions[i] += out
                    masks[i] += [1] * len(out)
                    contexts[i] += out
                    step = envs[i].step(text, output_truncated=not finished)
                    if step.verdict.correct or step.terminated:
                        continue
                    turn = ([] if finished else [eos]) + self._feedback(
                        tokenizer, envs[i].messages[-1]["content"]
                    )
                    completions[i] += turn
                    masks[i] += [0] * len(turn)
                    contexts[i] += turn
                    still.append(i)
                live = still
        return {
            "prompt_ids": prompt_ids,
            "completion_ids": completions,
            "logprobs": None,
            "env_mask": masks,
            "attempts": [json.dumps(a) for a in attempts],
        }

    def _feedback(self, tokenizer: Any, feedback: str) -> list[int]:
        ids = self._feedback_cache.get(feedback)
        if ids is None:
            ids = self._feedback_cache[feedback] = feedback_ids(tokenizer, feedback)
        return ids

    def _generate(self, model: Any, tokenizer: Any, contexts: list[list[int]]) -> list[list[int]]:
        """One batched ``generate`` over left-padded contexts; each output ends at its EOS."""
        import torch

        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        eos = int(tokenizer.eos_token_id)
        width = max(len(c) for c in contexts)
        ids = torch.full((len(contexts), width), pad, dtype=torch.long)
        mask = torch.zeros((len(contexts), width), dtype=torch.long)
        for row, context in enumerate(contexts):
            ids[row, width - len(context) :] = torch.tensor(context)
            mask[row, width - len(context) :] = 1
        sampling = self.settings.temperature > 0
        extra = {"temperature": self.settings.temperature, "top_p": self.settings.top_p}
        with torch.no_grad():
            out = model.generate(
                input_ids=ids.to(model.device),
                attention_mask=mask.to(model.device),
                max_new_tokens=self.settings.max_attempt_tokens,
                do_sample=sampling,
                pad_token_id=pad,
                eos_token_id=eos,
                **(extra if sampling else {}),
            )
        results = []
        for row in out[:, width:].tolist():
            cut = row.index(eos) + 1 if eos in row else len(row)
            results.append([int(t) for t in row[:cut]])
        return results
