# `make run`: set up and stream the bundled demo conversation at real-time pace.
# `make test`: set up and run the test suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO := streamdiar/data/demo.flac

.PHONY: run test setup system-deps bench clean

setup: $(STAMP)

# PortAudio for sounddevice (microphone) and Chromium for the browser test; installed when
# missing and we may use apt.
system-deps:
	@missing=""; \
	ldconfig -p 2>/dev/null | grep -q libportaudio.so.2 || missing="$$missing libportaudio2"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			(apt-get update -qq && apt-get install -y -qq $$missing >/dev/null) || echo "warning: could not install$$missing"; \
		else echo "note: install$$missing (microphone input, browser test)"; fi; \
	fi

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench]'
	@touch $(STAMP)

run: system-deps $(STAMP)
	$(VENV)/bin/streamdiar file $(DEMO) --pace 1 --verbose --rttm demo.rttm

test: system-deps $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m bench --quick --json bench/results/quick.json

clean:
	rm -rf $(VENV) .pytest_cache
