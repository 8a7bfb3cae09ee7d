#!/usr/bin/env bash
# What every envs/X.post-deploy.sh does. Snakemake runs a post-deploy script inside the freshly
# created conda env (--use-conda / --sdm conda) from the directory it runs in, on a copy of the
# script under .snakemake/conda/. This installs mepr itself from the checkout, editable and
# without dependencies: the env file pins those for its stage, and mepr's own dependency list
# (the whole pipeline's) would not fit in one env.
set -euo pipefail
root=$1
if ! grep -qs '^name = "mepr"' "$root/pyproject.toml"; then
  echo "mepr post-deploy: $root is not the mepr checkout; export MEPR_ROOT=/path/to/mepr" >&2
  exit 1
fi
python -m pip install --no-deps -e "$root"
