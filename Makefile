# trt-recovery: every result is rebuilt from data/ and analysis/ by this file.
# `make help` lists the targets. Outputs go to analysis/results/ (ignored by git).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules
# Independent targets (fits, reports, notebooks) run side by side, one job per core: the single-
# threaded phases of one fit (graph compilation, log-likelihood, prior draws, saving) and the
# reports then run while another fit samples. `make JOBS=1 ...` runs one target at a time.
# Never with `clean` among the goals (it would remove what the other jobs are writing).
# (A make started by this one shares its jobs; it does not add its own.)
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
ifeq ($(MAKELEVEL)$(filter clean,$(MAKECMDGOALS)),0)
MAKEFLAGS += -j$(JOBS)
endif
# a recipe that fails never leaves its (partial) target behind
.DELETE_ON_ERROR:

VENV      := .venv
BIN       := $(VENV)/bin
PY        := $(BIN)/python
CLI       := $(BIN)/trt-recovery
STAMP     := $(VENV)/.installed
KERNEL    := trt-recovery
RESULTS   := analysis/results

# A Python >= 3.12 (pymc 6 needs it). `make PYTHON=/path/to/python3.12 ...` overrides the search.
PYTHON ?= $(shell for p in python3.12 python3.13 \
	$$HOME/.pyenv/versions/3.12*/bin/python3 $$HOME/.pyenv/versions/3.13*/bin/python3 python3; do \
	  if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not ((3,12) <= sys.version_info[:2] < (3,15)))' 2>/dev/null; then \
	    command -v $$p; break; fi; done)

