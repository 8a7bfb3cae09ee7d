#!/usr/bin/env bash
# Installs mepr into this env: envs/install-mepr.sh of the checkout ($MEPR_ROOT, or where snakemake runs).
root=${MEPR_ROOT:-$PWD}
[ -f "$root/envs/install-mepr.sh" ] || { echo "mepr post-deploy: $root is not the mepr checkout; run snakemake from it or export MEPR_ROOT=/path/to/mepr" >&2; exit 1; }
exec bash "$root/envs/install-mepr.sh" "$root"
