#!/usr/bin/env bash
# System tools the workflow shells out to: ffmpeg (decode/mux), espeak-ng (demo speech).
set -euo pipefail
missing=()
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "mepr needs these system tools: ${missing[*]} (e.g. sudo apt-get install ${missing[*]}," >&2
  echo "or use the conda envs with --use-conda)" >&2
  exit 1
fi