DATA      := data/schema.yaml data/studies.csv data/arms.csv data/outcomes.csv
SCREENING := $(wildcard data/screening.csv)
# Code that changes what a fit computes. Plotting and reporting code is not here, so editing a
# figure never triggers a refit. Each fit depends on its own stamp (rows it uses, its model's code
# identity, its resolved config: trt-recovery stamps), so an edit of one model's code refits only
# the analyses of that model; FIT_SRC (sampling, saving, config parsing) concerns every fit.
MODEL_SRC := $(wildcard src/trt_recovery/models/*.py) src/trt_recovery/fitting.py src/trt_recovery/posterior.py \
             src/trt_recovery/survival/families.py src/trt_recovery/survival/likelihood.py \
             src/trt_recovery/survival/km.py src/trt_recovery/survival/design.py \
             src/trt_recovery/harmonise.py src/trt_recovery/validate.py src/trt_recovery/schema.py \
             src/trt_recovery/config.py src/trt_recovery/stamps.py
FIT_SRC   := src/trt_recovery/fitting.py src/trt_recovery/config.py
ANALYSES  := $(basename $(notdir $(wildcard analysis/*.yaml)))
# Sensitivity and model-check variants (configs with `extends:`): a failed fit is reported as
# failed without stopping the build; their make target is a status file written either way.
SENSITIVITY := $(basename $(notdir $(shell grep -l '^extends:' analysis/*.yaml)))
MAIN_ANALYSES := $(filter-out $(SENSITIVITY),$(ANALYSES))
POSTERIORS := $(addprefix $(RESULTS)/posteriors/,$(addsuffix .nc,$(MAIN_ANALYSES))) \
              $(addprefix $(RESULTS)/posteriors/,$(addsuffix .status.json,$(SENSITIVITY)))
STAMPS    := $(RESULTS)/stamps
NOTEBOOKS := $(wildcard notebooks/[0-9]*.py)
EXECUTED  := $(patsubst notebooks/%.py,$(RESULTS)/notebooks/%.ipynb,$(NOTEBOOKS))
HARMONISED := $(RESULTS)/data/harmonised_outcomes.csv


.PHONY: help all env validate data prisma certainty site posterior-check dictionary fit posteriors figures notebooks test test-fast test-slow bench recovery verify review loso sbc lab clean outputs priors

help: ## Show this help
	@echo "trt-recovery: make targets"
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'
	@echo "Set PYTHON=/path/to/python3.12 to choose the interpreter used to build $(VENV)."

# `all` and `fit` check the posteriors' checksums first, then build in a second make: that one looks
# at the posteriors only after a damaged one has been moved aside (a make that runs jobs side by side
# reads every file's time when it first meets it, and would take the damaged file as up to date).
# `all` validates the data before anything is built and lists the outputs once everything is.
all: validate posterior-check ## Create the environment if missing and reproduce every result
	@$(MAKE) --no-print-directory data prisma posteriors figures certainty notebooks site
	@$(MAKE) --no-print-directory outputs

env: $(STAMP) ## Create .venv with a Python >= 3.12 and install the package

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "error: no Python >= 3.12 found; install one or run make PYTHON=/path/to/python3.12" >&2; exit 1; fi
	@echo "==> building $(VENV) with $(PYTHON) ($$($(PYTHON) --version))"
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (trt-recovery)" >/dev/null
	@touch $@

validate: $(STAMP) ## Validate data/ against data/schema.yaml (all problems, with file/row/column)
	$(CLI) validate

dictionary: $(STAMP) ## Regenerate data/DICTIONARY.md from data/schema.yaml
	$(CLI) dictionary --write

data: $(HARMONISED) ## Build the harmonised outcome table, exclusion report and evidence map

$(HARMONISED): $(DATA) src/trt_recovery/harmonise.py src/trt_recovery/evidence.py $(MODEL_SRC) $(wildcard analysis/*.yaml) $(STAMP)
	$(CLI) harmonise

prisma: $(RESULTS)/figures/prisma_flow.png ## PRISMA 2020 flow (figure and table) from data/screening.csv

$(RESULTS)/figures/prisma_flow.png: $(DATA) $(SCREENING) $(wildcard analysis/*.yaml) src/trt_recovery/prisma.py $(MODEL_SRC) $(STAMP)
	$(CLI) prisma

certainty: $(RESULTS)/tables/summary_of_findings.csv ## Summary-of-findings table with GRADE-style certainty (from the main fits)

$(RESULTS)/tables/summary_of_findings.csv: $(addprefix $(RESULTS)/posteriors/,survival.nc success_rate.nc preservation.nc pregnancy.nc concentration.nc) \
		analysis/certainty/rules.yaml src/trt_recovery/certainty.py src/trt_recovery/power_scaling.py
	$(CLI) certainty

fit: posterior-check ## Fit every analysis in analysis/*.yaml (skipped when up to date)
	@$(MAKE) --no-print-directory posteriors

posteriors: $(POSTERIORS)

# A truncated or bit-flipped posterior is moved aside (it fails its checksum) so the rule below refits it.
posterior-check: $(STAMP)
	@$(CLI) check-posteriors

# Each fit depends on its stamp (rows its model uses, its model's code identity and its resolved
# config; rewritten only when it changes), not on the raw tables nor on every model's code: a data
# edit refits only the analyses whose selected rows changed, a code edit only that model's analyses.
$(STAMPS)/.refreshed: $(DATA) $(MODEL_SRC) $(wildcard analysis/*.yaml) | $(STAMP)
	$(CLI) stamps
	@touch $@

$(STAMPS)/%.inputs: $(STAMPS)/.refreshed ;
.SECONDARY: $(addprefix $(STAMPS)/,$(addsuffix .inputs,$(ANALYSES)))

# The environment is an order-only prerequisite: reinstalling it (a new dev dependency in
# pyproject.toml, say) does not refit anything; each posterior records its package versions, and
# `make verify` names a version change as the cause of a mismatch.
$(RESULTS)/posteriors/%.nc: analysis/%.yaml $(STAMPS)/%.inputs $(FIT_SRC) | $(STAMP)
	$(CLI) fit $*

$(RESULTS)/posteriors/%.status.json: analysis/%.yaml $(STAMPS)/%.inputs $(FIT_SRC) | $(STAMP)
	$(CLI) fit $* --allow-failure --status-file $@

# Reports are rebuilt when their fit or the code changes (a stamp per analysis), never refit.
REPORT_SRC := $(wildcard src/trt_recovery/*.py src/trt_recovery/survival/*.py src/trt_recovery/models/*.py)
MAIN_REPORTS := $(addprefix $(RESULTS)/reports/,$(addsuffix .done,$(MAIN_ANALYSES)))
SENS_REPORTS := $(addprefix $(RESULTS)/reports/,$(addsuffix .done,$(SENSITIVITY)))

figures: $(MAIN_REPORTS) $(SENS_REPORTS) ## Rebuild figures and tables from cached posteriors when they or the code changed (never refits)

$(MAIN_REPORTS): $(RESULTS)/reports/%.done: $(RESULTS)/posteriors/%.nc $(REPORT_SRC) $(STAMP)
	$(CLI) report $*
	@mkdir -p $(@D) && touch $@

$(SENS_REPORTS): $(RESULTS)/reports/%.done: $(RESULTS)/posteriors/%.status.json $(REPORT_SRC) $(STAMP)
	$(CLI) report $*
	@mkdir -p $(@D) && touch $@

SITE := $(RESULTS)/site/index.html
CALCULATOR := $(RESULTS)/calculator/survival.npz

site: $(SITE) ## Self-contained HTML page: recovery calculator, summary of findings, forest plots, curves (opens from file://)

# the calculator bundle: the survival fit's predictors split into components through its graph
# (also what lets `trt-recovery predict` answer in under a second)
$(CALCULATOR): $(RESULTS)/posteriors/survival.nc src/trt_recovery/survival/calculator.py src/trt_recovery/survival/predict.py \
		src/trt_recovery/power_scaling.py $(STAMP)
	$(CLI) calculator survival

$(SITE): $(CALCULATOR) $(RESULTS)/tables/summary_of_findings.csv $(RESULTS)/figures/prisma_flow.png $(MAIN_REPORTS) \
		src/trt_recovery/site.py $(wildcard src/trt_recovery/site_assets/*) $(STAMP)
	$(CLI) site

notebooks: $(EXECUTED) ## Execute every notebook headless into analysis/results/notebooks

$(RESULTS)/notebooks/%.ipynb: notebooks/%.py $(POSTERIORS) $(HARMONISED) $(DATA) $(STAMP)
	$(CLI) notebook $<

# Dask: a local cluster (one worker per core) unless DASK_SCHEDULER names a scheduler address.
DASK_SCHEDULER ?=
DASK_FLAGS := $(if $(DASK_SCHEDULER),--scheduler $(DASK_SCHEDULER),)
SBC_REPLICATIONS ?= 200
# SBC_RESUME=1: fit only the replications the saved ranks lack (same model, config and seed) and merge.
SBC_RESUME ?=

loso: $(POSTERIORS) ## Leave-one-study-out influence (importance sampling where Pareto k allows, Dask refits elsewhere; tables)
	$(CLI) loso success_rate preservation pregnancy survival concentration $(DASK_FLAGS)

sbc: $(STAMP) ## Simulation-based calibration of the survival model at the real data's shape, through Dask (SBC_REPLICATIONS=200; about 3 hours on 2 cores; SBC_RESUME=1 continues a run)
	$(PY) -m trt_recovery.survival.sbc --replications $(SBC_REPLICATIONS) $(if $(SBC_RESUME),--resume,) $(DASK_FLAGS)

review: validate $(POSTERIORS) ## Living review: validate, refit what changed, show what moved since the references, the rows and the study behind it (appends to analysis/CHANGELOG.md)
	$(CLI) diff --changelog --attribute $(DASK_FLAGS)

verify: $(POSTERIORS) $(HARMONISED) ## Refit if needed; compare every headline number and the derived data with analysis/reference (provenance header, cause of each mismatch)
	$(CLI) verify

priors: $(STAMP) ## List every model's prior parameters, defaults and meanings
	$(CLI) priors

outputs: $(STAMP) ## List where every output is
	$(CLI) outputs

# pytest-xdist: one worker per core; --dist worksteal lets an idle worker take tests queued on the
# other. The costly session fixtures (mocked fits, calculator bundle, the tiny real fit) are built
# once per run and shared through files (tests/helpers.py, shared_across_workers), so tests need
# not stay with the worker that built them. Measured on 2 cores: pytest 215 s with loadfile,
# 167 s with worksteal (same code, same machine, nothing else running).
XDIST := -n auto --dist worksteal

test: $(STAMP) ## Default tier (no NUTS) plus the small sampling tier: what CI runs (parallel over the cores)
	$(BIN)/pytest -m "not slow" -q $(XDIST) --durations=10

test-fast: $(STAMP) ## Default tier only (mocked samplers and hand-built posteriors; no NUTS)
	$(BIN)/pytest -m "not slow and not sampling" -q $(XDIST)

test-slow: $(STAMP) ## Slow tier: MCMC parameter recovery and notebook runs
	$(BIN)/pytest -m slow -q

BENCH_SEEDS ?= 3

bench: $(STAMP) $(CALCULATOR) ## predict timed (graph vs calculator bundle); sampler backends on the real data, BENCH_SEEDS seeds each (step size, leapfrog steps per draw, ESS/s, checks); survival on the rows of 6360c78
	$(PY) -m trt_recovery.bench --predict
	$(PY) -m trt_recovery.bench --seeds $(BENCH_SEEDS)
	$(PY) -m trt_recovery.bench survival --backends nutpie:diag --seeds $(BENCH_SEEDS) --outcomes analysis/reference/survival_outcomes_6360c78.txt

recovery: $(STAMP) ## Survival-model parameter recovery over 20 seeds (about 45 minutes on 2 cores)
	$(PY) -m trt_recovery.survival.recovery_study --seeds 20

lab: $(STAMP) ## Jupyter Lab with the project's kernel (notebooks open from their .py text form)
	$(BIN)/jupyter lab --notebook-dir=notebooks

clean: ## Remove generated outputs (keeps .venv)
	rm -rf $(RESULTS) .pytest_cache
