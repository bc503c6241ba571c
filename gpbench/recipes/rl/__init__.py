"""RL recipe: GRPO (TRL's ``GRPOTrainer``) with gpbench's verifier as the reward.

Deviation from the paper: the paper trained with PPO and a value head (clip 0.1, 4 epochs, GAE
gamma 0.9 / lambda 0.95, no KL). TRL removed its PPO trainer and value-head models in 1.10, so
gpbench uses GRPO: no value head; each prompt is sampled ``num_generations`` times and a
rollout's advantage is its reward relative to its group's. The paper's settings that transfer
are kept: learning rate 1e-6, no KL (``beta`` 0), gradient clip 0.01, ratio clip 0.1, 4
optimisation passes per batch of rollouts (``num_iterations``), sampling temperature 0.2, and
the multi-turn verifier loop.

Rollouts: with a budget above 1 (the default for text tasks: GP 5 attempts, V-IRL 2 per
decision point), each rollout plays the verifier loop (:mod:`gpbench.recipes.rollout`, through
TRL's ``rollout_func``): wrong answers get the verifier's feedback and another attempt; the
reward is the episode's return (attempt rewards plus the -1 budget penalty). With ``--budget 1``
(and always for vision-language models, whose multi-turn rollouts TRL's ``rollout_func`` path
does not carry images for) rollouts are single-turn and the reward is the verdict's reward for
the one answer. V-IRL trains per decision point with the true history, as the paper's training
items. Rewards are the paper's values (:mod:`gpbench.recipes.rewards`); shaping terms are
separate reward functions, off unless named (``--set shaping=format:0.5``), and recorded.

Launch:
    gpbench recipes rl --task gp-l --model ckpts/init -o ckpts/rl --preset tiny-cpu
    python -m gpbench.recipes.rl --task gp-l --model ckpts/init -o ckpts/rl --preset tiny-cpu
    # paper settings on 8 GPUs (bf16, DeepSpeed ZeRO-3 through accelerate):
    accelerate launch --config_file zero3.yaml --num_processes 8 -m gpbench.recipes.rl \\
        --task gp-l --model tianzhechu/GP-L-Init -o ckpts/rl --preset paper

Presets:
    ``paper``: the transferable settings above; batch 128 rollouts (16 prompts x 8
    generations) per optimizer step, 256 new tokens per attempt, bf16, gradient checkpointing.
    Hardware: for the 11B model, 8 GPUs of 80 GB with ZeRO-3 (generation runs in the trainer;
    TRL's vLLM generation (``--set use_vllm=true``) is single-turn only here). Metric: the
    paper reports OOD success rising with RL compute (GP-L ood-rule 11.5% -> 15.0%).
    ``tiny-cpu``: the tiny Llama on 2 CPU cores after the tiny SFT initialisation: 4 prompts x 4
    generations a step, temperature 1.0, 48 new tokens per attempt, the paper's budget (5), lr
    1e-4. Measured here: 2.9 s a step on a lightly loaded machine, 23-29 s when four other
    torch jobs shared the 2 cores (rollouts of ~200 tokens: five attempts with feedback between
    them). Metric: the verifier reward's mean (``rewards/gpbench_verifier/mean`` in the logs)
    stays between -17 and -13 over the main job's 18 steps (five wrong attempts and the -1
    penalty: the SFT-initialised tiny model answers the feedback turns, which it never saw in
    training, with junk), and success on held-out and OOD hands stays at 0.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from gpbench.errors import ConfigError
from gpbench.recipes.config import (
    TrainSettings,
    check_before_run,
    check_trainer_args,
    from_preset,
    nearest_multiples,
    with_threads,
)
from gpbench.recipes.data import REF_COLUMN, examples, rl_row
from gpbench.tasks.registry import get_task
from gpbench.tasks.spec import TaskSpec

FEEDBACK_TOKEN_ALLOWANCE = 64
"""Tokens allowed per feedback turn when sizing ``max_completion_length`` of a multi-turn rollout."""


@dataclass(frozen=True)
class RLRecipeConfig(TrainSettings):
    """The RL recipe's settings (the shared ones are documented on :class:`TrainSettings`).

    ``batch_size`` counts rollouts (prompts x ``num_generations``) per optimizer step.

    Attributes:
        budget: verification budget in rollouts; 0 = the task's (GP 5, V-IRL 2; 1 for
            vision-language models); 1 = single-turn.
        num_generations: rollouts per prompt (GRPO's group).
        max_attempt_tokens: new tokens per attempt.
        temperature: sampling temperature of rollouts (the paper: 0.2).
        top_p: nucleus sampling of rollouts.
        beta: KL coefficient against the starting model (the paper: none).
        epsilon: ratio clip (the paper's PPO clip 0.1).
        num_iterations: optimisation passes over each batch of rollouts (the paper's 4 epochs).
        shaping: shaping terms by name with their weights (:data:`gpbench.recipes.rewards.SHAPING`).
        verifier_mode: ``gpbench``, or ``reference`` for the paper code's verifier quirks.
    """

    budget: int = 0
    num_generations: int = 8
    max_attempt_tokens: int = 256
    temperature: float = 0.2
    top_p: float = 1.0
    beta: float = 0.0
    epsilon: float = 0.1
    num_iterations: int = 4
    shaping: dict[str, float] = field(default_factory=dict)
    verifier_mode: str = "gpbench"


PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "learning_rate": 1e-6,
        "batch_size": 128,
        "per_device_batch_size": 4,
        "num_generations": 8,
        "max_attempt_tokens": 256,
        "temperature": 0.2,
        "beta": 0.0,
        "epsilon": 0.1,
        "num_iterations": 4,
        "max_grad_norm": 0.01,
        "lr_scheduler": "constant",
        "bf16": True,
        "gradient_checkpointing": True,
        "train_size": 0,
        "max_steps": 1000,
        "save_steps": 50,
        "logging_steps": 1,
    },
    "tiny-cpu": {
        "learning_rate": 1e-4,
        "batch_size": 16,
        "per_device_batch_size": 16,
        "num_generations": 4,
        "max_attempt_tokens": 48,
        "temperature": 1.0,
        "beta": 0.0,
        "epsilon": 0.2,
        "num_iterations": 1,
        "max_grad_norm": 1.0,
        "lr_scheduler": "constant",
        "bf16": False,
        "gradient_checkpointing": False,
        "train_size": 2000,
        "max_steps": 40,
        "save_steps": 10,
        "logging_steps": 1,
        "use_cpu": True,
    },
}


def resolve(preset: str, overrides: dict[str, Any] | None = None) -> RLRecipeConfig:
    """The config of a preset with overrides."""
    config = from_preset(RLRecipeConfig, PRESETS, preset, overrides)
    if config.verifier_mode not in ("gpbench", "reference"):
        raise ConfigError(
            f"verifier_mode must be gpbench or reference, got {config.verifier_mode!r}; "
            "--set verifier_mode=reference trains on the paper code's rewards"
        )
    if config.num_generations < 2:
        raise ConfigError(
            f"--num-generations must be at least 2 (GRPO scores each rollout against the other "
            f"rollouts of its prompt), got {config.num_generations}"
        )
    if config.batch_size % config.num_generations:
        # Suggest batches that also fit the per-device batch, so the next check passes too.
        world = int(os.environ.get("WORLD_SIZE", "1"))
        step = math.lcm(config.num_generations, config.per_device_batch_size * world)
        low, high = nearest_multiples(config.batch_size, step)
        raise ConfigError(
            f"--batch-size {config.batch_size} is not a multiple of --num-generations "
            f"{config.num_generations} (each prompt's rollouts must fit in one batch); use "
            f"--batch-size {low} or {high}"
        )
    return config


def rollout_budget(task: TaskSpec, config: RLRecipeConfig) -> int:
    """Attempts per decision point in rollouts (multi-turn only for text models)."""
    if task.modality == "vision":
        if config.budget > 1:
            raise ConfigError(
                f"{task.id}: multi-turn rollouts run on text models only here "
                f"(TRL's rollout_func carries no images); use --budget 1"
            )
        return 1
    return config.budget or task.max_attempts


def prompt_rows(task: TaskSpec, config: RLRecipeConfig) -> list[dict[str, Any]]:
    """The GRPO prompt rows: every decision point of ``train_size`` train instances."""
    size = config.train_size or task.split("train").paper_size
    instances = task.dataset("train", config.train_seed, size, config.options)
    return [rl_row(task, example) for example in examples(task, instances)]


def train(config: RLRecipeConfig) -> Any:
    """Run the recipe; returns a :class:`gpbench.recipes.runner.RecipeResult`.

    A local ``config.model`` folder is loaded strictly (weights that do not fit are refused, see
    :func:`gpbench.recipes.runner.starting_model`); a Hub id is loaded by TRL itself.
    """
    task = get_task(config.task)
    check_before_run(config, task.modality)
    config, threads = with_threads(config)
    budget = rollout_budget(task, config)
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from gpbench.recipes.rewards import reward_functions
    from gpbench.recipes.rollout import RolloutSettings, VerifierLoopRollout, prompt_key
    from gpbench.recipes.runner import common_trainer_args, run, starting_model

    check_trainer_args(config.trainer_args, list(GRPOConfig.__dataclass_fields__), "GRPOConfig")
    completion_tokens = config.max_attempt_tokens
    if budget > 1:
        completion_tokens = budget * (config.max_attempt_tokens + FEEDBACK_TOKEN_ALLOWANCE)
    args = GRPOConfig(
        **{
            **common_trainer_args(config),
            "num_generations": config.num_generations,
            "max_completion_length": completion_tokens,
            "temperature": config.temperature,
            "top_p": config.top_p,
            "beta": config.beta,
            "epsilon": config.epsilon,
            "num_iterations": config.num_iterations,
            "generation_batch_size": config.batch_size,
            **config.trainer_args,
        }
    )
    rows = prompt_rows(task, config)
    rollout = None
    if budget > 1:
        refs = {prompt_key(row["prompt"]): row[REF_COLUMN] for row in rows}
        settings = RolloutSettings(
            budget,
            config.max_attempt_tokens,
            config.temperature,
            config.top_p,
            config.verifier_mode,
        )
        rollout = VerifierLoopRollout(refs, settings)
    trainer = GRPOTrainer(
        model=starting_model(config.model, args),
        reward_funcs=reward_functions(config.shaping, mode=config.verifier_mode, budget=budget),
        args=args,
        train_dataset=Dataset.from_list(rows),
        rollout_func=rollout,
    )
    return run(trainer, config, task, "rl", threads)
