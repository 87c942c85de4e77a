# The two commands the README opens with; both prepare the machine themselves.
PYTHON := .venv/bin/python

.PHONY: demo test setup layer bench

demo: setup
	$(PYTHON) -m sandbox.demo

test: setup
	$(PYTHON) -m pytest -n 2 $(PYTEST_ARGS)

setup:
	@bash scripts/bootstrap.sh

layer: setup
	$(PYTHON) -m layers.ffmpeg.build

bench: setup
	$(PYTHON) -m bench.router_bench
	$(PYTHON) -m bench.engine_bench
