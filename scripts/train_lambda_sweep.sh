#!/usr/bin/env bash
# Issue #14: the Top-GAP lambda sweep on the small CNN, from scratch on standard_cnn's recipe (10 epochs, batch 256,
# cyclic LR 0.2, k = 64 of the 16x16 CAM, FPN 128). Precision per run: the values started on a 2-core AMD EPYC
# without AMX ran in fp32 (bf16 is slow there) and resume in fp32; the GAP control and lambda 30 run in bf16 autocast
# like topgap_cnn (lambda 1), the model they are read against, and need a CPU with AMX/AVX512-BF16 to be fast.
# Each run resumes from runs/NAME/last.pt; a run whose loss diverges or whose training accuracy collapses stops
# (TrainingCollapsed, exit 2), leaves model_zoo/_failed/NAME.yaml (where it stopped; the lambda-sweep table shows it)
# and the sweep goes on; a later sweep skips it unless RETRY_FAILED=1. mean-lambda = 1 is the zoo's topgap_cnn. Logs: runs/logs/.
# Measured on a 2-core AMD EPYC (no AVX512), fp32: ~12 min per epoch uncontended, so ~2 h per model. THREADS: torch
# threads per run (0 = torch's default).
# Outcome so far: mean-lambda 10^4 and 10^3 diverge in the first 10 steps (non-finite loss at lr ~2e-3).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/train_lib.sh
run() {  # a run that stopped before (its failure record) is skipped unless RETRY_FAILED=1
  local name=$1; shift
  wait_for_run "$name"
  if [ -f "$ZOO/_failed/$name.yaml" ] && [ "${RETRY_FAILED:-0}" != 1 ]; then
    echo "$name: stopped before ($ZOO/_failed/$name.yaml; RETRY_FAILED=1 runs it again)"; return
  fi
  train_logged sweep.log "$name" --method topgap --arch cnn --epochs 10 --abort-below 0.15 "$@"
}
# Order: the diverged values first (each stops within minutes and leaves its failure record; fp32 on the EPYC), then
# the GAP control (bf16; its fp32 start of one epoch on the EPYC was dropped so that it matches topgap_cnn), lambda 30
# (bf16; in fp32 it stayed at chance through epoch 2 in a run stopped by hand) and lambda 3 (7 epochs in fp32 on the
# EPYC, finished in fp32). The l1 gradient on a top-k entry is ~lambda/40 of CE's (TRAINING.md).
FP32=(--no-bf16)
run topgap_cnn_l1mean100 --k 64 --lambda-l1 100 --l1-reduction mean "${FP32[@]}"
run topgap_cnn_l1mean1000 --k 64 --lambda-l1 1000 --l1-reduction mean "${FP32[@]}"
run topgap_cnn_l1mean10000 --k 64 --lambda-l1 10000 --l1-reduction mean "${FP32[@]}"
run topgap_cnn_l1mean10 --k 64 --lambda-l1 10 --l1-reduction mean "${FP32[@]}"
run topgap_cnn_gap_control --k 256 --lambda-l1 1 --l1-reduction mean --threads "${THREADS:-0}"
run topgap_cnn_l1mean30 --k 64 --lambda-l1 30 --l1-reduction mean --threads "${THREADS:-0}"
run topgap_cnn_l1mean3 --k 64 --lambda-l1 3 --l1-reduction mean "${FP32[@]}" --threads "${THREADS:-0}"
