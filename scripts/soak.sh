#!/usr/bin/env bash
# Soak with fault injection: the journal drill runs paced, is killed with SIGKILL at random
# moments and restarted; after every kill the journal is recovered and compared with a run
# that never stopped (state and bitmaps). At the end: every order dispatched reached the venue
# exactly once (a re-send only for one found pending after a kill, deduplicated by id), and
# resident memory stayed flat within each run.
#
#   scripts/soak.sh [SECONDS] [RATE]      default 600 s at 20,000 records/s
#
# Kills come every 2..12 s (uniform). The work directory is printed; remove it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
rate=${2:-20000}
# SOAK_BIN=path skips the build (a binary built earlier).
[ -n "${SOAK_BIN:-}" ] || cargo build --release --bin liqscan
work=$(mktemp -d /tmp/liqscan-soak.XXXXXX)
# A private copy: a rebuild in a shared target directory must not swap the binary mid-soak.
cp "${SOAK_BIN:-${CARGO_TARGET_DIR:-target}/release/liqscan}" "$work/liqscan"
bin=$work/liqscan
"$bin" journal-drill --help >/dev/null || { echo "soak: $bin has no journal-drill subcommand"; exit 1; }
echo "soak: ${secs} s at ${rate} records/s in $work"
end=$(( $(date +%s) + secs ))
kills=0
run_secs=0
while [ "$(date +%s)" -lt "$end" ]; do
  "$bin" journal-drill run --dir "$work" --rate "$rate" 2>>"$work/run.err" &
  pid=$!
  nap=$(( 2 + RANDOM % 11 ))
  left=$(( end - $(date +%s) ))
  [ "$nap" -gt "$left" ] && nap=$(( left > 1 ? left : 1 ))
  sleep "$nap"
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  kills=$(( kills + 1 ))
  run_secs=$(( run_secs + nap ))
  "$bin" journal-drill check --dir "$work" >>"$work/check.log"
done
"$bin" journal-drill check --dir "$work" --final | tee -a "$work/check.log"
records=$(grep -o 'recovered to record [0-9]*' "$work/check.log" | tail -1 | grep -o '[0-9]*$')
echo "soak: $kills kills, $records records in ${run_secs} s of running: $(( records / (run_secs > 0 ? run_secs : 1) )) records/s held"
echo "soak: torn tails cut: $(grep -c 'torn tail' "$work/check.log" || true)"
