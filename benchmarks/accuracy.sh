#!/usr/bin/env bash
# Reproduce the accuracy figures in benchmarks/README.md on CPU (2 cores: ~12 min for MNIST,
# ~30 min for each EMNIST recipe). Needs the data under $HCR_DATA_DIR (mnist/ and emnist/
# laid out as in the README).
set -euo pipefail
cd "$(dirname "$0")/.."
HCR=${HCR:-.venv/bin/hcr}

$HCR train --config configs/mnist-hcr-cnn.yaml --out runs/mnist-hcr-cnn --no-progress
$HCR evaluate runs/mnist-hcr-cnn/best.pt --data mnist --split test --out runs/mnist-hcr-cnn/eval-test --no-progress

for recipe in emnist-byclass-hcr-cnn emnist-byclass-hcr-cnn-w40; do
  $HCR train --config configs/$recipe.yaml --out runs/$recipe --no-progress
  $HCR evaluate runs/$recipe/best.pt --data emnist-byclass --split dev-val --out runs/$recipe/eval-dev-val --no-progress
done
