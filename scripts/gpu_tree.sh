#!/usr/bin/env bash
# Issue #17: make the checkout small enough for a GPU device call, and put it back afterwards.
#
# A device call sends the session's checkout (tracked files and untracked files git does not ignore) and refuses one
# over 64 MiB; main's tree is ~235 MB, ~190 MB of it zoo weights and ~40 MB results/leaderboards, none of which a
# training call needs. `enter` checks out a local branch `gpu-slim`: main's HEAD less the zoo's weight files,
# results/, leaderboards/ and benchmarks' result tables (a few MiB of code remain, leaving the rest of the 64 MiB for
# the data groups of scripts/gpu_data.py). `leave` switches back to main, which restores every file from main's
# commit. The branch is local and never pushed; main is never changed.
#
# Usage (in the checkout the session started in, with no background job writing into it):
#   scripts/gpu_tree.sh enter    # then scripts/gpu_wheels.sh --no-data, then the device calls (README)
#   scripts/gpu_tree.sh leave    # before copying the returned models into model_zoo/
#   scripts/gpu_tree.sh size     # what a call would carry from the current checkout, in KiB
set -euo pipefail
cd "$(dirname "$0")/.."
BRANCH=gpu-slim
LIMIT_KIB=$((64 << 10))

travelling_kib() {  # tracked files that exist plus untracked files git does not ignore
  { git ls-files -z; git ls-files -z --others --exclude-standard; } \
    | xargs -0 -r stat -c %s 2>/dev/null | awk '{s += $1} END {print int(s / 1024)}'
}

case "${1:-}" in
  enter)
    if [ "$(git branch --show-current)" = "$BRANCH" ]; then echo "already on $BRANCH"; exit 0; fi
    if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
      echo "error: the checkout has uncommitted changes; commit them on main first (gpu-slim is cut from HEAD)" >&2
      exit 2
    fi
    commit=$(git rev-parse HEAD)
    git switch -q -C "$BRANCH"
    git rm -rq --ignore-unmatch -- results leaderboards 'benchmarks/*.parquet' \
      'model_zoo/*.safetensors' 'model_zoo/*.safetensors.part*'
    git commit -qm "gpu-slim: main $commit without zoo weights, results and leaderboards (for a device call)"
    echo "on $BRANCH (from main $commit): $(travelling_kib) KiB travel, limit $LIMIT_KIB KiB"
    ;;
  leave)
    git switch -q main
    echo "on main $(git rev-parse --short HEAD): $(travelling_kib) KiB in the checkout"
    ;;
  size)
    kib=$(travelling_kib)
    echo "$kib KiB travel from $(git branch --show-current) (limit $LIMIT_KIB KiB, less the carried paths)"
    [ "$kib" -lt "$LIMIT_KIB" ] || exit 1
    ;;
  *)
    echo "usage: scripts/gpu_tree.sh enter|leave|size" >&2
    exit 2
    ;;
esac
