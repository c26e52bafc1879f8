# `make run`: set up and stream the bundled demo conversation at real-time pace.
# `make test`: set up and run the test suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO := streamdiar/data/demo.flac

.PHONY: run test setup system-deps bench clean

setup: $(STAMP)

# PortAudio for sounddevice (microphone); installed when missing and we may use apt.
system-deps:
	@if ! ldconfig -p 2>/dev/null | grep -q libportaudio.so.2; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			(apt-get update -qq && apt-get install -y -qq libportaudio2 >/dev/null) || echo "warning: could not install libportaudio2"; \
		else echo "note: install libportaudio2 for microphone input"; fi; \
	fi

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

run: system-deps $(STAMP)
	$(VENV)/bin/streamdiar file $(DEMO) --pace 1 --verbose --rttm demo.rttm

test: system-deps $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m bench --quick --json bench/results/quick.json

clean:
	rm -rf $(VENV) .pytest_cache
