#!/usr/bin/env bash
# Drill of the card link's exclusivity (issue 17, item 2), ROUNDS times over, each round on a
# fresh /dev/shm link file, against a keeper replaying the embedded demo (`liqscan run`):
#   1. two cards on one file: the second must exit refusing (naming the file and the first
#      card's pid) and the keeper's digest must be a software-only run's, with 0 fail-overs;
#   2. the card stopped by SIGTERM: its file stays, the keeper refuses it saying no card serves
#      it; a new card reuses it (generation 2) and the keeper's digest is right;
#   3. take-over mid-run: with a 30 s watchdog, the keeper's card (the one of case 2, so this
#      keeper is its second) is killed (SIGKILL) mid-replay and a new card takes the file at once; the keeper must fail over once, on the generation
#      change (not the watchdog), and end with the software digest.
# Prints one line per case and round, and exits 1 at the first failure.
#
#   scripts/card-link-drill.sh [ROUNDS] [ACCOUNTS]      default 5 rounds, 2000 accounts
#
# DRILL_BIN=path skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
accounts=${2:-2000}
[ -n "${DRILL_BIN:-}" ] || cargo build --release --bin liqscan
work=$(mktemp -d /tmp/liqscan-card-drill.XXXXXX)
cp "${DRILL_BIN:-${CARGO_TARGET_DIR:-target}/release/liqscan}" "$work/liqscan"
bin=$work/liqscan
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

fail() { echo "card-link-drill: FAIL: $*"; echo "work directory: $work"; exit 1; }
digest() { grep -o 'digest [0-9a-f]*' "$1" | tail -1; }
failovers() { grep -o '[0-9]* fail-overs' "$1" | tail -1; }
card() { # card FILE LOG: starts a card; its pid in $!
  "$bin" card --shm "$1" --accounts "$accounts" >/dev/null 2>"$2" &
}
served() { # waits until the card logging to $1 says it serves
  for _ in $(seq 400); do grep -qs '^emulated card .* serving' "$1" && return 0; sleep 0.05; done
  return 1
}

"$bin" run --demo-accounts "$accounts" --backend software >"$work/ref.out" 2>&1
want=$(digest "$work/ref.out")
msgs=$(grep -o '[0-9]* messages (' "$work/ref.out" | head -1 | grep -o '^[0-9]*')
echo "card-link-drill: reference ${want}, ${msgs} messages, ${accounts} accounts, in $work"

for r in $(seq "$rounds"); do
  f=/dev/shm/liqscan-drill-$$-$r

  # 1. Two cards at once.
  card "$f" "$work/a-$r.err"; a=$!; pids+=("$a")
  served "$work/a-$r.err" || fail "round $r: the first card never served"
  card "$f" "$work/b-$r.err"; b=$!; pids+=("$b")
  for _ in $(seq 100); do kill -0 "$b" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$b" 2>/dev/null && fail "round $r: a second card is serving $f"
  rc=0; wait "$b" || rc=$?
  [ "$rc" != 0 ] || fail "round $r: the second card exited 0"
  grep -q "already served by another card (pid $a, " "$work/b-$r.err" || fail "round $r: refusal: $(cat "$work/b-$r.err")"
  "$bin" run --demo-accounts "$accounts" --backend shm --shm "$f" >"$work/two-$r.out" 2>&1
  got=$(digest "$work/two-$r.out")
  [ "$got" = "$want" ] || fail "round $r: two cards: $got, want $want"
  echo "round $r two cards: second card refused (rc $rc), keeper $got, $(failovers "$work/two-$r.out")"

  # 2. SIGTERM leaves the file; the keeper refuses it; the next card reuses it.
  kill -TERM "$a"; wait "$a" 2>/dev/null || true
  [ -e "$f" ] || fail "round $r: no file left after SIGTERM (expected one, to reuse)"
  if "$bin" run --demo-accounts "$accounts" --backend shm --shm "$f" >"$work/stale-$r.out" 2>&1; then
    fail "round $r: a keeper ran on a file no card serves"
  fi
  grep -q "no card is serving this link file" "$work/stale-$r.out" || fail "round $r: stale: $(tail -2 "$work/stale-$r.out")"
  card "$f" "$work/c-$r.err"; c=$!; pids+=("$c")
  served "$work/c-$r.err" || fail "round $r: the next card never served"
  grep -q "reusing stale link file $f (its last card, pid $a, id " "$work/c-$r.err" || fail "round $r: $(cat "$work/c-$r.err")"
  "$bin" run --demo-accounts "$accounts" --backend shm --shm "$f" >"$work/reuse-$r.out" 2>&1
  got=$(digest "$work/reuse-$r.out")
  [ "$got" = "$want" ] || fail "round $r: reused file: $got, want $want"
  echo "round $r stale file: keeper refused it, next card reused it (generation 2), keeper $got"

  # 3. A new card takes the file mid-run. The keeper is the second on card c, which still
  # holds the first keeper's book: the engine must clear it at start.
  t0=$(date +%s%N)
  "$bin" run --demo-accounts "$accounts" --backend shm --shm "$f" --watchdog-ms 30000 \
    --pace "fixed:$(( msgs / 3 ))" >"$work/take-$r.out" 2>&1 &
  k=$!; pids+=("$k")
  sleep 1
  kill -9 "$c"; wait "$c" 2>/dev/null || true
  card "$f" "$work/d-$r.err"; d=$!; pids+=("$d")
  wait "$k" || fail "round $r: the keeper failed: $(tail -3 "$work/take-$r.out")"
  secs=$(( ($(date +%s%N) - t0) / 1000000000 ))
  got=$(digest "$work/take-$r.out")
  [ "$got" = "$want" ] || fail "round $r: take-over: $got, want $want"
  [ "$(failovers "$work/take-$r.out")" = "1 fail-overs" ] || fail "round $r: $(failovers "$work/take-$r.out")"
  grep -q "was taken by another card (generation 2 -> 3" "$work/take-$r.out" || fail "round $r: fail-over reason: $(grep -i fail-over "$work/take-$r.out")"
  [ "$secs" -lt 25 ] || fail "round $r: the keeper took ${secs} s: the watchdog, not the generation?"
  echo "round $r take-over: 1 fail-over on the generation change, keeper $got, ${secs} s"
  kill -9 "$d"; wait "$d" 2>/dev/null || true
  rm -f "$f"
done
echo "card-link-drill: $rounds rounds passed"
rm -rf "$work"
