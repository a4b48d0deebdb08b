# Every target works on a fresh clone: `make install` creates .venv once and re-installs only when
# pyproject.toml or this file changes.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the CPU build of torch that this machine keeps on disk; any other request downloads CUDA builds
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[train,bench,dev,hf,ray]"
	touch $(STAMP)

demo: install
	$(BIN)/python -m pipelines.demo

test: install
	$(BIN)/python -m pytest -q tests

bench: install
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf out .pytest_cache
