#!/bin/bash
# The fourth digits search of issue 19 (bench/results/digits_search4.md): structure and
# dequantizer changes to the default recipe of the third search (Real NVP 2 levels x 4 couplings,
# 8 logistics, 45 epochs). Each run is `python train.py` in a fresh process through
# bench/digits_recipes.py (its records: ROOT/LABEL.json, .md). The md's row of a dequantizer
# with mixture couplings ran on a branch whose option was not kept: it is not in this script.
#     bash bench/digits_search4.sh /tmp/digits_search4
set -euo pipefail
ROOT=${1:?usage: bash bench/digits_search4.sh ROOT}
cd "$(dirname "$0")/.."
source bench/digits_run.sh
L3S3=(model.num_levels=3 model.num_steps=3)
run dequantizer_8_steps default dequantizer.num_steps=8
run glow default model.family=glow
run levels_3 default model.num_levels=3
run levels_4 default model.num_levels=4
run levels_3_steps_3 default "${L3S3[@]}"
run levels_4_steps_3 default model.num_levels=4 model.num_steps=3
run levels_3_steps_3_60_epochs default "${L3S3[@]}" train.epochs=60
run levels_3_steps_3_60_epochs_4_logistics default "${L3S3[@]}" train.epochs=60 \
  model.mixture_components=4
run levels_3_steps_3_60_epochs_dropout_0.1 default "${L3S3[@]}" train.epochs=60 \
  model.dropout_rate=0.1
run levels_3_steps_3_90_epochs_dropout_0.1 default "${L3S3[@]}" train.epochs=90 \
  model.dropout_rate=0.1
