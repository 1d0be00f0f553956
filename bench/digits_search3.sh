#!/bin/bash
# The third digits search of issue 19 (bench/results/digits_search3.md): which recipe to make the
# default, within about 2 minutes on 2 cores. The affine default of 0.2 (now configs/affine_digits.py)
# against the mixture-of-logistics recipe (configs/logistic_mixture_digits.py, which is now the
# default trained 60 epochs) cut to the default's time and about twice it. Each run is `python
# train.py` in a fresh process through bench/digits_recipes.py (its records: ROOT/LABEL.json, .md).
#     bash bench/digits_search3.sh /tmp/digits_search3
set -euo pipefail
ROOT=${1:?usage: bash bench/digits_search3.sh ROOT}
cd "$(dirname "$0")/.."
source bench/digits_run.sh
run affine affine_digits
run mixture_25_epochs default train.epochs=25
run mixture_45_epochs default  # The default recipe (45 epochs): the md's rows 3 and 6.
run mixture_4_logistics_50_epochs default model.mixture_components=4 train.epochs=50
run mixture_rate_0.007 default train.learning_rate=0.007
run batch_128_80_epochs default train.batch_size=128 train.learning_rate=0.01 train.epochs=80
run batch_128_55_epochs default train.batch_size=128 train.learning_rate=0.01 train.epochs=55
