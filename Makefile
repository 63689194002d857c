# Two commands do everything on a fresh machine (see README.md):
#   make run    install into .venv (once) and run the quickstart study + its report
#   make test   install into .venv (once) and run the test suite
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export OMP_NUM_THREADS := 1

.PHONY: install run test bench clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/rl-hyper sweep tune_configs/quickstart.yaml $(if $(wildcard results/quickstart/experiment_state*.json),--resume)
	$(BIN)/rl-hyper report results/quickstart

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf $(VENV) results
