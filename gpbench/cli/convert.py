"""``gpbench convert``: a sharded training checkpoint or a PEFT adapter -> a Hugging Face folder."""

from __future__ import annotations

from pathlib import Path

import click

from gpbench.cli.options import meta_option, parse_meta


@click.command("convert")
@click.argument("source", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    help="The folder to write. Default: the cache, ~/.cache/gpbench/converted/<hash> "
    "($GPBENCH_CACHE_DIR), where `gpbench eval --model SOURCE` finds it.",
)
@click.option(
    "--config-from",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A folder with the model's config.json and tokenizer, when SOURCE has none.",
)
@meta_option("Metadata to record (method, step, ...) when the trainer did not.")
@click.option("--overwrite", is_flag=True, help="Replace the output folder's contents.")
@click.option(
    "--trust-pickles",
    is_flag=True,
    help="Unpickle the shard files fully (they are Python pickles; a hostile one runs code). "
    "Without it, verl's rank files load as plain tensors and DTensors only and a file holding "
    "anything else is refused. DeepSpeed ZeRO checkpoints always need it (DeepSpeed's loader "
    "unpickles fully). Only for checkpoints you trust.",
)
def convert(
    source: Path,
    out: Path | None,
    config_from: Path | None,
    meta_pairs: tuple[str, ...],
    overwrite: bool,
    trust_pickles: bool,
) -> None:
    """Convert a sharded checkpoint into a Hugging Face folder, once.

    SOURCE is verl's global_step_N/ (FSDP rank files model_world_size_W_rank_R.pt in its
    actor/), a DeepSpeed ZeRO folder (global_stepN/ with *_model_states.pt; needs `pip install
    deepspeed`), or a PEFT adapter folder (merged into its base). The step, method and source
    go to gpbench_checkpoint.json beside the weights. The converted folder is loaded back
    strictly before it is kept. `gpbench eval` never converts by itself; after this it evaluates
    SOURCE through the cached conversion.

    \b
    Examples:
      gpbench convert ckpts/grpo/global_step_200
      gpbench convert ckpts/grpo/global_step_200 -o converted/grpo-200
      gpbench convert ds-run/global_step500 --config-from Qwen2.5-1.5B-Instruct/ --trust-pickles
    """
    from gpbench.harness.convert import convert as run_convert
    from gpbench.harness.folders import default_destination

    meta = parse_meta(meta_pairs)
    result = run_convert(
        source,
        out,
        config_from=config_from,
        meta=meta,
        overwrite=overwrite,
        trust_pickles=trust_pickles,
    )
    step = f", step {result.step}" if result.step is not None else ""
    if result.reused:
        click.echo(f"already converted ({result.kind}{step}): {result.folder}")
    else:
        click.echo(f"converted {result.kind} checkpoint {source}{step} -> {result.folder}")
    cached = result.folder == default_destination(result.source_fingerprint)
    if cached and result.kind != "peft-adapter":
        click.echo(f"evaluate it with: gpbench eval --model {source} (this conversion is used)")
    else:
        click.echo(f"evaluate it with: gpbench eval --model {result.folder}")
