#!/usr/bin/env bash
# Kill drill for order ids and the events file (issue 17, items 1 and 5).
#
# Each round: an uninterrupted `liqscan run` of the demo workload writes the reference events;
# then a journaled run of the same workload, paced, is killed with SIGKILL at random moments
# (300-1,299 ms after each start) KILLS times and run to the end with the same command line. Checks, per round:
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
total_opened=0
for round in $(seq 1 "$ROUNDS"); do
  rm -rf "$W/j" "$W/out.jsonl" "$W/orders.jsonl"
  kills=0
  opened=0
  for k in $(seq 1 "$KILLS"); do
    "$BIN" "${args[@]}" --pace "$PACE" --journal "$W/j" --out "$W/out.jsonl" \
      --executor "jsonl:$W/orders.jsonl" >/dev/null 2>"$W/err" &
    pid=$!
    # 300-1,299 ms after the start. A restart spends about 0.65 s recovering (book journal,
    # events file, orders journal) before the replay goes on; a fresh run replays for ~1.5 s.
    t=$((RANDOM % 1000 + 300))
    sleep "$((t / 1000)).$(printf '%03d' $((t % 1000)))"
    if kill -KILL "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$pid" 2>/dev/null || true
    # Kills that landed after the run had opened its journal and events file.
    if grep -q "^events " "$W/err"; then opened=$((opened + 1)); fi
  done
  "$BIN" "${args[@]}" --pace "$PACE" --journal "$W/j" --out "$W/out.jsonl" \
    --executor "jsonl:$W/orders.jsonl" >/dev/null 2>"$W/err" || { echo "round $round: final run failed"; cat "$W/err"; fail=1; continue; }
  total_kills=$((total_kills + kills))
  total_opened=$((total_opened + opened))
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
echo "$ROUNDS rounds, $total_kills kills ($total_opened after the restart had continued the events file): $([ $fail = 0 ] && echo PASS || echo FAIL)"
exit $fail
