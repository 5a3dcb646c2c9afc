PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint typecheck bench clean

# Type-checked (mypy, basic mode; see pyproject.toml).
TYPED := engine/store engine/smpp engine/net engine/wiring.py engine/rerouting.py \
	engine/routing.py engine/config.py engine/sched/pacing.py engine/commands/cancel.py

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy $(TYPED)

demo: $(STAMP)
	$(BIN)/volley demo

bench: $(STAMP)
	$(BIN)/volley bench

clean:
	rm -rf $(VENV) var
