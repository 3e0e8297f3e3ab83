#!/usr/bin/env bash
# Training / sampling throughput on one GPU (issue 4), < 5 minutes; writes docs/measurements/.
#   bash bench/gpu_train.sh            bash bench/gpu_train.sh --smoke   (CPU check of the script)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ " $* " == *" --smoke "* ]]; then
  PYTHONPATH=. python3 bench/gpu_train.py "$@"
  exit
fi
card=$(python3 -c "import torch; print(torch.cuda.get_device_name().replace(' ', '-'))")
out="docs/measurements/gpu_train_${card}_$(date +%F).txt"
mkdir -p docs/measurements
PYTHONPATH=. timeout 300 python3 bench/gpu_train.py "$@" | tee "$out"
echo "written: $out"
