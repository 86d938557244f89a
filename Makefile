# The two entry points: `make demo` (the main job on the example repo) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit venv clean bench tools

venv: $(STAMP)

# opa-golib-python-bindings declares Python >= 3.14 but its wheel works on 3.11:
# install it first, ignoring that claim, so the project's own pin resolves.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --ignore-requires-python opa-golib-python-bindings==0.4.4
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

lint: $(STAMP)
	$(BIN)/ruff check controlplane tests bench
	$(BIN)/ruff format --check controlplane tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Two workers (pytest-xdist), one per core: each starts its own engines once for its session.
unit: $(STAMP)
	$(BIN)/pytest -q -n 2

# Debian tools the tests use (needs root, as in CI): headless Chromium for
# tests/report/test_browser.py, jq and shellcheck for the CI workflows of tests/ci/,
# prometheus and promtool for the rules of tests/monitoring/.
tools:
	command -v chromium >/dev/null && command -v jq >/dev/null && command -v shellcheck >/dev/null \
	  && command -v prometheus >/dev/null && command -v promtool >/dev/null || \
	  (apt-get update && apt-get install -y --no-install-recommends chromium jq shellcheck prometheus)

test: tools lint typecheck unit

# The benchmarks of bench/ (minutes each; results are recorded by hand in bench/RESULTS.md).
bench: $(STAMP)
	$(BIN)/python -m bench.validate
	$(BIN)/python -m bench.render
	$(BIN)/python -m bench.policy
	$(BIN)/python -m bench.plan
	$(BIN)/python -m bench.drift
	$(BIN)/python -m bench.frozen
	$(BIN)/python -m bench.checkov

clean:
	rm -rf $(VENV) .cpl .pytest_cache .mypy_cache .ruff_cache
