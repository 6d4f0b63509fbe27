# VAE homework toolkit. `make` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUILT := dist/.built
SUBMISSIONS ?=
OUT ?= dist/grades
JOBS ?=
SOURCES := assignment/vae_hw.ipynb assignment/data/digits.npz autograder/requirements.txt $(wildcard src/vaehw/*.py) $(wildcard solutions/*)

.DEFAULT_GOAL := help
.PHONY: help install assign grade test calibrate clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: SUBMISSIONS=<dir> OUT=<dir> (make grade), JOBS=<n>"

install: $(STAMP) ## create .venv from the pinned requirements.txt
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

assign: $(BUILT) ## build dist/: student notebook, autograder zip, solutions (otter assign runs every test)
$(BUILT): $(STAMP) $(SOURCES)
	$(BIN)/python -m vaehw assign
	$(BIN)/python -m vaehw known > /dev/null
	@touch $@

grade: $(BUILT) ## grade SUBMISSIONS=<dir> into OUT=<dir> (default: the known submissions in solutions/)
	$(BIN)/python -m vaehw grade $(if $(SUBMISSIONS),"$(SUBMISSIONS)",dist/known) -o "$(OUT)" $(if $(JOBS),--jobs $(JOBS)) $(if $(SUBMISSIONS),,--force)

test: $(BUILT) ## run the test suite (builds first)
	$(BIN)/python -m pytest

calibrate: $(BUILT) ## held-out NELBO of the reference in the hidden training tests over 20 seeds
	$(BIN)/python -m vaehw calibrate --runs 20

clean: ## remove dist/ (keeps .venv)
	rm -rf dist
