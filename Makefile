# Two set-up commands: `make demo` and `make test`. Both create/refresh .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONUNBUFFERED := 1

.PHONY: env test demo benchmark clean

env: $(VENV)/.installed

$(VENV)/.installed: requirements.txt setup.cfg setup.py tools/setup_env.sh
	VENV=$(VENV) bash tools/setup_env.sh

test: env
	$(PY) -m pytest -q --durations=10 -n 2 --dist loadfile tests

demo: env
	PYTHON=$(PY) bash tools/demo.sh

benchmark: env
	$(PY) tools/benchmark.py

clean:
	rm -rf work_dirs .pytest_cache
