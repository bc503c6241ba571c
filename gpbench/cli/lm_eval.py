"""``gpbench lm-eval-path`` and ``gpbench lm-eval-export``: gpbench's tasks for lm-eval."""

from __future__ import annotations

from pathlib import Path

import click

from gpbench.errors import ConfigError
from gpbench.lm_eval_bridge import configs, include_path


@click.command("lm-eval-path")
def lm_eval_path() -> None:
    """Print the folder of gpbench's lm-eval task YAMLs (for lm_eval --include_path).

    \b
    Example:
      lm_eval --model hf --model_args pretrained=ckpt/ --apply_chat_template \\
        --include_path "$(gpbench lm-eval-path)" --tasks gpbench_gp_l_ood_rule \\
        --log_samples --output_path out/
    """
    folder = include_path()
    if not (folder / f"{configs.HOOKS_MODULE}.py").is_file():
        raise ConfigError(
            f"{folder} holds no lm-eval YAMLs (an install without package data?); "
            "write them with `gpbench lm-eval-export DIR` and pass DIR to --include_path"
        )
    click.echo(str(folder))


@click.command("lm-eval-export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--max-gen-toks",
    type=click.IntRange(min=1),
    default=configs.DEFAULT_MAX_GEN_TOKS,
    show_default=True,
    help="New tokens per answer written into every task (the paper: 256).",
)
def lm_eval_export(directory: Path, max_gen_toks: int) -> None:
    """Write lm-eval task and group YAMLs for every gpbench task x split to DIRECTORY.

    One task per split (gpbench_gp_l_ood_rule, ...), a group per task over its evaluation
    splits (gpbench_gp_l, ...), gpbench (the text tasks) and gpbench_vision (the image tasks,
    for --model hf-multimodal). Seeds and sizes are the paper's, as `gpbench generate` uses
    them; lm-eval's --metadata overrides them for a run, e.g. --metadata '{"gpbench_n": 50}'.
    Items are single-turn (lm-eval has no multi-turn loop). Files this command wrote before
    and no longer writes are removed; other files are left alone.

    \b
    Example:
      gpbench lm-eval-export my_tasks/ --max-gen-toks 1024
      lm_eval --model hf --model_args pretrained=ckpt/ --apply_chat_template \\
        --include_path my_tasks/ --tasks gpbench
    """
    written = configs.export(directory, max_gen_toks=max_gen_toks)
    yamls = sum(1 for path in written if path.suffix == ".yaml")
    click.echo(f"wrote {yamls} lm-eval YAMLs and {configs.HOOKS_MODULE}.py to {directory}")
