# Two commands on a fresh machine:
#   make lab   - set up .venv if missing, then open JupyterLab on notebooks/
#   make test  - set up .venv if missing, then run the unit tests and every notebook (fast mode)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Containers often run as root, which Jupyter refuses unless told; token authentication stays on either way.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
# Fast mode for tests: notebooks shrink their work (see README, "Fast mode").
FAST   := DIFFUSION_COURSE_FAST=1
# Keep diffusers/transformers offline and quiet: nothing here may touch the network.
QUIET  := HF_HUB_OFFLINE=1 DIFFUSERS_VERBOSITY=error TRANSFORMERS_VERBOSITY=error

.PHONY: lab test unit notebooks env benchmarks clean

env: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install --no-deps -e .
	touch $(STAMP)

lab: $(STAMP)
	$(QUIET) $(BIN)/jupyter lab --ip=127.0.0.1 --ServerApp.root_dir=notebooks $(ROOT_FLAG)

test: unit notebooks

unit: $(STAMP)
	$(QUIET) $(FAST) $(BIN)/python -m pytest -q tests

notebooks: $(STAMP)
	$(QUIET) $(FAST) $(BIN)/python -m pytest -q --nbval-lax --nbval-current-env \
		-p no:randomly --durations=0 notebooks

benchmarks: $(STAMP)
	$(QUIET) $(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV)
