#!/usr/bin/env bash
# Reproduce the accuracy figures in benchmarks/README.md on CPU (2 cores: ~12 min for MNIST,
# ~30 + ~20 min for the two EMNIST stages). Needs the data under $HCR_DATA_DIR (mnist/ and
# emnist/ laid out as in the README).
set -euo pipefail
cd "$(dirname "$0")/.."
HCR=${HCR:-.venv/bin/hcr}

$HCR train --config configs/mnist-hcr-cnn.yaml --out runs/mnist-hcr-cnn --no-progress
$HCR evaluate runs/mnist-hcr-cnn/best.pt --data mnist --split test --out runs/mnist-hcr-cnn/eval-test --no-progress

# EMNIST ByClass subset: 24 epochs, then a 16-epoch warm restart from the best stage-1 model
$HCR train --config configs/emnist-byclass-hcr-cnn.yaml --out runs/emnist-byclass-hcr-cnn --no-progress
$HCR train --config configs/emnist-byclass-hcr-cnn-stage2.yaml --out runs/emnist-byclass-hcr-cnn-stage2 --no-progress
for run in emnist-byclass-hcr-cnn emnist-byclass-hcr-cnn-stage2; do
  $HCR evaluate runs/$run/best.pt --data emnist-byclass --split dev-val --out runs/$run/eval-dev-val --no-progress
done
