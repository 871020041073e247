# Two entry points: `make demo` (set up + run the default benchmark) and `make test` (set up + run the tests).
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED_DATA := $(wildcard ../shared/data/cifar10_test.npz)
# Use the offline archives beside the clone when they exist; otherwise the embedded 1,000-image sample.
export RIBENCH_DATA ?= $(if $(SHARED_DATA),$(abspath ../shared/data),)

.PHONY: setup browser demo test lint

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip check
	touch $@

demo: setup
	$(VENV)/bin/bench run --model standard_cnn --suite cifar10-adv-quick --out runs/demo-results
	$(VENV)/bin/bench run --model topgap_cnn --suite cifar10-adv-quick --out runs/demo-results

# Headless Chromium for the leaderboard's browser test (Debian packages; the test skips with the reason if absent).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "warning: could not install chromium; the browser test will be skipped"

test: setup browser
	$(VENV)/bin/python -m pytest

lint: setup
	$(VENV)/bin/ruff check bench tests
