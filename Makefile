# The two commands the README opens with; both prepare the machine themselves.
PYTHON := .venv/bin/python
# The backend's interpreter and pins (Python 3.11, constraints/backend.txt): the router and the
# Celery worker run in the backend's process, so their tests run again there, with the tests of
# the backend integration itself (tests/backend, which needs this environment). anyio's pytest
# plugin (installed with the backend's FastAPI) is not used and only warns under pytest 9.
BACKEND_PYTHON := .venv-backend/bin/python
BACKEND_TESTS := tests/backend tests/router tests/test_celery_worker.py

.PHONY: demo test setup layer bench wheel

demo: setup
	$(PYTHON) -m sandbox.demo

test: setup
	$(PYTHON) -m pytest -n 2 $(PYTEST_ARGS)
	$(BACKEND_PYTHON) -m pytest -n 2 -p no:anyio $(BACKEND_TESTS) $(PYTEST_ARGS)

setup:
	@bash scripts/bootstrap.sh

layer: setup
	$(PYTHON) -m layers.ffmpeg.build

# The wheel the backend vendors (docs/router.md): dist/lambda_video_processor-*.whl.
wheel: setup
	@bash scripts/build_wheel.sh dist

bench: setup
	$(PYTHON) -m bench.router_bench
	$(PYTHON) -m bench.engine_bench
	$(PYTHON) -m bench.memory_bench
	$(PYTHON) -m bench.fanout_bench
