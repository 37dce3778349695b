#!/usr/bin/env bash
# Kill drill for order ids and the events file (issue 17, items 1 and 5).
#
# Each round: an uninterrupted `liqscan run` of the demo workload writes the reference events;
# then a journaled run of the same workload, paced, is killed with SIGKILL at random moments
# KILLS times and run to the end with the same command line. Checks, per round:
#   - the final --out equals the uninterrupted run's, byte for byte (each event once, in order);
#   - no order id in the order file (appended to by every run) names two accounts.
#
# Usage: scripts/kill-drill-events.sh [ROUNDS] [KILLS]   (defaults 20 and 5)
# Environment: LIQSCAN (the binary; default target/release/liqscan), ACCOUNTS (default 2000),
# PACE (default fixed:10000).
set -euo pipefail
ROUNDS=${1:-20}
KILLS=${2:-5}
BIN=${LIQSCAN:-target/release/liqscan}
ACCOUNTS=${ACCOUNTS:-2000}
PACE=${PACE:-fixed:10000}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
printf '[dispatch]\nsettle_ns = 3600000000000\n' > "$W/c.toml"
args=(run --demo-accounts "$ACCOUNTS" --config "$W/c.toml")
"$BIN" "${args[@]}" --out "$W/ref.jsonl" 2>/dev/null
fail=0
total_kills=0
for round in $(seq 1 "$ROUNDS"); do
  rm -rf "$W/j" "$W/out.jsonl" "$W/orders.jsonl"
  kills=0
  for k in $(seq 1 "$KILLS"); do
    "$BIN" "${args[@]}" --pace "$PACE" --journal "$W/j" --out "$W/out.jsonl" \
      --executor "jsonl:$W/orders.jsonl" >/dev/null 2>"$W/err" &
    pid=$!
    # 50-900 ms after the start: before, during and after the journal is opened.
    sleep "0.$(printf '%03d' $((RANDOM % 850 + 50)))"
    if kill -KILL "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$pid" 2>/dev/null || true
  done
  "$BIN" "${args[@]}" --pace "$PACE" --journal "$W/j" --out "$W/out.jsonl" \
    --executor "jsonl:$W/orders.jsonl" >/dev/null 2>"$W/err" || { echo "round $round: final run failed"; cat "$W/err"; fail=1; continue; }
  total_kills=$((total_kills + kills))
  if ! cmp -s "$W/ref.jsonl" "$W/out.jsonl"; then
    echo "round $round: --out differs from the uninterrupted run ($(wc -l < "$W/out.jsonl") vs $(wc -l < "$W/ref.jsonl") lines)"
    fail=1
  fi
  python3 - "$W/orders.jsonl" "$round" <<'PY' || fail=1
import json, sys
seen = {}
bad = 0
n = 0
for line in open(sys.argv[1]):
    try:
        o = json.loads(line)
    except ValueError:
        continue  # a line cut by the kill
    n += 1
    a = seen.setdefault(o["id"], o["account"])
    if a != o["account"]:
        bad += 1
if bad:
    print(f"round {sys.argv[2]}: {bad} order lines reuse an id of another account")
    sys.exit(1)
PY
  echo "round $round: $kills kills, out $(wc -l < "$W/out.jsonl") lines equal: $(cmp -s "$W/ref.jsonl" "$W/out.jsonl" && echo yes || echo no), orders $(wc -l < "$W/orders.jsonl")"
done
echo "$ROUNDS rounds, $total_kills kills: $([ $fail = 0 ] && echo PASS || echo FAIL)"
exit $fail
