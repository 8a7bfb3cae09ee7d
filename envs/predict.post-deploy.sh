#!/usr/bin/env bash
# Snakemake runs this inside the freshly created conda env (--use-conda / --sdm conda) from the
# directory it runs in, on a copy of this file under .snakemake/conda/. It installs mepr itself
# from this checkout, editable and without dependencies: the env file pins those for its stage,
# and mepr's own dependency list (the whole pipeline's) would not fit in one env.
set -euo pipefail
root=${MEPR_ROOT:-$PWD}
if ! grep -qs '^name = "mepr"' "$root/pyproject.toml"; then
  echo "mepr post-deploy: $root is not the mepr checkout; run snakemake from the checkout" \
    "or export MEPR_ROOT=/path/to/mepr" >&2
  exit 1
fi
python -m pip install --no-deps -e "$root"
