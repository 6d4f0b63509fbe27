# Homework toolkit. `make` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The homework: its master notebook, in <homework folder>/assignment/, and where its build goes.
ASSIGNMENT ?= assignment/vae_hw.ipynb
DIST ?= dist
HW := $(patsubst %/,%,$(dir $(patsubst %/,%,$(dir $(ASSIGNMENT)))))
NAME := $(basename $(notdir $(ASSIGNMENT)))
ZIP := $(DIST)/$(NAME)-autograder.zip
BUILT := $(DIST)/.built-$(NAME)
SUBMISSIONS ?=
OUT ?= $(DIST)/grades
SHARD ?=
SHARDS ?=
JOBS ?=
N ?= 40
# make test's workers (pytest-xdist): its slow tests mostly wait (kernels, forks, time budgets), so more than the cores.
TEST_JOBS ?= 3
SOURCES := $(wildcard $(ASSIGNMENT) $(HW)/assignment/data/* $(HW)/assignment/student/* autograder/* $(HW)/autograder/*) \
	$(wildcard src/hwkit/*.py src/hwkit/*/*.py src/hwkit/*/*.json) $(wildcard $(HW)/solutions/*)

.DEFAULT_GOAL := help
.PHONY: help install assign grade merge gradescope-check test check bench calibrate pictures clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: SUBMISSIONS=<dir> OUT=<dir> SHARD=<k/n> (make grade), SHARDS=\"<dir> ...\" (make merge), SUBMISSION=<file> (make gradescope-check), N=<n> (make bench), JOBS=<n>, TEST_JOBS=<n> (make test's workers)"
	@echo "  the homework: ASSIGNMENT=<folder>/assignment/<name>.ipynb (default assignment/vae_hw.ipynb), DIST=<dir> (default dist)"

install: $(STAMP) ## create .venv from the pinned requirements.txt
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

assign: $(BUILT) ## build DIST (dist/): student notebook, autograder zip, solutions (otter assign runs every test); first `hwkit lists`
$(BUILT): $(STAMP) $(SOURCES)
	@rm -f $(DIST)/.built-*
	$(BIN)/python -m hwkit lists --master "$(ASSIGNMENT)"
	$(BIN)/python -m hwkit assign --master "$(ASSIGNMENT)" --dist "$(DIST)"
	$(BIN)/python -m hwkit known --spec "$(HW)/solutions/known_submissions.yaml" --dist "$(DIST)" > /dev/null
	@touch $@

grade: $(BUILT) ## grade SUBMISSIONS=<dir> into OUT=<dir> (default: the known submissions in solutions/); SHARD=k/n: only shard k of n
	$(BIN)/python -m hwkit grade $(if $(SUBMISSIONS),"$(SUBMISSIONS)","$(DIST)/known") -o "$(OUT)" --autograder "$(ZIP)" $(if $(JOBS),--jobs $(JOBS)) $(if $(SUBMISSIONS),,--force) $(if $(SHARD),--shard "$(SHARD)")

merge: $(BUILT) ## join the folders of every `make grade SHARD=k/n` (SHARDS="<dir> ...") into OUT=<dir>
	@test -n "$(SHARDS)" || { echo 'usage: make merge SHARDS="<shard folder> ..." OUT=<dir> [SUBMISSIONS=<dir>]' >&2; exit 2; }
	$(BIN)/python -m hwkit merge -o "$(OUT)" $(SHARDS) --autograder "$(ZIP)" $(if $(SUBMISSIONS),--submissions "$(SUBMISSIONS)")

gradescope-check: $(BUILT) ## run the autograder zip on SUBMISSION=<file> as Gradescope would, into OUT=<dir>
	@test -n "$(SUBMISSION)" || { echo "usage: make gradescope-check SUBMISSION=<notebook or zip> OUT=<dir>" >&2; exit 2; }
	$(BIN)/python -m hwkit gradescope-check "$(SUBMISSION)" -o "$(if $(filter $(DIST)/grades,$(OUT)),$(DIST)/gradescope-check,$(OUT))" --autograder "$(ZIP)"

test: $(BUILT) ## run the test suite (builds first) on TEST_JOBS=3 workers, each test file whole on one
	$(BIN)/python -m pytest -n $(TEST_JOBS)

check: $(BUILT) ## the fast loop (builds first): unit tests, the test contract and a smoke grade of full credit and blank
	$(BIN)/python -m pytest -q -m "not slow and not image"

bench: $(BUILT) ## grade N (default 40) generated submissions with a serial `otter run` loop and with the grader; compare
	$(BIN)/python -m hwkit bench --n $(N) $(if $(JOBS),--jobs $(JOBS)) --dist "$(DIST)" --out "$(DIST)/bench"

calibrate: $(BUILT) ## run the homework's own assignment/calibrate.py (the VAE's: its training test's threshold over 20 seeds)
	@test -f "$(HW)/assignment/calibrate.py" || { echo "make: $(HW)/assignment/calibrate.py: this homework has nothing to calibrate" >&2; exit 2; }
	$(BIN)/python "$(HW)/assignment/calibrate.py" --runs 20 --dist "$(DIST)"

pictures: ## redraw docs/ from make grade's output (needs pdftoppm and chromium)
	test -f "$(OUT)/written/q3a.html" || $(MAKE) grade
	pdftoppm -png -r 70 -f 4 -l 4 -singlefile "$(OUT)/written/pdf/full-credit.ipynb.pdf" docs/written-pdf-page
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,900 \
		--screenshot=docs/written-ta-page.png "file://$(abspath $(OUT))/written/q3a.html" 2>/dev/null

clean: ## remove DIST (dist/; keeps .venv), if it is a build folder
	@test ! -e "$(DIST)" || test -e "$(DIST)/.hwkit-dist" || test -e "$(DIST)/questions.json" || test -z "$$(ls -A "$(DIST)")" \
		|| { echo "make: $(DIST) is not a build folder (no .hwkit-dist): not removed" >&2; exit 2; }
	rm -rf "$(DIST)"
