#!/usr/bin/env bash
# Make <repo>/.venv-verl: verl 0.9.1 on the CPU build of torch with gpbench installed editable
# beside it, for the verl tests (tests/integrations/test_verl*.py): verl's RLHFDataset reading a
# `gpbench generate --format verl` export, and gpbench's agent loop and interaction in verl's process.
#
#   bash scripts/setup_verl.sh
#   .venv-verl/bin/pytest tests/integrations/test_verl.py tests/integrations/test_verl_interaction.py \
#     tests/integrations/test_verl_agent_loop.py
#
# Why its own venv: verl 0.9.1 pins transformers>=5.5.3,<5.11 (and not 5.6.0), older than the
# main venv's (>= 5.16). The order matters:
#   1. torch==2.13.0 first, the CPU wheel: any other route lets pip resolve a multi-GB CUDA build;
#   2. verl==0.9.1 (no extras: its extras pin CUDA builds, vLLM or SGLang) under constraints that
#      hold torch at that wheel and transformers below 5.11;
#   3. gpbench editable with --no-deps (its hf extra wants transformers >= 5.16, which verl
#      refuses) and only what the verl tests use from it: click, pillow, pyarrow, datasets, pytest;
#      plus cachetools, fastapi and uvicorn, which verl's agent loop imports (verl lists them
#      only in its verl-core extra, whose other pins are GPU builds).
#      gpbench.integrations.verl needs neither torch nor transformers.
#
# Idempotent: a stamp file records the inputs (this script, venv_lib.sh, pyproject.toml); when they are
# unchanged the script only prints one line. The install time is printed at the end. Quiet:
# pip's output goes to <venv>/setup.log, and its end is printed only when a step fails.
#
# Environment:
#   PYTHON     interpreter used to create the venv (default: python3; verl 0.9.1 needs 3.10-3.12)
#   VERL_VENV  where the venv goes (default: <repo>/.venv-verl)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="${VERL_VENV:-$root/.venv-verl}"
python="${PYTHON:-python3}"
verl_spec="verl==0.9.1"
torch_spec="torch==2.13.0"
stamp="$venv/.gpbench-verl-installed"
started=$SECONDS

name="setup_verl"
script="$here/setup_verl.sh"
# shellcheck source=venv_lib.sh
source "$here/venv_lib.sh"
venv_prepare

constraints="$venv/gpbench-constraints.txt"
cat >"$constraints" <<'CONSTRAINTS'
torch==2.13.0+cpu
transformers>=5.5.3,<5.11,!=5.6.0
CONSTRAINTS

log "installing $torch_spec (CPU wheel) first"
pip install --upgrade pip
# Under the constraints: where no CPU build is at hand pip fails rather than fetch a CUDA build.
pip install -c "$constraints" "$torch_spec"
log "installing $verl_spec (several minutes: ray, wandb, tensorboard come with it)"
pip install -c "$constraints" "$verl_spec"
log "installing gpbench editable from $root (--no-deps) and what its verl tests use"
pip install --no-deps -e "$root"
pip install -c "$constraints" "click>=8.1" "pillow>=10" "pyarrow>=19" "datasets>=2.19" "pytest>=8" \
  cachetools fastapi uvicorn

# Check from outside the checkout (-I) that verl's dataset class imports beside gpbench.
if ! "$py" -I - 2>>"$setup_log" <<'CHECK'; then
import sys
from importlib.metadata import version

import torch
from verl.experimental.agent_loop.agent_loop import AgentLoopBase
from verl.utils.dataset.rl_dataset import RLHFDataset  # noqa: F401

import gpbench.integrations.verl  # noqa: F401
from gpbench.integrations.verl_agent_loop import GpbenchAgentLoop

if not issubclass(GpbenchAgentLoop, AgentLoopBase):
    sys.exit("gpbench's agent loop did not pick up verl's AgentLoopBase")

if torch.version.cuda is not None:
    sys.exit(f"torch {torch.__version__} is a CUDA build: remove {sys.prefix} and run again")
print(
    f"[setup_verl] ok: verl {version('verl')}, torch {torch.__version__}, "
    f"transformers {version('transformers')}, gpbench {version('gpbench')}"
)
CHECK
  log "failed: verl does not import in $venv; the end of $setup_log:"
  tail -n 20 "$setup_log" >&2
  exit 1
fi
printf '%s\n' "$wanted" >"$stamp"
log "installed in $((SECONDS - started)) s"
