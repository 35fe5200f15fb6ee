# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-long bench fuzz validate clean sandbox

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install only when the project's declared dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

ASSIGNMENTS := cnn-rnn backprop-optim resnet-adversarial layers deep-nn

# The OS sandbox (bubblewrap) is installed where we may (root with apt-get); elsewhere the demo runs
# with `--sandbox auto`, which says clearly that it is grading without one.
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) \
	  || echo "make: bubblewrap is not installed; grading without the OS sandbox (see docs/security.md)"; }

demo: $(STAMP) sandbox
	@for a in $(ASSIGNMENTS); do \
	  echo "== $$a"; \
	  $(BIN)/grader grade rubrics/$$a.yaml submissions/$$a --out out/$$a --sandbox auto || exit 1; \
	done
	@echo "== student kits (what students get instead of the rubric and reference)"
	@for a in $(ASSIGNMENTS); do $(BIN)/grader kit rubrics/$$a.yaml --out out/kits/$$a.kit.zip || exit 1; done
	@echo "== a student's self-check with a kit: grader check submissions/cnn-rnn/bob_partial.py --kit out/kits/cnn-rnn.kit.zip"
	@# Exit status 1 means "a public check fails", which is bob's case; 2 or more is a real failure.
	@$(BIN)/grader check submissions/cnn-rnn/bob_partial.py --kit out/kits/cnn-rnn.kit.zip --sandbox auto --report out/kits/bob_partial.report.html; [ $$? -le 1 ]
	@echo "== the LMS round trip: a Canvas gradebook CSV of cnn-rnn and a Gradescope autograder of its rubric"
	@$(BIN)/grader export canvas out/cnn-rnn --roster submissions/cnn-rnn.roster.csv --assignment-title "CNN-RNN" --to out/exports/cnn-rnn-canvas.csv
	@$(BIN)/grader export gradescope rubrics/cnn-rnn.yaml --out out/exports/cnn-rnn-autograder.zip
	@echo "Class summaries:"; for a in $(ASSIGNMENTS); do echo "  $$(pwd)/out/$$a/index.html"; done
	@echo "LMS exports:"; echo "  $$(pwd)/out/exports/cnn-rnn-canvas.csv"; echo "  $$(pwd)/out/exports/cnn-rnn-autograder.zip"

# The suite mostly waits (student workers starting, deliberate time limits), so it runs on more pytest-xdist
# workers than the 2 cores CI has; tests sharing a module fixture stay on one worker (tests/conftest.py).
TEST_WORKERS ?= 3
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(PYTEST)

# Everything, the exhaustive variants marked `long` included (about twice make test's time).
test-long: $(STAMP)
	$(PYTEST) -m ""

# Figures and goals: docs/performance.md.  BENCH_ARGS=--large grades a batch of 60 notebooks too.
BENCH_ARGS ?=
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/bench_grade.py $(BENCH_ARGS)

# Every assignment's rubric: reference, blank and example scores, mutation analysis (docs/rubrics.md, Validating a rubric).
.PHONY: validate
validate: $(STAMP)
	@status=0; for a in $(ASSIGNMENTS); do \
	  echo "== $$a"; $(BIN)/grader validate rubrics/$$a.yaml --examples submissions/$$a --sandbox auto || status=1; \
	done; exit $$status

# The grader-side fuzz test at length (CI runs 60 examples per target; this runs FUZZ_EXAMPLES, about 10 minutes).
FUZZ_EXAMPLES ?= 2000
fuzz: $(STAMP)
	GRADER_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider tests/grading/test_fuzz_grader.py

clean:
	rm -rf out .pytest_cache
