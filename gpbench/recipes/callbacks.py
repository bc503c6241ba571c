"""Trainer callbacks: metadata beside every saved checkpoint, and stopping at a compute budget.

Both work with any transformers ``Trainer`` (TRL's ``SFTTrainer`` and ``GRPOTrainer`` included)
and read the token count from ``TrainerState.num_input_tokens_seen``: SFT counts it with
``include_num_input_tokens_seen="non_padding"``, GRPO counts the prompt and model-generated
tokens of every rollout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from gpbench.recipes.metadata import MetadataRecorder, write_metadata

CHECKPOINT_PREFIX = "checkpoint"


class CheckpointMetadataCallback(TrainerCallback):  # type: ignore[misc]
    """Writes ``gpbench_checkpoint.json`` into each ``checkpoint-N/`` the trainer saves."""

    def __init__(self, recorder: MetadataRecorder) -> None:
        self.recorder = recorder
        self.saved: list[Path] = []

    def on_save(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> TrainerControl:
        """The trainer has just written ``checkpoint-{global_step}``: add the metadata."""
        folder = Path(args.output_dir) / f"{CHECKPOINT_PREFIX}-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            record = self.recorder.record(
                step=state.global_step, tokens_seen=state.num_input_tokens_seen
            )
            write_metadata(folder, record)
            self.saved.append(folder)
        return control


class ComputeBudgetCallback(TrainerCallback):  # type: ignore[misc]
    """Saves at 1/k, 2/k, ... of a FLOPs budget and stops training once the budget is spent.

    The compute of a step is known only after it ran, so a run overshoots its budget by less
    than one step's compute; the metadata records what was actually spent.
    """

    def __init__(self, recorder: MetadataRecorder, budget: float, save_points: int) -> None:
        if budget <= 0 or save_points < 1:
            raise ValueError("budget must be > 0 and save_points >= 1")
        self.recorder = recorder
        self.budget = budget
        self.milestones = [budget * k / save_points for k in range(1, save_points + 1)]

    def on_step_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> TrainerControl:
        """Save when the run's compute crosses the next milestone; stop at the budget."""
        spent = self.recorder.run_compute(state.num_input_tokens_seen)
        crossed = False
        while self.milestones and spent >= self.milestones[0]:
            self.milestones.pop(0)
            crossed = True
        if crossed:
            control.should_save = True
        if spent >= self.budget:
            control.should_training_stop = True
            control.should_save = True
        return control
