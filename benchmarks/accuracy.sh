#!/usr/bin/env bash
# Reproduce the accuracy figures in benchmarks/README.md (CPU is fine; ~15 min for MNIST,
# ~30 min for the EMNIST subset on 2 cores). Needs the data under $HCR_DATA_DIR
# (mnist/ and emnist/ as laid out in the README).
set -euo pipefail
cd "$(dirname "$0")/.."
HCR=${HCR:-.venv/bin/hcr}

$HCR train --config configs/mnist-hcr-cnn.yaml --out runs/mnist-hcr-cnn --no-progress
$HCR evaluate runs/mnist-hcr-cnn/best.pt --data mnist --split test --out runs/mnist-hcr-cnn/eval-test --no-progress

$HCR train --config configs/emnist-byclass-hcr-cnn.yaml --out runs/emnist-byclass-hcr-cnn --no-progress
$HCR evaluate runs/emnist-byclass-hcr-cnn/best.pt --data emnist-byclass --split dev-val --out runs/emnist-byclass-hcr-cnn/eval-dev-val --no-progress
