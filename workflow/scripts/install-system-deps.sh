#!/usr/bin/env bash
# System tools the workflow shells out to: ffmpeg (decode/mux), espeak-ng (demo speech).
# Also slurm-wlm and munge, for the SLURM profile's integration test (tests/test_slurm.py):
# installing them starts nothing; workflow/scripts/local-slurm.sh starts a private single-node
# cluster only when asked. MEPR_NO_SLURM=1 skips them (the test is then skipped).
set -euo pipefail
missing=()
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
slurm=()
if [ -z "${MEPR_NO_SLURM:-}" ]; then
  for tool in slurmctld slurmd sbatch; do
    command -v "$tool" >/dev/null || slurm=(slurm-wlm munge)
  done
  command -v munged >/dev/null || slurm=(slurm-wlm munge)
fi
[ ${#missing[@]} -eq 0 ] && [ ${#slurm[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${missing[*]} ${slurm[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" "${slurm[@]}" >/dev/null
elif [ ${#missing[@]} -gt 0 ]; then
  echo "mepr needs these system tools: ${missing[*]} (e.g. sudo apt-get install ${missing[*]}," >&2
  echo "or use the conda envs with --use-conda)" >&2
  exit 1
else
  echo "note: slurm-wlm/munge not installed (needs root and apt-get); the SLURM test is skipped" >&2
fi
