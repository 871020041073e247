#!/usr/bin/env bash
# Issue #17: train the GPU's share of the zoo on a fresh GPU machine (one H200: Python 3.12 with its own torch, no
# package registry), in the repository root, in this order, each resumable and each delivered as soon as it ends:
#
#   1. standard_prn18, topgap_prn18 (k = 128 of the 32x32 CAM, lambda = 1, l1_reduction mean: the spec default) and
#      topgap_prn18_l1mean$GPU_ZOO_TOPGAP_LAMBDA2 (a larger lambda: the small-net sweep of #14 is still running),
#      from scratch on the paper's recipe (methods_spec 1(d)): PreAct ResNet-18, SGD momentum 0.9 without Nesterov,
#      weight decay 5e-4 (not on biases and BN), batch 128, 30 epochs, cyclic LR 0 -> 0.2 at 2/5 -> 0 per
#      iteration, crop(32, pad 4) + flip, inputs in [0, 1] without normalisation; bf16 autocast, channels_last;
#   2. then, while the budget lasts, pgdat_cnn and fgsmat_cnn (the zoo's fine-tunes are pgdat_cnn_ft3 and fgsmat_cnn_ft1): PGD-AT and FGSM-AT on the small
#      cnn from scratch on standard_cnn's recipe (10 epochs, batch 256, cyclic LR 0.2), with pgdat_cnn's and
#      fgsmat_cnn's attack settings (eps 8/255; PGD 3 steps of 0.0261; FGSM alpha 1.25 eps, zero init, GradAlign 0.2);
#   3. then issue #14's small nets from scratch on the same recipe: ersm_cnn, isvs_cnn and normreg_cnn (the fine-tunes: *_ft3), the Top-GAP
#      lambda sweep topgap_cnn_l1mean{30,10,100,3} and topgap_cnn_gap_control (each ~20-40 s on an H200 by the same
#      estimate). A model whose card is in main's model_zoo/ (trained on the CPU) is skipped; the seeds of
#      standard_cnn and topgap_cnn were trained on the CPU in session 6 (scripts/train_seeds.sh).
#
# ESTIMATES (not measurements: no GPU has run this yet; scripts/gpu_preflight.py, the first thing this script runs,
# prints the measured ones): PRN18 on CIFAR-10 in bf16 channels_last with resident data and no syncs takes on the
# order of 5-10 s per epoch on an H100-class GPU, so on the H200
#   standard_prn18                    ~3-5 min (30 x 391 steps; plus ~30 s for start, cudnn tuning, evaluation)
#   topgap_prn18, topgap_prn18_l1mean ~4-7 min each (the 256-filter FPN head at 32x32 adds about half the FLOPs)
#   pgdat_cnn                 ~1-3 min (10 epochs; 4 forward-backward passes per step on a 3x cheaper net)
#   fgsmat_cnn                ~2-4 min (10 epochs; GradAlign's double backprop, and it reads its loss
#                                     every step: bench/methods/adversarial.py's grad_align syncs the host)
# A first call of ~9.5 min therefore covers the two paper-recipe models with margin; a second call (right after the
# first, while the machine is warm: its runs/ checkpoints survive only then) finishes the rest.
#
# What it needs there: the working tree, and `.gpu/` carried (scripts/gpu_wheels.sh makes it here): .gpu/wheels
# (installed with --no-index into /tmp/site when present) and .gpu/data (CIFAR-10's training split packed by
# scripts/gpu_data.py, unpacked once into runs/gpu_zoo/data and sha256-checked). The card's clean accuracy is
# measured on the embedded 1,000-image test sample (--eval-split 'test[balanced-1000]'); the 10,000-image number
# comes from `bench run` back on the CPU.
#
# What comes back: $OUT/<model>/card.yaml and its weights as float16 safetensors in parts of <= 15.5 MiB (3 files
# per PRN18 model), small models (a cnn's card and 3.4 MB of weights) appended to tar bundles $OUT/models-NN.tar of
# <= 15.5 MiB (4 cnns each; unpack with `tar -xf models-NN.tar -C model_zoo`), and $OUT/gpu_zoo.log. A device call returns at most 8 files and 64 MiB, so a model
# that would overflow this call's return waits, finished, for the next call (runs/gpu_zoo/delivered/ marks what
# went back; GPU_ZOO_REDELIVER=1 sends everything finished again).
#
# Settings (environment):
#   GPU_ZOO_BUDGET_S     seconds this call may use (default 540); no model starts with less than
#   GPU_ZOO_MIN_START_S  seconds left (default 60), and a running one is stopped (checkpoint kept) at the budget's end
#   GPU_ZOO_DEVICE       cuda (default) or cpu (rehearsals)
#   GPU_ZOO_EPOCHS       PRN18 epochs (default 30); GPU_ZOO_CNN_EPOCHS cnn epochs (default 10)
#   GPU_ZOO_LIMIT        train and evaluate on the first N images only (rehearsals)
#   GPU_ZOO_TOPGAP_LAMBDA2  the larger Top-GAP lambda (default 30: the largest mean-lambda of #14's sweep that did not
#                        diverge at once; 1000 and 10^4 became NaN in epoch 1)
#   GPU_ZOO_ONLY         train only these models (space-separated names)
#   GPU_ZOO_DATA         a folder with cifar10_train.npz (default: unpack .gpu/data)
#   GPU_ZOO_PREFLIGHT    0 skips the ~20 s timing and sync check
#   GPU_ZOO_STATE        checkpoints' companion folder: logs, delivery marks, the staging zoo (default runs/gpu_zoo)
#   OUT                  where deliveries go (set by the device tool; default runs/gpu_zoo/out)
#
# Rehearsal on a CPU (what the first minute does, on 256 images):
#   GPU_ZOO_DEVICE=cpu GPU_ZOO_EPOCHS=1 GPU_ZOO_CNN_EPOCHS=1 GPU_ZOO_LIMIT=256 GPU_ZOO_DATA=../shared/data \
#     GPU_ZOO_BUDGET_S=60 PY=.venv/bin/python OUT=/tmp/gpu_zoo_out scripts/gpu_zoo.sh
set -uo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
PY=${PY:-python3}
OUT=${OUT:-runs/gpu_zoo/out}
DEVICE=${GPU_ZOO_DEVICE:-cuda}
EPOCHS=${GPU_ZOO_EPOCHS:-30}
CNN_EPOCHS=${GPU_ZOO_CNN_EPOCHS:-10}
LIMIT=${GPU_ZOO_LIMIT:-}
BUDGET=${GPU_ZOO_BUDGET_S:-540}
MIN_START=${GPU_ZOO_MIN_START_S:-60}
LAMBDA2=${GPU_ZOO_TOPGAP_LAMBDA2:-30}
ONLY=${GPU_ZOO_ONLY:-}
STATE=${GPU_ZOO_STATE:-runs/gpu_zoo}
BF16=$([ "$DEVICE" = cuda ] && echo --bf16 || echo --no-bf16)  # bf16 is slow on CPUs without AMX
PART_MIB=15.5
RETURN_FILES=8
RETURN_BYTES=$((60 << 20))  # 64 MiB less a margin for the log
BUNDLE_BYTES=$((31 << 19))  # 15.5 MiB per returned tar bundle of small models
export RIBENCH_ZOO=$STATE/zoo PYTHONUNBUFFERED=1
[ -f .gpu/commit ] && export RIBENCH_GIT_COMMIT=$(cat .gpu/commit)  # the copy here has no .git
mkdir -p "$OUT" "$STATE/logs" "$STATE/delivered" "$RIBENCH_ZOO"
[ "${GPU_ZOO_REDELIVER:-0}" = 1 ] && rm -f "$STATE"/delivered/*
LOG=$OUT/gpu_zoo.log
say() { echo "$(date -u +%H:%M:%S) $*" | tee -a "$LOG"; }
left() { echo $((BUDGET - ($(date +%s) - START))); }

bundle_for() {  # the bundle tar in $OUT that still has room for BYTES more, or "" when none has
  local bytes=$1 tarfile size
  for tarfile in "$OUT"/models-*.tar; do
    [ -f "$tarfile" ] || continue
    size=$(stat -c %s "$tarfile")
    if [ $((size + bytes + 65536)) -le $BUNDLE_BYTES ]; then echo "$tarfile"; return; fi
  done
}

deliver() {  # send a finished model back in this call if its return still has room for it
  # Small models (a cnn: card + 3.4 MB of float16 weights) go into shared tar bundles of <= 15.5 MiB, so that one
  # call's 8 returned files carry many of them; a PRN18 goes as its card and weight parts.
  local name=$1 src=$RIBENCH_ZOO/$1
  [ -e "$STATE/delivered/$name" ] && return 0
  local files bytes have_files have_bytes tarfile
  files=$(find "$src" -type f | wc -l)
  bytes=$(du -sb "$src" | cut -f1)
  have_files=$(find "$OUT" -type f | wc -l)
  have_bytes=$(du -sb "$OUT" | cut -f1)
  if [ $((have_bytes + bytes)) -gt $RETURN_BYTES ]; then files=$((RETURN_FILES + 1)); fi
  if [ "$bytes" -lt $((BUNDLE_BYTES - 65536)) ]; then
    tarfile=$(bundle_for "$bytes")
    if [ -n "$tarfile" ]; then files=0; else files=1; tarfile=$OUT/models-$(printf %02d "$have_files").tar; fi
  fi
  if [ $((have_files + files)) -gt $RETURN_FILES ]; then
    say "$name: finished; it waits for the next call (this call's return is full)"
    return 0
  fi
  if [ -n "${tarfile:-}" ]; then
    tar -C "$RIBENCH_ZOO" -rf "$tarfile" "$name"
  else
    mkdir -p "$OUT/$name" && cp "$src"/* "$OUT/$name/"
  fi
  touch "$STATE/delivered/$name"
  say "$name: delivered${tarfile:+ in $(basename "$tarfile")} ($((bytes >> 10)) KiB): $(grep -A1 '^clean_accuracy' "$src/card.yaml" | tail -1 | xargs)"
}

train() {  # train NAME [bench train options]: skip what is done, respect the budget, deliver at once
  local name=$1 rc
  shift
  if [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]]; then return 0; fi
  if [ -f "model_zoo/$name/card.yaml" ]; then say "$name: in main's zoo already (trained on the CPU)"; return 0; fi
  if [ -f "$RIBENCH_ZOO/$name/card.yaml" ]; then deliver "$name"; return 0; fi
  if [ "$(left)" -lt "$MIN_START" ]; then
    say "$name: not started, $(left) s of the budget left (a later call resumes it)"
    return 0
  fi
  say "$name: start, $(left) s of the budget left"
  timeout --kill-after=15 "$(left)" "$PY" -c 'from bench.cli import main; main()' train --name "$name" \
    --device "$DEVICE" --data-root "$DATA" --eval-split 'test[balanced-1000]' --weights-dtype float16 \
    --max-part-mib "$PART_MIB" "$BF16" ${LIMIT:+--limit "$LIMIT"} "$@" >"$STATE/logs/$name.log" 2>&1
  rc=$?
  say "$name: exit $rc: $(tail -c 400 "$STATE/logs/$name.log" | tr '\r' '\n' | grep -v '^\s*$' | tail -n 1)"
  [ -f "$RIBENCH_ZOO/$name/card.yaml" ] && deliver "$name"
  return 0
}

say "gpu_zoo: budget ${BUDGET} s, device $DEVICE, PRN18 epochs $EPOCHS, cnn epochs $CNN_EPOCHS${LIMIT:+, limit $LIMIT}"
if compgen -G ".gpu/wheels/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/wheels/*.whl \
    || { say "error: the carried wheels do not install"; exit 1; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
"$PY" -c 'import torch, bench.train; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tee -a "$LOG"
[ "${PIPESTATUS[0]}" = 0 ] || { say "error: bench.train does not import here (see above)"; exit 1; }
if [ -n "${GPU_ZOO_DATA:-}" ]; then
  DATA=$GPU_ZOO_DATA
else
  DATA=$STATE/data
  [ -f "$DATA/cifar10_train.npz" ] || "$PY" scripts/gpu_data.py unpack .gpu/data "$DATA" 2>&1 | tee -a "$LOG"
  [ -f "$DATA/cifar10_train.npz" ] || { say "error: no training data (carry every .gpu/data group)"; exit 1; }
fi
for card in "$RIBENCH_ZOO"/*/card.yaml; do  # finished in an earlier call, not yet sent back
  [ -f "$card" ] && deliver "$(basename "$(dirname "$card")")"
