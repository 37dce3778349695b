#!/usr/bin/env bash
# Soak of the whole keeper: `liqscan run --journal` over the embedded demo, paced so the feed
# lasts about SECONDS, with its card as a separate `liqscan card` process on a /dev/shm link.
# At random moments (every 2..12 s) the card is killed with SIGKILL (the run's watchdog must
# fail over to the software engine) and then the host is killed with SIGKILL; both are
# restarted with the same command line and the run resumes from its journal. After SECONDS a
# last run takes the rest of the feed unpaced. Then scripts/soak_check.py compares the result
# with an uninterrupted run of the same feed:
#   - the final breached set is the same, and the events file (one for every run, continued
#     by each restart) equals the uninterrupted run's byte for byte;
#   - no order id names two accounts;
#   - no account got more orders than it had breaches (plus the pending orders a restart
#     reported re-sending): `settle_ns` is an hour here, so one order per breach is the
#     uninterrupted run's own bound (checked too);
#   - every account breached at the end that the uninterrupted run ordered was ordered;
#   - each host run's anonymous resident memory stayed flat after its start-up.
# A run that stops at start-up with an error is counted and reported, not failed: it journaled
# nothing. (A card that does not answer its first fence within 5 s, on a starved machine, no
# longer stops a run: the run fails over to the software engine at start-up.)
#
#   scripts/soak-run.sh [SECONDS] [ACCOUNTS]      default 600 s, 2000 accounts
#
# SOAK_BIN=path skips the build. The work directory is printed; remove it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
accounts=${2:-2000}
[ -n "${SOAK_BIN:-}" ] || cargo build --release --bin liqscan
work=$(mktemp -d /tmp/liqscan-soak-run.XXXXXX)
# A private copy: a rebuild in a shared target directory must not swap the binary mid-soak.
cp "${SOAK_BIN:-${CARGO_TARGET_DIR:-target}/release/liqscan}" "$work/liqscan"
bin=$work/liqscan
printf '[dispatch]\nsettle_ns = 3600000000000\n' >"$work/liqscan.toml"
common=(run --config "$work/liqscan.toml" --demo-accounts "$accounts")

"$bin" "${common[@]}" --out "$work/ref-out.jsonl" --executor "jsonl:$work/ref-orders.jsonl" 2>"$work/ref.err"
msgs=$(grep -o '[0-9]* messages (' "$work/ref.err" | head -1 | grep -o '^[0-9]*')
rate=$(( msgs / secs > 0 ? msgs / secs : 1 ))
echo "soak-run: ${msgs} messages at ${rate}/s (about ${secs} s), ${accounts} accounts, in $work"

# Anonymous resident memory of a process (RssAnon: the journal's mapped segments and the
# card link are file pages, counted apart), sampled every 0.5 s until it exits.
sample_rss() {
  local pid=$1 out=$2 t0
  t0=$(date +%s%N)
  while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$rss" ] && echo "$(( ($(date +%s%N) - t0) / 1000000 )) $rss" >>"$out"
    sleep 0.5
  done
}

end=$(( $(date +%s) + secs ))
run=0
host_kills=0
card_kills=0
while :; do
  last=0
  [ "$(date +%s)" -ge "$end" ] && last=1
  link=/dev/shm/liqscan-soak-$$-$run
  "$bin" card --shm "$link" --accounts "$accounts" 2>"$work/card-$run.err" &
  card=$!
  for _ in $(seq 100); do [ -s "$link" ] && break; sleep 0.05; done
  pace="fixed:$rate"
  # The last run takes what is left of the feed as fast as it comes.
  [ "$last" = 1 ] && pace=flood
  "$bin" "${common[@]}" --backend shm --shm "$link" --watchdog-ms 200 --pace "$pace" \
    --journal "$work/journal" --out "$work/out.jsonl" --executor "jsonl:$work/orders.jsonl" \
    >/dev/null 2>"$work/run-$run.err" &
  host=$!
  sample_rss "$host" "$work/rss-$run.txt" &
  sampler=$!
  if [ "$last" = 1 ]; then
    wait "$host" || { echo "soak-run: the last run failed:"; cat "$work/run-$run.err"; exit 1; }
  else
    nap=$(( 2 + RANDOM % 11 ))
    if [ $(( RANDOM % 2 )) = 0 ]; then
      # The card dies first, somewhere in the nap; the host must carry on in software.
      first=$(( 1 + RANDOM % nap ))
      sleep "$first"
      kill -9 "$card" 2>/dev/null && card_kills=$(( card_kills + 1 ))
      sleep $(( nap - first ))
    else
      sleep "$nap"
    fi
    if kill -9 "$host" 2>/dev/null; then
      host_kills=$(( host_kills + 1 ))
    fi
    { wait "$host"; } 2>/dev/null || true
  fi
  kill -9 "$card" 2>/dev/null || true
  { wait "$card"; } 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  rm -f "$link"
  run=$(( run + 1 ))
  [ "$last" = 1 ] && break
done
echo "soak-run: $run host runs, $host_kills host kills, $card_kills card kills"
python3 scripts/soak_check.py "$work" "$run"
