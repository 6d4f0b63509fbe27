# VAE homework toolkit. `make` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUILT := dist/.built
SUBMISSIONS ?=
OUT ?= dist/grades
SHARD ?=
SHARDS ?=
JOBS ?=
N ?= 40
SOURCES := assignment/vae_hw.ipynb assignment/data/digits.npz assignment/data/heldout.npz $(wildcard assignment/student/*) $(wildcard autograder/*) $(wildcard src/hwkit/*.py src/hwkit/*/*.py src/hwkit/*/*.json) $(wildcard solutions/*)

.DEFAULT_GOAL := help
.PHONY: help install assign grade merge gradescope-check test check bench calibrate pictures clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: SUBMISSIONS=<dir> OUT=<dir> SHARD=<k/n> (make grade), SHARDS=\"<dir> ...\" (make merge), SUBMISSION=<file> (make gradescope-check), N=<n> (make bench), JOBS=<n>"

install: $(STAMP) ## create .venv from the pinned requirements.txt
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

assign: $(BUILT) ## build dist/: student notebook, autograder zip, solutions (otter assign runs every test); first `hwkit lists`
$(BUILT): $(STAMP) $(SOURCES)
	$(BIN)/python -m hwkit lists
	$(BIN)/python -m hwkit assign
	$(BIN)/python -m hwkit known > /dev/null
	@touch $@

grade: $(BUILT) ## grade SUBMISSIONS=<dir> into OUT=<dir> (default: the known submissions in solutions/); SHARD=k/n: only shard k of n
	$(BIN)/python -m hwkit grade $(if $(SUBMISSIONS),"$(SUBMISSIONS)",dist/known) -o "$(OUT)" $(if $(JOBS),--jobs $(JOBS)) $(if $(SUBMISSIONS),,--force) $(if $(SHARD),--shard "$(SHARD)")

merge: $(BUILT) ## join the folders of every `make grade SHARD=k/n` (SHARDS="<dir> ...") into OUT=<dir>
	@test -n "$(SHARDS)" || { echo 'usage: make merge SHARDS="<shard folder> ..." OUT=<dir> [SUBMISSIONS=<dir>]' >&2; exit 2; }
	$(BIN)/python -m hwkit merge -o "$(OUT)" $(SHARDS) $(if $(SUBMISSIONS),--submissions "$(SUBMISSIONS)")

gradescope-check: $(BUILT) ## run the autograder zip on SUBMISSION=<file> as Gradescope would, into OUT=<dir>
	@test -n "$(SUBMISSION)" || { echo "usage: make gradescope-check SUBMISSION=<notebook or zip> OUT=<dir>" >&2; exit 2; }
	$(BIN)/python -m hwkit gradescope-check "$(SUBMISSION)" -o "$(if $(filter dist/grades,$(OUT)),dist/gradescope-check,$(OUT))"

test: $(BUILT) ## run the test suite (builds first)
	$(BIN)/python -m pytest

check: $(BUILT) ## the fast loop (builds first): unit tests, the test contract and a smoke grade of full credit and blank
	$(BIN)/python -m pytest -q -m "not slow and not image"

bench: $(BUILT) ## grade N (default 40) generated submissions with a serial `otter run` loop and with the grader; compare
	$(BIN)/python -m hwkit bench --n $(N) $(if $(JOBS),--jobs $(JOBS))

calibrate: $(BUILT) ## held-out reconstruction error of the reference in the hidden training test over 20 seeds
	$(BIN)/python -m hwkit calibrate --runs 20

pictures: ## redraw docs/ from make grade's output (needs pdftoppm and chromium)
	test -f "$(OUT)/written/q3a.html" || $(MAKE) grade
	pdftoppm -png -r 70 -f 4 -l 4 -singlefile "$(OUT)/written/pdf/full-credit.ipynb.pdf" docs/written-pdf-page
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,900 \
		--screenshot=docs/written-ta-page.png "file://$(abspath $(OUT))/written/q3a.html" 2>/dev/null

clean: ## remove dist/ (keeps .venv)
	rm -rf dist
