#!/usr/bin/env bash
# GPU efficiency table (issue 3) on one card in under 5 minutes: S and B sizes of DiT, DAM and PT-DiT
# at 256/512/1024 px in bf16. Needs only torch + numpy; runs from the checkout.
#   bash bench/gpu_efficiency.sh                 # writes docs/measurements/gpu_efficiency_<card>_<date>.md
#   bash bench/gpu_efficiency.sh --smoke         # CPU check of the script itself
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ " $* " == *" --smoke "* ]]; then
  PYTHONPATH=. python3 bench/gpu_efficiency.py "$@"
  exit
fi
card=$(python3 -c "import torch; print(torch.cuda.get_device_name().replace(' ', '-'))")
out="docs/measurements/gpu_efficiency_${card}_$(date +%F).md"
PYTHONPATH=. timeout 300 python3 bench/gpu_efficiency.py --out "$out" "$@"
echo "written: $out"
