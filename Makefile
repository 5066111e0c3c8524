# Everything a newcomer needs: `make serve` runs the service, `make test` runs the tests (see README.md).
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Test processes (pytest-xdist): much of the suite waits on subprocesses (sandboxes, servers, workers), so more
# processes than cores still shortens it (6 was slower than 4 here); override with `make test TEST_WORKERS=1` to run in
# one process. Work stealing: a process that runs out takes tests queued for another, so no queue is left for one
# process to run alone at the end.
TEST_WORKERS ?= 4

.PHONY: install system-deps lint bytecode suite test test-fast screenshots demo serve clean

# Installed with uv where it can be had (26 s here where pip took 64 s; the same versions). torch is the CPU build
# that pip's configuration finds on this machine's disk (an unpinned torch is a multi-GB CUDA download): pip fetches
# that file, uv installs it with the rest. Without uv, pip does it all.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	($(PY) -m pip install -q uv && $(PY) -m pip download -q --no-deps -d $(VENV)/wheels torch==2.13.0 && \
		$(VENV)/bin/uv pip install -q --python $(PY) --compile-bytecode --find-links $(VENV)/wheels torch==2.13.0 -e '.[dev]') || \
	($(PY) -m pip install -q --upgrade pip && $(PY) -m pip install -q torch==2.13.0 && $(PY) -m pip install -q -e '.[dev]')
	rm -rf $(VENV)/wheels
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium for the dashboard tests and EGL for offscreen video; installed when missing and possible.
system-deps:
	@if ! [ -x /usr/bin/chromium ] || ! ldconfig -p | grep -q libEGL.so.1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get install -y -q chromium libegl1 libgl1 libegl-mesa0 >/dev/null 2>&1 || \
			(apt-get update -q >/dev/null && apt-get install -y -q chromium libegl1 libgl1 libegl-mesa0 >/dev/null); \
		else echo "note: install chromium and libegl1 for the browser and video tests"; fi; \
	fi

# ruff (lint and format) over the whole tree; mypy where types are checked (pyproject.toml [tool.mypy]).
# Quiet when clean: it runs beside the suite in `make test`.
lint: install
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/ruff format --check --quiet .
	$(VENV)/bin/mypy --no-error-summary

# The project's bytecode, written once: the suite starts hundreds of Python processes (CLI, workers, sandboxes), and
# where PYTHONDONTWRITEBYTECODE is set (sandboxes always set it) each would compile every module it imports again.
bytecode: install
	$(PY) -m compileall -q -j0 app envs workers prompts tests

# PYTHONDONTWRITEBYTECODE= lets pytest keep the test modules it rewrote (assertions) in __pycache__: a later run
# collects in 5 s instead of 9 per process.
suite: install system-deps bytecode
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist worksteal

# Lint and the suite side by side: mypy's half minute on one core no longer comes before the suite's first test.
# Either failing fails the target.
test: install system-deps
	@$(MAKE) --no-print-directory -j2 lint suite

# The quick loop: no trainings, workers or browsers, and SQLite only (the PostgreSQL runs of its tests, a quarter
# of its time, run in `make test`). One process per core: quick tests wait on little, and each process pays 5-9 s of
# CPU to collect the suite.
test-fast: install bytecode
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q -p no:cacheprovider -n auto --dist worksteal \
		-m "not slow and not browser and not postgres"

# Refresh the README's screenshots (docs/screenshots/) from the browser test that walks the same journey.
screenshots: install system-deps
	REWARDSMITH_UPDATE_DOCS=1 $(PY) -m pytest -q -p no:cacheprovider tests/app/dashboard/test_browser_live.py

demo: install
	mkdir -p data/demo
	$(PY) -c "import envs; print(envs.get_spec('HalfCheetah-v5').reference_reward)" > data/demo/reference_reward.py
	$(VENV)/bin/rewardsmith evaluate --env HalfCheetah-v5 --reward data/demo/reference_reward.py --timesteps 20000 --out data/demo/evaluate

serve: install
	$(VENV)/bin/rewardsmith serve

clean:
	rm -rf $(VENV) .pytest_cache
