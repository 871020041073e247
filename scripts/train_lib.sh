# Sourced by the CPU training scripts (scripts/train_seeds.sh, train_cpu_queue.sh, train_lambda_sweep.sh), from the
# repository root. wait_for_run NAME: wait while a `bench train --name NAME` job runs.
# train_logged LOG NAME [bench train options]: wait for a running job of the same name (never two runs on one
# checkpoint), skip a model already in the zoo bench train writes to (the first RIBENCH_ZOO folder, else
# model_zoo/), else run `bench train --name NAME ...` at nice 5 with its output in runs/logs/NAME.log and its start and
# end in runs/logs/LOG. Each run resumes from runs/NAME/last.pt.
BENCH=${BENCH:-.venv/bin/bench}
ZOO=${RIBENCH_ZOO:+${RIBENCH_ZOO%%:*}}
ZOO=${ZOO:-model_zoo}
mkdir -p runs/logs
wait_for_run() {
  while pgrep -f -- "--name $1 " > /dev/null; do sleep 60; done
}
train_logged() {
  local log=runs/logs/$1 name=$2
  shift 2
  wait_for_run "$name"
  if [ -f "$ZOO/$name/card.yaml" ]; then echo "$name: in the zoo already"; return; fi
  echo "$(date -u +%FT%TZ) $name: start" >> "$log"
  local rc=0
  nice -n 5 "$BENCH" train --name "$name" "$@" > "runs/logs/$name.log" 2>&1 || rc=$?
  # rc is read before the line's $(date): a command substitution would reset $? to its own status
  echo "$(date -u +%FT%TZ) $name: exit $rc $(tail -c 300 "runs/logs/$name.log" | tr '\r' '\n' | tail -n 1)" >> "$log"
}
