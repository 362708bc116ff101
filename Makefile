# Two entry points: `make run` (set up + launch the app) and `make test` (set up + lint + tests).
# Both create their own virtual environment in .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# A torch wheel that pip can already find without an index (a local wheel folder, as on CI machines)
# is installed first, so the normal install below keeps it instead of downloading a multi-gigabyte
# build. Elsewhere this step finds nothing and pip installs the usual build for the machine.
$(STAMP): $(BIN)/python pyproject.toml
	-$(BIN)/python -m pip install --quiet --no-index --no-deps torch 2>/dev/null
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/fractal-studio

lint: $(STAMP)
	$(BIN)/ruff check fractal_studio tests benchmarks

test: $(STAMP) lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
