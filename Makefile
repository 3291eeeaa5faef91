# Two commands on a fresh machine: `make demo` (serve the best model in a browser)
# and `make test` (the test suite). Each creates the virtualenv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: setup demo test test-all check-java browser screenshot clean

setup: $(STAMP)

# torch/torchvision come from constraints.txt so no dependency can pull a second torch.
$(STAMP): pyproject.toml constraints.txt
	@$(MAKE) --no-print-directory check-java
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt torch torchvision
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

check-java:
	@java -version >/dev/null 2>&1 || { \
	  echo "Java was not found. METEOR and the PTB tokenizer of pycocoevalcap need a Java runtime."; \
	  echo "Install one, e.g. 'sudo apt-get install default-jre-headless' (Debian/Ubuntu) or 'brew install openjdk', then run make again."; \
	  exit 1; }

demo: $(STAMP)
	$(BIN)/vidcap-demo --host $(HOST) --port $(PORT)

# The real-browser test (tests/test_demo_browser.py) drives Debian's Chromium at /usr/bin/chromium;
# `make browser` installs it with apt as root (or passwordless sudo), else the test skips and says why.
browser:
	@test -x /usr/bin/chromium || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  elif command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	    sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; \
	  fi; \
	  test -x /usr/bin/chromium || echo "Chromium could not be installed (needs apt-get and root: apt-get install chromium); the browser test will be skipped."; }

# Two workers, one test file each at a time (module fixtures such as the benchmark's smoke run are
# built once): most tests wait on Java, ffmpeg or a subprocess, so two run well on two cores.
test: $(STAMP) browser
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# Everything, including the slow tests (DDP, VGG-16, MSVD-format benchmark) and the full robustness suite.
test-all: $(STAMP) browser
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "" --runxfail

# The README's demo screenshot, from the real browser test serving the committed results/.
screenshot: $(STAMP) browser
	VIDCAP_DEMO_RESULTS=results $(BIN)/python -m pytest -q tests/test_demo_browser.py

clean:
	rm -rf $(VENV) .pytest_cache
