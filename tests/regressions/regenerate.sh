#!/usr/bin/env bash
# Re-create the regression inputs: the first random-walk finding of each known bug.
# Run after an intentional engine change (bump fuzzer.ENGINE_VERSION), then review the diff.
set -euo pipefail
cd "$(dirname "$0")"
MF=${MIGFUZZ:-../../.venv/bin/migfuzz}
while read -r variant scenario; do
  "$MF" run --scenario "$scenario" --variant "$variant" --count 5000 \
    --save "${variant}__${scenario}.json" >/dev/null || true
  test -s "${variant}__${scenario}.json" || { echo "no finding for $variant $scenario" >&2; exit 1; }
done <<'LIST'
blocking-lock cross-mm-opposite
v5.15 dirty-page
v5.16 dirty-page
v5.15 madvise-race
v5.16 madvise-race
v5.15 dp-fault-race
v5.16 dp-fault-race
v5.15 thp-collect-race
v5.16 thp-collect-race
v6.1 thp-collect-race
mainline h2-split-window
mainline h2-split-uaf
mainline migrate-swapcache
mainline drain-livelock
LIST
