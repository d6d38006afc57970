#!/bin/sh
# How docs/nightly-report.png is made: a short reproducible night (--runs, no clock) with two
# catalog bugs injected, its report deleted and written again from the history alone by
# `migfuzz report`, then rendered by headless chromium (`make browser` installs it).
#   sh docs/nightly-report.sh [WORKDIR]      (default /tmp/demo; run from the repository root)
set -eu
work=${1:-/tmp/demo}
migfuzz=${MIGFUZZ:-.venv/bin/migfuzz}
rm -rf "$work/nightly"
"$migfuzz" nightly --runs 300 --jobs 1 --fixes all --bug page-lock-under-anon-vma \
    --bug unlock-before-remove --out "$work/nightly" >/dev/null || [ $? -eq 1 ]  # 1: new findings
rm -r "$work/nightly/report"
"$migfuzz" report --db "$work/nightly/history.sqlite" --out "$work/nightly/report"
profile=$(mktemp -d)
chromium --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars \
    --user-data-dir="$profile" --screenshot="$PWD/docs/nightly-report.png" \
    --window-size=1280,2500 "file://$work/nightly/report/index.html" 2>/dev/null
rm -rf "$profile"
