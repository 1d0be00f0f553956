#!/usr/bin/env bash
# Run every peer figure, each in its own fresh process, strictly one after another (parallel
# runs on 2 cores corrupt each other's timings). JSON results + stderr logs go to
# bench/peers/results/ and a summary table is printed at the end.
#
#   bash bench/peers/run_all.sh                      # everything (~17 min plus idle waits)
#   ONLY=throughput bash bench/peers/run_all.sh      # only the throughput figures
#   ONLY=quality BUDGET_S=60 bash bench/peers/run_all.sh
#
# Env: BUDGET_S (quality budget, default 120), REPEATS (default 5), WARMUP (default 2),
# WAIT_IDLE_S (each run first waits up to this long for other processes to leave the CPU idle,
# default 300; the measured CPU share of other processes is stored in every JSON either way),
# PEERS (space-separated subset of: tfp_glow_graph tfp_glow_xla normflows_glow
# normflows_glow_t1), OUT. normflows_glow_t1 is normflows with torch.set_num_threads(1): torch's
# OpenMP pool collapses (tens of times slower) when another process holds a core.
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-bench/peers/results}
BUDGET_S=${BUDGET_S:-120}
REPEATS=${REPEATS:-5}
WARMUP=${WARMUP:-2}
WAIT_IDLE_S=${WAIT_IDLE_S:-300}
ONLY=${ONLY:-all}
PEERS=${PEERS:-tfp_glow_graph tfp_glow_xla normflows_glow normflows_glow_t1}
PY=${PYTHON:-python}
mkdir -p "$OUT"

declare -A CMD=(
  [tfp_glow_graph]="bench/peers/tfp_glow.py --mode=graph"
  [tfp_glow_xla]="bench/peers/tfp_glow.py --mode=xla"
  [normflows_glow]="bench/peers/normflows_glow.py"
  [normflows_glow_t1]="bench/peers/normflows_glow.py --threads=1"
)

failed=0
run() {  # run NAME ARGS...
  local name=$1; shift
  echo "== $(date -u +%FT%TZ) $name: $PY $* --wait_idle_s=$WAIT_IDLE_S --out=$OUT/$name.json"
  if ! $PY "$@" --wait_idle_s="$WAIT_IDLE_S" --out="$OUT/$name.json" 2>"$OUT/$name.stderr.log"; then
    echo "FAILED: $name (see $OUT/$name.stderr.log)"; failed=1
  fi
}

if [[ $ONLY == all || $ONLY == throughput ]]; then
  for p in $PEERS; do
    run "${p}_throughput" ${CMD[$p]} --figure=throughput --repeats="$REPEATS" --warmup="$WARMUP"
  done
fi
if [[ $ONLY == all || $ONLY == quality ]]; then
  for p in $PEERS; do
    run "${p}_quality" ${CMD[$p]} --figure=quality --budget_s="$BUDGET_S"
  done
fi

$PY bench/peers/summarize.py "$OUT"
exit $failed
