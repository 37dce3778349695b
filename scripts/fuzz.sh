#!/usr/bin/env bash
# Runs every fuzz target for a set time and prints executions per target.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default 300 s, all targets
#
# Uses cargo-fuzz (libFuzzer) with RUSTC_BOOTSTRAP=1 on a stable toolchain; installs
# cargo-fuzz if it is missing. When libFuzzer cannot be built, falls back to the same bodies
# driven by plain random bytes (fuzz/src/random_bytes.rs). Crashes land in
# fuzz/artifacts/TARGET/; turn each into a regression test in host/tests/journal_fuzz_regressions.rs
# (or the decoder's own tests) before fixing it.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-300}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(ring_command ring_event journal_records io_venue io_accounts io_ticks io_bars wire_frame engine_scan scenario sweep options)
fi
export RUSTC_BOOTSTRAP=1
mode=libfuzzer
if ! command -v cargo-fuzz >/dev/null; then cargo install cargo-fuzz || mode=random; fi
if [ "$mode" = libfuzzer ] && ! cargo fuzz build -O >/dev/null 2>&1; then mode=random; fi
if [ "$mode" = random ]; then cargo build --release --bin random_bytes; fi
mkdir -p corpus logs
# Seeds: the example inputs, so the readers start from valid files.
mkdir -p corpus/io_venue corpus/io_accounts corpus/io_ticks corpus/scenario corpus/sweep
{ printf '\0'; cat ../examples/venue.toml; } > corpus/io_venue/example.toml
{ printf '\0'; cat ../examples/accounts.csv; } > corpus/io_accounts/example.csv
{ printf '\0'; cat ../examples/usdc.csv; } > corpus/io_ticks/example.csv
for f in ../scenarios/*.toml; do
  case "$f" in */sweep-*) { printf '\0'; cat "$f"; } > "corpus/sweep/$(basename "$f")" ;;
    *) { printf '\0'; cat "$f"; } > "corpus/scenario/$(basename "$f")" ;; esac
done
for t in "${targets[@]}"; do
  if [ "$mode" = libfuzzer ]; then
    mkdir -p "corpus/$t"
    cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 -max_len=4096 -rss_limit_mb=2048 \
      >"logs/$t.log" 2>&1 && status=ok || status=FAILED
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || true)
    [ -n "$execs" ] || execs=$(grep -Eo '^#[0-9]+' "logs/$t.log" | tail -1 | tr -d '#' || true)
    # FAILED: a crash (artifact in fuzz/artifacts/$t/) or a build error; the log says which.
    echo "$t: $status, ${execs:-?} executions in $secs s (libFuzzer), log fuzz/logs/$t.log"
  else
    target/release/random_bytes "$t" "$secs" 2>&1 | sed 's/$/ (random bytes)/' || echo "$t: CRASH"
  fi
done