done
if [ "${GPU_ZOO_PREFLIGHT:-1}" = 1 ] && [ ! -e "$STATE/preflight.done" ]; then
  if [ "$DEVICE" = cuda ]; then steps=(--steps 40); else steps=(--steps 2 --batch-size 16); fi
  timeout 120 "$PY" scripts/gpu_preflight.py --device "$DEVICE" --epochs "$EPOCHS" "${steps[@]}" 2>"$STATE/logs/preflight.log" \
    | tee -a "$LOG" && touch "$STATE/preflight.done"
fi

PRN18=(--arch prn18 --epochs "$EPOCHS" --batch-size 128 --lr 0.2 --weight-decay 5e-4 --normalization none --no-nesterov)
TOPGAP=(--method topgap --k 128 --l1-reduction mean --abort-below 0.15)
CNN=(--arch cnn --epochs "$CNN_EPOCHS" --batch-size 256 --lr 0.2)
train standard_prn18 --method standard "${PRN18[@]}"
train topgap_prn18 "${TOPGAP[@]}" --lambda-l1 1 "${PRN18[@]}"
train "topgap_prn18_l1mean$LAMBDA2" "${TOPGAP[@]}" --lambda-l1 "$LAMBDA2" "${PRN18[@]}"
train pgdat_cnn --method pgd_at --hp steps=3 --hp alpha=0.026143790849673203 "${CNN[@]}"
train fgsmat_cnn --method fgsm_at "${CNN[@]}"
# 3. Issue #14's small nets from scratch on standard_cnn's recipe: ERSM, ISVS and NormReg-AT with their zoo
#    fine-tunes' method settings; the Top-GAP lambda sweep (k = 64 of 16x16, FPN 128; the GAP control k = 256);
train ersm_cnn --method ersm "${CNN[@]}" --arch cnn_ersm
train isvs_cnn --method isvs "${CNN[@]}" --arch cnn_isvs
train normreg_cnn --method normreg_at "${CNN[@]}"
SMALL_TOPGAP=(--method topgap --fpn-channels 128 --l1-reduction mean --abort-below 0.15 "${CNN[@]}")
for lam in 30 10 100 3; do
  train "topgap_cnn_l1mean$lam" "${SMALL_TOPGAP[@]}" --k 64 --lambda-l1 "$lam"
done
train topgap_cnn_gap_control "${SMALL_TOPGAP[@]}" --k 256 --lambda-l1 1
say "gpu_zoo: done after $(($(date +%s) - START)) s; in \$OUT: $(cd "$OUT" && find . -type f | sort | tr '\n' ' ')"
