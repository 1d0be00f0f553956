#!/usr/bin/env bash
# The whole comparison in one command: every peer figure and every tfp_flows figure, each in its
# own fresh process, strictly one after another (parallel runs on 2 cores corrupt each other's
# timings), then one side-by-side table (bench/summarize.py) written to $OUT/summary.md.
#
#   bash bench/run_all.sh                         # everything (~70 min plus idle waits)
#   ONLY=throughput bash bench/run_all.sh         # only the throughput figures
#   ONLY=extras bash bench/run_all.sh             # only scaling, FLOPs and graph sizes
#   ENTRIES="tfp_flows_glow_graph tfp_glow_graph" bash bench/run_all.sh
#
# Env: OUT (default bench/results), BUDGET_S (quality budget, default 120), REPEATS (5), WARMUP
# (2), WAIT_IDLE_S (each run first waits up to this long for other processes to leave the CPU
# idle, default 300; the CPU share other processes took during each measurement is recorded in
# its JSON either way), ENTRIES (subset of the names below), ONLY (all|throughput|quality|
# extras). The extras are bench/scaling.py, bench/flops.py, bench/graph_report.py,
# bench/inference.py and bench/train_interleaved.py (TF's default threads; run them with
# --intra_op_threads=1 too) and bench/memory.py (~30 min).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
BUDGET_S=${BUDGET_S:-120}
REPEATS=${REPEATS:-5}
WARMUP=${WARMUP:-2}
WAIT_IDLE_S=${WAIT_IDLE_S:-300}
ONLY=${ONLY:-all}
PY=${PYTHON:-python}
ENTRIES=${ENTRIES:-tfp_flows_glow_graph tfp_flows_glow_xla tfp_flows_glow_graph_tf_defaults \
tfp_glow_graph tfp_glow_xla tfp_glow_graph_intra1 tfp_glow_xla_intra1 normflows_glow \
normflows_glow_t1 tfp_flows_glow_graph_default}
mkdir -p "$OUT"

# entry -> command. tfp_flows runs with its default recipe's runtime settings (configs/
# default.py: 8 steps per call into TF, one thread per op) unless the entry says otherwise;
# TFP is run with TF's default thread pools and with the same one-thread-per-op setting, so
# each library is judged at its best.
OURS="--steps_per_execution=8"
declare -A CMD=(
  [tfp_flows_glow_graph]="bench/tfp_flows_glow.py --mode=graph $OURS --intra_op_threads=1"
  [tfp_flows_glow_xla]="bench/tfp_flows_glow.py --mode=xla $OURS"
  [tfp_flows_glow_graph_tf_defaults]="bench/tfp_flows_glow.py --mode=graph"
  [tfp_flows_glow_graph_default]="bench/tfp_flows_glow.py --mode=graph --recipe=default $OURS \
--intra_op_threads=1"
  [tfp_glow_graph]="bench/peers/tfp_glow.py --mode=graph"
  [tfp_glow_xla]="bench/peers/tfp_glow.py --mode=xla"
  [tfp_glow_graph_intra1]="bench/peers/tfp_glow.py --mode=graph --intra_op_threads=1"
  [tfp_glow_xla_intra1]="bench/peers/tfp_glow.py --mode=xla --intra_op_threads=1"
  [normflows_glow]="bench/peers/normflows_glow.py"
  [normflows_glow_t1]="bench/peers/normflows_glow.py --threads=1"
)
QUALITY_ONLY=" tfp_flows_glow_graph_default "
THROUGHPUT_ONLY=" tfp_flows_glow_graph_tf_defaults tfp_glow_xla_intra1 "

failed=0
run() {  # run NAME ARGS...
  local name=$1; shift
  echo "== $(date -u +%FT%TZ) $name: $PY $* --wait_idle_s=$WAIT_IDLE_S --out=$OUT/$name.json"
  if ! $PY "$@" --wait_idle_s="$WAIT_IDLE_S" --out="$OUT/$name.json" 2>"$OUT/$name.stderr.log"; then
    echo "FAILED: $name (see $OUT/$name.stderr.log)"; failed=1
  fi
}

if [[ $ONLY == all || $ONLY == throughput ]]; then
  for e in $ENTRIES; do
    [[ $QUALITY_ONLY == *" $e "* ]] && continue
    run "${e}_throughput" ${CMD[$e]} --figure=throughput --repeats="$REPEATS" --warmup="$WARMUP"
  done
fi
if [[ $ONLY == all || $ONLY == quality ]]; then
  for e in $ENTRIES; do
    [[ $THROUGHPUT_ONLY == *" $e "* ]] && continue
    run "${e}_quality" ${CMD[$e]} --figure=quality --budget_s="$BUDGET_S"
  done
fi

if [[ $ONLY == all || $ONLY == extras ]]; then
  for x in scaling flops graph_report peers/tfp_glow_pitfalls inference train_interleaved memory; do
    n=$(basename "$x")
    echo "== $(date -u +%FT%TZ) $n: $PY bench/$x.py --out=$OUT/$n.json"
    if ! $PY "bench/$x.py" --out="$OUT/$n.json" >"$OUT/$n.log" 2>"$OUT/$n.stderr.log"; then
      echo "FAILED: $n (see $OUT/$n.stderr.log)"; failed=1
    fi
  done
fi

$PY bench/summarize.py "$OUT" | tee "$OUT/summary.md"
exit $failed
