#!/usr/bin/env bash
# Issue #14 on a 2-core CPU, two lanes side by side (one torch thread each), each run resumable from runs/NAME/last.pt:
#   lane 1: normreg_cnn, then isvs_cnn   (NormReg-AT and ISVS from scratch on standard_cnn's recipe)
#   lane 2: ersm_cnn, then scripts/train_lambda_sweep.sh (the GAP control, lambda 30, lambda 3)
# from scratch = standard_cnn's recipe (10 epochs, batch 256, SGD + Nesterov, cyclic LR 0 -> 0.2 at 40 % -> 0,
# bf16 autocast) with the method settings of the zoo's fine-tunes (*_ft3). Each lane first waits for the seed run that
# shares its core (scripts/train_seeds.sh: standard_cnn_s2, topgap_cnn_s2) to end. Logs: runs/logs/.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/train_lib.sh
CNN=(--epochs 10 --threads 1)
after() {  # while scripts/train_seeds.sh runs, wait until its run $1 has ended
  while pgrep -f scripts/train_seeds.sh > /dev/null && ! grep -q "$1: exit" runs/logs/seeds.log 2> /dev/null; do
    sleep 60
  done
}
train() { train_logged queue.log "$@"; }
lane1() {
  after standard_cnn_s2
  train normreg_cnn --method normreg_at --arch cnn "${CNN[@]}"
  train isvs_cnn --method isvs --arch cnn_isvs "${CNN[@]}"
}
lane2() {
  after topgap_cnn_s2
  train ersm_cnn --method ersm --arch cnn_ersm "${CNN[@]}"
  THREADS=1 bash scripts/train_lambda_sweep.sh
}
lane1 &
lane2 &
wait
