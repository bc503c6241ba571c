"""Positive controls for gp-l: tiny models whose behaviour is known by construction.

- :func:`build_memorizer`: the tiny Llama trained on ``train``'s reference answers (the paper's
  prompt and response format, J/Q/K = 10) until it recalls them. Expected: high ``id`` success
  (``id`` overlaps ``train``), near zero on ``id-heldout`` and ``ood-rule``, and its ``ood-rule``
  answers flagged ``verbatim_training_formula`` and ``train_rule_answer``. With ``blind_share``
  above 0 some face-card hands are shown under the shifted rule's prompt with train's answer
  (replayed ``blind_attempts`` times through the revision loop): trained on the paper's prompt
  alone, the tiny model answers the unseen rule sentence with broken text (``illegal_formula``)
  instead of replaying its training answer, so the flags never fire.
- :func:`build_rule_follower`: the tiny Llama trained on transcripts whose answers follow a fixed
  procedure that works on hands it never saw: read the face-card rule from the prompt, write the
  card values, sort them (an extra ``sorted`` field, ignored by the verifier), then fill the
  formula template of the attempt (one template per attempt of the verification loop, in a fixed
  order). The corpus holds both rules and no ``id-heldout`` value multiset, so its success on
  ``id-heldout`` and ``ood-rule`` measures the procedure, not recall. Its ceiling is the
  templates' coverage (27-30% of the hands of each split).

Both start from the same base (:func:`build_base`: the tiny Llama whose tokenizer also read
J/Q/K = 11/12/13 prompts, so 11, 12 and 13 are single tokens as 10 is; an earlier
rule-follower on the ``id``-only tokenizer, which spells 12 as 1, 2, reached 4% on ``ood-rule``,
its attempts miscopying those values), train with a plain torch loop (loss on the assistant turns only) and write
``gpbench_checkpoint.json`` (method ``sft``; ``config`` holds the sizes, the seed and the
corpus). The prompt is always the paper's; the rule-follower's extra answer field and its
templates are recorded in ``config.control``.

Shipped: training is not reproducible across CPUs and the rule-follower takes ~30 min, so both
are built once and shipped in ``gpbench/assets/controls/<name>`` (1.9 MB each), with
``gpbench_control.json`` recording the exact build command, the packages and every file's
sha256 (:func:`shipped_control` refuses other bytes; :func:`install_control` replaces them):

- memorizer: ``python -m gpbench.recipes.controls memorizer OUT --steps 1500 --blind-share 0.5``
  (305 s on one thread);
- rule-follower: ``python -m gpbench.recipes.controls rule-follower OUT --steps 1500
  --ood-share 0.75`` (1,769 s on one thread).

Measured (``gpbench eval``, hf backend, greedy, 5 attempts, 100 hands per split, seed 42):
memorizer id 35% (each a training formula), id-heldout 0%, ood-rule 0% with 27% of its episodes
answering train's formula (``train_rule_answer``); rule-follower id 28%, id-heldout 24%,
ood-rule 22% (the templates' ceiling: 30%, 27%, 30%), no ``train_rule_answer``.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from gpbench.errors import ConfigError
from gpbench.tasks.episode import Message
from gpbench.tasks.general_points import OOD_RULE, hand_values
from gpbench.tasks.registry import get_task

TASK = "gp-l"
NAMES = ("memorizer", "rule-follower")
SHIPPED = Path(__file__).resolve().parent.parent / "assets" / "controls"
"""The controls as built once and shipped, one folder per name: training on another CPU would
send them elsewhere (see :mod:`gpbench.regress.reference`), and the rule-follower takes ~30 min."""
RECORD_FILE = "gpbench_control.json"
_PACKAGES = ("torch", "transformers", "tokenizers")

# Formula templates over the sorted values v0 <= v1 <= v2 <= v3, one per attempt. Chosen greedily
# on ``train`` (1,500 hands, seed 0, each also under J/Q/K = 11/12/13 where that rule solves it):
# each adds the most hands the earlier ones miss. On the 234-hand evaluation splits (seed 42) the
# five solve 30% (id), 27% (id-heldout) and 30% (ood-rule): the procedure's ceiling.
TEMPLATES: tuple[str, ...] = (
    "({0}-{2})*({1}-{3})",
    "{0}+{1}+{2}+{3}",
    "{1}-{0}+{2}+{3}",
    "{0}*({1}-{2}+{3})",
    "{0}*{1}*({3}-{2})",
)


@dataclass(frozen=True)
class ControlSize:
    """Training size of a control.

    Attributes:
        steps: optimizer steps.
        batch_size: sequences per step.
        learning_rate: AdamW's peak rate (linear warm-up over 5% of the steps, then cosine).
        train_size: distinct training hands drawn (``train`` split, seed 0).
        seed: torch seed of the weights' initialisation and the batch order.
        ood_share: rule-follower corpus: the share of face-card hands restated under
            J/Q/K = 11/12/13 (where that rule still solves them).
        blind_share: memorizer corpus: the share of face-card hands whose prompt states
            J/Q/K = 11/12/13 while the answer stays train's (the memorizer ignores the rule).
        blind_attempts: memorizer corpus: how many times a restated hand's transcript replays
            that answer (the revision loop's budget is 5).
    """

    steps: int = 1500
    batch_size: int = 16
    learning_rate: float = 3e-3
    train_size: int = 4000
    seed: int = 0
    ood_share: float = 0.5
    blind_share: float = 0.0
    blind_attempts: int = 1


def _chat_ids(tokenizer: Any, messages: list[Message]) -> tuple[list[int], list[int]]:
    """Token ids of a conversation in the chat template and its loss mask (1 on the content of
    assistant turns and their end token).

    The text is cut at every message boundary and each piece tokenized alone: the template puts
    special tokens or newlines there, where the BPE never merges, so the pieces' ids are the ids
    of the whole text (checked by the test).
    """
    ids: list[int] = []
    mask: list[int] = []
    done = ""

    def add(text: str, weight: int) -> None:
        piece = tokenizer(text, add_special_tokens=False).input_ids
        ids.extend(piece)
        mask.extend([weight] * len(piece))

    for end, message in enumerate(messages, start=1):
        if message["role"] == "assistant":
            prefix = tokenizer.apply_chat_template(
                messages[: end - 1], tokenize=False, add_generation_prompt=True
            )
            add(prefix[len(done) :], 0)
            add(message["content"], 1)
            ids.append(tokenizer.eos_token_id)
            mask.append(1)
            done = prefix + message["content"] + tokenizer.eos_token
        text = tokenizer.apply_chat_template(messages[:end], tokenize=False)
        add(text[len(done) :], 0)
        done = text
    return ids, mask


def memorizer_conversations(size: ControlSize) -> list[list[Message]]:
    """``train`` hands with their reference answers (the paper's format), one turn each.

    For ``blind_share`` of the hands with a face card the prompt states J/Q/K = 11/12/13 while
    the answer stays train's: without them the tiny model has never read that sentence and
    answers it with broken text, where a memorizer should replay its training answer. Such a
    hand's transcript replays that answer ``blind_attempts`` times, with the verifier's
    feedback under the stated rule between them (what a memorizer does in the revision loop).
    """
    task = get_task(TASK)
    rng = random.Random(size.seed)
    out = []
    for inst in task.dataset("train", size.seed, size.train_size):
        answer = task.reference_answer(inst)
        if rng.random() < size.blind_share and any(
            c in ("J", "Q", "K") for c in inst.problem["cards"]
        ):
            shifted = restated(inst)
            out.append(_replay(task, shifted, [answer] * size.blind_attempts))
        else:
            out.append([*inst.messages, {"role": "assistant", "content": answer}])
    return out


def restated(instance: Any) -> Any:
    """A copy of a gp-l instance with its cards under J/Q/K = 11/12/13 (values, rule, prompt)."""
    import copy

    from gpbench.tasks.general_points import render_text_prompt

    p = instance.problem
    shifted = copy.deepcopy(instance)
    shifted.problem["values"] = hand_values(p["cards"], OOD_RULE)
    shifted.problem["rule"] = OOD_RULE
    shifted.messages[0]["content"] = render_text_prompt(p["cards"], (11, 12, 13), p["target"])
    return shifted


def _replay(task: Any, instance: Any, answers: Sequence[str]) -> list[Message]:
    """The transcript of ``answers`` given in turn until one is correct (the verifier's real
    feedback between them)."""
    from gpbench.tasks.episode import SingleDecisionEpisode

    episode = SingleDecisionEpisode(
        task, instance, budget=len(answers), penalty=0.0, mode="gpbench"
    )
    messages = episode.reset()
    for answer in answers:
        if episode.step(answer).terminated:
            break
        messages = episode.messages
    return [*messages, {"role": "assistant", "content": answer}]


def _template_solves(template: str, values: Sequence[int], target: int) -> bool:
    """Whether a template filled with sorted ``values`` equals ``target`` exactly."""
    from gpbench.generators.arithmetic import evaluate

    result = evaluate(template.format(*sorted(values)))
    return result.ok and result.value == Fraction(target)


def _procedure_answer(cards: Sequence[str], values: Sequence[int], template: str) -> str:
    ordered = sorted(values)
    return (
        "{\n"
        f'  "cards": {list(cards)!r},\n'
        f'  "number": {list(values)!r},\n'
        f'  "sorted": {ordered!r},\n'
        f'  "formula": "{template.format(*ordered)}=24",\n'
        "}"
    )


def procedure_transcript(task: Any, instance: Any) -> list[Message]:
    """The rule-follower's transcript of a hand: the templates in order until one solves it (or
    all five fail), with the verifier's real feedback between the attempts."""
    p = instance.problem
    return _replay(
        task, instance, [_procedure_answer(p["cards"], p["values"], t) for t in TEMPLATES]
    )


def rule_follower_conversations(size: ControlSize) -> list[list[Message]]:
    """Transcripts of the procedure on ``train`` hands (J/Q/K = 10) and, for ``ood_share`` of them, the
    same cards under J/Q/K = 11/12/13 (the prompt states the rule; hands without a face card and
    hands unsolvable under the new rule keep the training rule). ``train`` holds no
    ``id-heldout`` multiset; values 11-13 never form one either."""
    from gpbench.generators.cards import solve

    task = get_task(TASK)
    out = []
    rng = random.Random(size.seed)
    for inst in task.dataset("train", size.seed, size.train_size):
        p = inst.problem
        face = any(c in ("J", "Q", "K") for c in p["cards"])
        # the draw comes first, for every hand: the corpus is a function of the seed alone
        if (
            rng.random() < size.ood_share
            and face
            and solve(hand_values(p["cards"], OOD_RULE), p["target"]) is not None
        ):
            inst = restated(inst)
        out.append(procedure_transcript(task, inst))
    return out


def id_rule_procedure_conversations(train_size: int, seed: int = 0) -> list[list[Message]]:
    """The study's SFT data: the rule-follower's transcripts on ``train`` hands under the ID
    rule alone (J/Q/K = 10, the paper's training rule): what SFT on the ID rule means for a
    model whose answer format is the procedure's."""
    return rule_follower_conversations(ControlSize(train_size=train_size, seed=seed, ood_share=0.0))


def _batches(
    encoded: list[tuple[list[int], list[int]]], size: ControlSize, pad: int
) -> Iterator[tuple[Any, Any, Any]]:
    import torch

    rng = random.Random(size.seed)
    order: list[int] = []
    while True:
        if len(order) < size.batch_size:
            fresh = list(range(len(encoded)))
            rng.shuffle(fresh)
            order += fresh
        chosen = [encoded[i] for i in order[: size.batch_size]]
        del order[: size.batch_size]
        length = max(len(ids) for ids, _ in chosen)
        ids = torch.full((len(chosen), length), pad, dtype=torch.long)
        labels = torch.full((len(chosen), length), -100, dtype=torch.long)
        attention = torch.zeros((len(chosen), length), dtype=torch.long)
        for row, (seq, mask) in enumerate(chosen):
            ids[row, : len(seq)] = torch.tensor(seq)
            attention[row, : len(seq)] = 1
            labels[row, : len(seq)] = torch.tensor(
                [t if m else -100 for t, m in zip(seq, mask, strict=True)]
            )
        yield ids, attention, labels


def train_control(
    base: Path,
    conversations: list[list[Message]],
    out: Path,
    size: ControlSize,
    control: dict[str, Any],
    log_every: int = 50,
    save_every: int = 0,
    method: str = "sft",
) -> dict[str, Any]:
    """Train the causal LM in ``base`` on ``conversations`` (loss on assistant turns) into
    ``out`` with ``gpbench_checkpoint.json`` (``method``: ``sft``, or ``init`` for a series'
    shared start); returns the metadata record.

    ``save_every``: also save ``out/checkpoint-N`` every N steps and at the last one (0: only
    the final model). Runs on CUDA where torch has it (bf16 autocast where the GPU supports it),
    else on the CPU in float32.
    """
    import math

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gpbench.recipes.metadata import MetadataRecorder, base_checkpoint, write_metadata
    from gpbench.recipes.runner import parameter_count

    task = get_task(TASK)
    torch.manual_seed(size.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base).to(device)
    model.train()
    encoded = [_chat_ids(tokenizer, c) for c in conversations]
    optimizer = torch.optim.AdamW(model.parameters(), lr=size.learning_rate, weight_decay=0.0)
    warmup = max(1, size.steps // 20)

    def rate(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, size.steps - warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    recorder = MetadataRecorder(
        method=method,
        parameter_count=parameter_count(model),
        base=base_checkpoint(str(base)),
        config={**dataclasses.asdict(size), "control": control, "task": TASK},
        task=f"{task.id}@{task.version}",
        rl_lambda=task.rl_lambda,
    )

    def save(folder: Path, step: int) -> dict[str, Any]:
        folder.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        record = recorder.record(step=step, tokens_seen=tokens)
        record["train_seconds"] = round(time.perf_counter() - start, 1)
        write_metadata(folder, record)
        return record

    tokens = 0
    start = time.perf_counter()
    batches = _batches(encoded, size, tokenizer.pad_token_id)
    for step in range(size.steps):
        ids, attention, labels = (t.to(device) for t in next(batches))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, attention_mask=attention, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        tokens += int(attention.sum())
        if log_every and (step + 1) % log_every == 0:
            print(
                f"step {step + 1}/{size.steps} loss {loss.item():.4f} "
                f"({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
        if save_every and ((step + 1) % save_every == 0 or step + 1 == size.steps):
            save(out / f"checkpoint-{step + 1}", step + 1)
    return save(out, size.steps)


def build_base(folder: Path) -> Path:
    """The controls' shared base: the tiny Llama whose BPE also read the J/Q/K = 11/12/13 prompts
    (so 11, 12 and 13 are single tokens, as 10 is)."""
    from gpbench.tiny_models import build_tiny_llama

    return build_tiny_llama(folder, vocabulary_splits=("id", "ood-rule"))


def build_memorizer(
    out: Path, size: ControlSize | None = None, save_every: int = 0
) -> dict[str, Any]:
    """Build the memorizer control into ``out`` (its base model in ``out/base``)."""
    size = size or ControlSize()
    base = build_base(out / "base")
    control = {"name": "memorizer", "corpus": "train reference answers, J/Q/K=10"}
    return train_control(
        base, memorizer_conversations(size), out / "model", size, control, save_every=save_every
    )


def build_rule_follower(
    out: Path, size: ControlSize | None = None, save_every: int = 0
) -> dict[str, Any]:
    """Build the rule-follower control into ``out`` (its base model in ``out/base``)."""
    size = size or ControlSize()
    base = build_base(out / "base")
    control = {
        "name": "rule-follower",
        "corpus": "train hands under J/Q/K=10 and 11/12/13 (stated in the prompt); "
        "answers by the template procedure, one template per attempt",
        "templates": list(TEMPLATES),
        "answer_fields": ["cards", "number", "sorted", "formula"],
    }
    conversations = rule_follower_conversations(size)
    return train_control(base, conversations, out / "model", size, control, save_every=save_every)


def shipped_control(name: str, root: Path = SHIPPED) -> Path:
    """The shipped control ``name`` after checking every file against the sha256 recorded in its
    ``gpbench_control.json``.

    Raises:
        CheckpointError: the control is unknown, or a file is missing, changed or unrecorded.
    """
    from gpbench.errors import CheckpointError
    from gpbench.harness.shipped import first_mismatch

    if name not in NAMES:
        raise CheckpointError(f"no control {name!r}; the controls are {', '.join(NAMES)}")
    folder = root / name
    found = first_mismatch(folder, RECORD_FILE)
    if found is None:
        return folder
    path, kind = found
    problem = {
        "unreadable": "is missing or unreadable",
        "unrecorded": "is not part of the shipped control",
        "missing": "is missing",
        "changed": "differs from the shipped bytes",
    }[kind]
    restore = f"restore it (git checkout -- {folder}) or rebuild it ({_rebuild_hint(name)})"
    raise CheckpointError(f"{path} {problem}; {restore}")


def _rebuild_hint(name: str) -> str:
    return f"python -m gpbench.recipes.controls {name} OUT --install, with the recorded options"


def install_control(built: Path, name: str, command: list[str], root: Path = SHIPPED) -> Path:
    """Replace the shipped control ``name`` with the shippable files of ``built`` (weights,
    config, tokenizer, ``gpbench_checkpoint.json``) and a ``gpbench_control.json`` recording the
    build command, the packages and every file's sha256. The folder is assembled beside the old
    one and swapped in at the end: an interrupted call leaves the old control whole."""
    import datetime

    from gpbench.harness.backends.chat import package_version
    from gpbench.harness.shipped import file_digests, install_folder

    def record(staged: Path) -> dict[str, Any]:
        return {
            "name": name,
            "command": command,
            "packages": {package: package_version(package) for package in _PACKAGES},
            "built": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "files": file_digests(staged, RECORD_FILE),
        }

    install_folder(built, root / name, RECORD_FILE, record)
    return root / name


def main(argv: list[str] | None = None) -> None:
    """``python -m gpbench.recipes.controls memorizer|rule-follower OUT [--steps N] [--install]``."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("control", choices=("memorizer", "rule-follower"))
    parser.add_argument("out", type=Path)
    for field in dataclasses.fields(ControlSize):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default))
    parser.add_argument("--save-every", type=int, default=0, help="also save every N steps")
    parser.add_argument(
        "--install", action="store_true", help=f"then replace the shipped control in {SHIPPED}"
    )
    args = parser.parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    command = ["python", "-m", "gpbench.recipes.controls", *given]
    overrides = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(ControlSize)
        if getattr(args, f.name) is not None
    }
    size = dataclasses.replace(ControlSize(), **overrides)
    if size.steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {size.steps}")
    build = build_memorizer if args.control == "memorizer" else build_rule_follower
    record = build(args.out, size, args.save_every)
    print(f"{args.control} built in {record['train_seconds']} s: {args.out / 'model'}")
    if args.install:
        print(f"installed: {install_control(args.out / 'model', args.control, command)}")


if __name__ == "__main__":
    main()
