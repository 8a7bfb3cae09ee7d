#!/usr/bin/env bash
# Tools the test suite drives but the workflow does not need: a headless browser (Debian's
# chromium) that renders the prediction reports in tests/test_report.py. Idempotent: does
# nothing when a chromium is already on PATH (or named by $MEPR_CHROMIUM).
set -euo pipefail
if [ -n "${MEPR_CHROMIUM:-}" ] && command -v "$MEPR_CHROMIUM" >/dev/null; then
  exit 0
fi
for exe in chromium chromium-browser google-chrome; do
  command -v "$exe" >/dev/null && exit 0
done
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing chromium (headless browser for the report tests)"
  apt-get update -qq
  # fonts-dejavu-core: readable glyphs in screenshots even on a minimal image
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core >/dev/null
else
  echo "the report tests need chromium (e.g. sudo apt-get install chromium);" >&2
  echo "without it they are skipped" >&2
  exit 1
fi
