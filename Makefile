# The README's two commands. Both create .venv if needed and work offline (package
# registries aside): no data set download is needed for either.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch: a range in pyproject.toml (>=2.6,<2.14); a CPU-only install: docs/install.md

.PHONY: demo train-demo test test-tf install install-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'

# Read the bundled sample images (photos, scans, canvas drawings, a scribble, empty
# images) with the shipped default model: no training, no download. Prints the answers and
# writes an annotated contact sheet.
demo: install
	$(BIN)/hcr predict samples/ --annotate runs/demo/annotated.png

# Train the baseline CNN briefly on the embedded digits (no download), evaluate it on the
# held-out digits, then read the bundled samples with it.
train-demo: install
	$(BIN)/hcr train --config configs/demo.yaml --out runs/train-demo --no-progress
	$(BIN)/hcr evaluate runs/train-demo/best.pt --data digits --split test --out runs/train-demo/eval --no-progress
	$(BIN)/hcr predict --model runs/train-demo/best.pt samples/digit_* --save-input runs/train-demo/inputs

test: install-test
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The Keras / SavedModel / TFLite tests: TensorFlow (about 1.3 GB) is kept out of `make test`
# so that it installs in minutes; CI runs this job too.
test-tf: install-test
	$(BIN)/python -m pip install -q -e '.[test,tf]'
	$(BIN)/python -m pytest -q tests/test_tensorflow.py $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/latency.py
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf runs .pytest_cache
