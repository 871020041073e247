#!/usr/bin/env bash
# Evaluate the zoo on the leaderboard suites (issues #13 item 8, #14 item 5, #16): every command that fills
# results/ for the committed leaderboards, in order of cost. Resumable: rerun it and finished units are skipped.
#
#   RIBENCH_DATA=../shared/data scripts/evaluate_zoo.sh [phase ...]
#
# Phases (default: adv cascade): adv = cifar10-adv per attack (clean, FGSM, PGD-20/50 best-iterate, Square-5000) on
# N_ADV images; cascade = cifar10-adv-cascade (per-image worst case) on N_CASCADE images; autoattack = cifar10-autoattack
# on N_AA images for AA_MODELS (default: every zoo model with PGD robust accuracy above 0 in results/, so run adv
# first); diagnostics = cifar10-diagnostics for DIAG_MODELS (default: the PRN18 pair, standard_cnn, topgap_cnn and
# those models); interp =
# cifar10-interp for every CIFAR-10 model and pets3-interp on all 298 test images for the pets3 models; sweep = issue
# #14's protocol for the Top-GAP lambda sweep (SWEEP_MODELS: standard_cnn, topgap_cnn and every topgap_cnn_l1mean* /
# topgap_cnn_gap_control in the zoo): cifar10-adv clean/FGSM/PGD-20/PGD-50 on N_SWEEP (1000) images, AutoAttack on
# N_SWEEP_AA (200), cifar10-diagnostics (200 images, Square-1000 among its checks) and cifar10-interp.
# Costs (fp32, one torch thread beside one other job, 2-core AMD EPYC with AVX512-BF16, session 7): Square-5000 on
# 200 images takes 3.5-5 min for an undefended small CNN (it stops at the first fooling query), 8-17 min for the PRN18
# pair and 11-14 min for the adversarially trained CNNs (27-37 % of images survive all 5,000 queries); on 1,000 images
# ~26-33 min for topgap_cnn and topgap_cnn_l1mean3. AutoAttack on 200 images of a 0 %-robust CNN: 3 min (500: 7 min);
# on 500 images of an adversarially trained CNN (session 8, same machine and setup) 16 min at 5 % robust
# (normreg_cnn_ft3), 32 min at 14 % (normreg_cnn), 41 min at 20 % (fgsmat_cnn_ft1), 60 min at 29 % (pgdat_cnn_ft3):
# every surviving image gets APGD-T, FAB-T and 5,000 Square queries.
# Each finished batch (250 images) is saved, so a killed AutoAttack run resumes at its next batch.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH:-.venv/bin/bench}
OUT=${OUT:-results}
N_ADV=${N_ADV:-200}
N_CASCADE=${N_CASCADE:-1000}
N_AA=${N_AA:-500}
CIFAR_MODELS=${CIFAR_MODELS:-$(cd model_zoo && ls -d */ | tr -d / | grep -v pets3 | tr '\n' ' ')}
PETS_MODELS=${PETS_MODELS:-standard_cnn_pets3 topgap_cnn_pets3}
PY=${PY:-$(dirname "$BENCH")/python}
# zoo models whose PGD robust accuracy in cifar10-adv is above 0 on some run (issue #13: these get AutoAttack and the
# diagnostics); run the adv phase first
pgd_robust_models() {
  "$PY" -c 'import glob, pathlib, pandas as pd, sys
frames = [pd.read_parquet(f) for f in glob.glob(sys.argv[1] + "/cifar10-adv/*.parquet")]
rows = pd.concat(frames) if frames else pd.DataFrame(columns=["model", "plugin", "metric", "value"])
rows = rows[(rows.plugin == "pgd") & (rows.metric == "robust_accuracy") & (rows.value > 0)]
zoo = {p.name for p in pathlib.Path("model_zoo").iterdir()}
print(" ".join(sorted(set(rows.model) & zoo)))' "$OUT"
}
if [ -z "${AA_MODELS:-}" ] || [ -z "${DIAG_MODELS:-}" ]; then PGD_ROBUST=$(pgd_robust_models); fi  # read results/ once
AA_MODELS=${AA_MODELS:-$PGD_ROBUST}
DIAG_MODELS=${DIAG_MODELS:-standard_prn18 topgap_prn18 standard_cnn topgap_cnn $PGD_ROBUST}
SWEEP_MODELS=${SWEEP_MODELS:-$(cd model_zoo && { ls -d standard_cnn topgap_cnn topgap_cnn_l1mean* topgap_cnn_gap_control 2>/dev/null || true; } | tr '\n' ' ')}
N_SWEEP=${N_SWEEP:-1000}
N_SWEEP_AA=${N_SWEEP_AA:-200}
run() { echo "+ bench run $*"; nice -n 2 "$BENCH" run --out "$OUT" "$@"; }
for phase in "${@:-adv cascade}"; do
  for p in $phase; do
    case $p in
      adv) for m in $CIFAR_MODELS; do run --model "$m" --suite cifar10-adv --limit "$N_ADV"; done ;;
      cascade) for m in $CIFAR_MODELS; do run --model "$m" --suite cifar10-adv-cascade --limit "$N_CASCADE"; done ;;
      autoattack) for m in $AA_MODELS; do run --model "$m" --suite cifar10-autoattack --limit "$N_AA"; done ;;
      diagnostics) for m in $DIAG_MODELS; do run --model "$m" --suite cifar10-diagnostics; done ;;
      sweep)  # issue #14's protocol for the lambda sweep (and its reference models)
        for m in $SWEEP_MODELS; do
          run --model "$m" --suite cifar10-adv --limit "$N_SWEEP" --only clean,fgsm,pgd
          run --model "$m" --suite cifar10-autoattack --limit "$N_SWEEP_AA"
          run --model "$m" --suite cifar10-diagnostics
          run --model "$m" --suite cifar10-interp
        done ;;
      interp)
        for m in $CIFAR_MODELS; do run --model "$m" --suite cifar10-interp; done
        for m in $PETS_MODELS; do run --model "$m" --suite pets3-interp; done ;;
      *) echo "error: unknown phase '$p' (adv, cascade, autoattack, diagnostics, interp, sweep)" >&2; exit 2 ;;
    esac
  done
done
