# Shared by setup_vllm_cpu.sh and setup_verl.sh (sourced, not run): the steps every side venv
# takes before its own installs.
#
# The sourcing script sets: name (the log prefix), venv, python, stamp, and the script's own path
# in script. Then `venv_prepare` exits 0 when the stamp matches the inputs (the script, this file,
# pyproject.toml), else creates the venv if needed and defines: py (the venv's python), setup_log,
# wanted (the stamp to write once the installs succeeded) and pip (pip, quiet, its log's end
# printed when it fails).

log() { printf '[%s] %s\n' "$name" "$*"; }

venv_prepare() {
  wanted="$(cat "$script" "${BASH_SOURCE[0]}" "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" && -x "$venv/bin/python" ]]; then
    log "up to date: $venv"
    exit 0
  fi
  if [[ ! -x "$venv/bin/python" ]]; then
    log "creating $venv"
    "$python" -m venv "$venv"
  fi
  py="$venv/bin/python"
  setup_log="$venv/setup.log"
  : >"$setup_log"
}

pip() {
  if ! "$py" -m pip --disable-pip-version-check "$@" >>"$setup_log" 2>&1; then
    log "failed: pip $*; the end of $setup_log:"
    tail -n 40 "$setup_log" >&2
    exit 1
  fi
}
