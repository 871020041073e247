#!/usr/bin/env bash
# Issue #14 item 4: seeds 1 and 2 of standard_cnn and of topgap_cnn (mean-lambda 1, k = 64, FPN 128), on the exact
# recipe of the zoo's seed-0 models: 10 epochs, batch 256, bf16 autocast, one torch thread per run. Seed 0 of both
# was trained in bf16 on an AMX CPU, so the seeds are too: a seed group shares precision (bench/report/common.py
# seed_groups), and bf16 is only fast where the CPU has AMX or AVX512-BF16 (the script refuses elsewhere unless
# SEEDS_ANY_CPU=1).
# Two lanes run side by side (one core each): standard_cnn_s1 then standard_cnn_s2, and topgap_cnn_s1 then
# topgap_cnn_s2. Each run resumes from runs/NAME/last.pt (checkpoint every epoch). Logs: runs/logs/.
# Measured on a 2-core Xeon with AMX, two runs side by side (session 6): 26 min (standard) and 29-32 min (Top-GAP) per model.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/train_lib.sh
if ! grep -q -E 'amx_bf16|avx512_bf16' /proc/cpuinfo && [ "${SEEDS_ANY_CPU:-0}" != 1 ]; then
  echo "error: this CPU has no AMX/AVX512-BF16, so bf16 seeds would take hours; run on such a CPU or set SEEDS_ANY_CPU=1" >&2
  exit 2
fi
CNN=(--arch cnn --epochs 10 --threads 1)
train() { train_logged seeds.log "$@"; }
standard_lane() {
  for seed in 1 2; do train "standard_cnn_s$seed" --method standard "${CNN[@]}" --seed "$seed"; done
}
topgap_lane() {
  for seed in 1 2; do
    train "topgap_cnn_s$seed" --method topgap --k 64 --fpn-channels 128 "${CNN[@]}" --seed "$seed"
  done
}
standard_lane &
topgap_lane &
wait
