# Sourced by bench/digits_search.sh and digits_search2.sh (which set ROOT): `run LABEL RECIPE
# [KEY=VALUE ...]` trains configs/RECIPE.py with `--config.KEY=VALUE` overrides in a fresh
# `python train.py` process at nice 10, through bench/digits_recipes.py (records: ROOT/LABEL.json
# and .md).
run() {
  local label=$1 recipe=$2 sets=()
  shift 2
  for s in "$@"; do sets+=(--set "$s"); done
  python bench/digits_recipes.py --recipes "$recipe" --root "$ROOT/$label" --out "$ROOT/$label" \
    --nice 10 "${sets[@]}"
}
