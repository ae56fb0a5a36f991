# The README's two commands. Both create .venv if needed and work offline (package
# registries aside): no data set download is needed for either.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned to 2.13.0 in pyproject.toml (a CPU build is picked up by that exact pin)

.PHONY: demo test install install-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'

# Train the baseline CNN briefly on the embedded digits (no download), evaluate it on the
# held-out digits, then read the bundled sample images.
demo: install
	$(BIN)/hcr train --config configs/demo.yaml --out runs/demo --no-progress
	$(BIN)/hcr evaluate runs/demo/best.pt --data digits --split test --out runs/demo/eval --no-progress
	$(BIN)/hcr predict runs/demo/best.pt samples/ --save-input runs/demo/inputs

test: install-test
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf runs .pytest_cache
