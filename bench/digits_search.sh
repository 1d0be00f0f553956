#!/bin/bash
# The digits search of issue 19 (bench/results/digits_search.md): configs/logistic_mixture_digits.py
# (the recipe before this search) with one change at a time, then the best changes together, and
# the best regularisation on the affine and spline recipes. Each run is `python train.py` in a fresh
# process through bench/digits_recipes.py (its records: ROOT/LABEL.json and .md). About 4 minutes a
# run on 2 idle cores.
#     bash bench/digits_search.sh /tmp/digits_search
set -euo pipefail
ROOT=${1:?usage: bash bench/digits_search.sh ROOT}
cd "$(dirname "$0")/.."
source bench/digits_run.sh
M=logistic_mixture_digits
# The recipe as it was before this search (no dropout, no EMA, 4 logistics at rate 0.003; it now
# sets dropout and EMA from this search and more from the second): every run on it names them.
OLD=(model.dropout_rate=0.0 train.ema_momentum=None model.mixture_components=4
  train.learning_rate=0.003)
run dropout_0.05 $M "${OLD[@]}" model.dropout_rate=0.05
run dropout_0.1 $M "${OLD[@]}" model.dropout_rate=0.1
run dropout_0.2 $M "${OLD[@]}" model.dropout_rate=0.2
run ema_0.999 $M "${OLD[@]}" train.ema_momentum=0.999
run weight_decay_0.05 $M "${OLD[@]}" train.weight_decay=0.05
run width_48 $M "${OLD[@]}" model.hidden_channels=48
run width_96 $M "${OLD[@]}" model.hidden_channels=96
run dequantizer_64 $M "${OLD[@]}" dequantizer.hidden_channels=64
run dequantizer_uniform $M "${OLD[@]}" dequantizer.kind=uniform
run dropout_0.1_ema_0.99 $M "${OLD[@]}" model.dropout_rate=0.1 train.ema_momentum=0.99
run dropout_0.05_ema_0.99 $M "${OLD[@]}" model.dropout_rate=0.05 train.ema_momentum=0.99
run dropout_0.05_width_96 $M "${OLD[@]}" model.dropout_rate=0.05 model.hidden_channels=96
run affine_dropout_0.1 affine_digits model.dropout_rate=0.1
run spline_dropout_0.1 spline_digits model.dropout_rate=0.1
