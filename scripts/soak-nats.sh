#!/usr/bin/env bash
# Soak of the NATS fault drills: the default tests run each drill once at seed 18; this runs
# them again and again at other seeds for as long as asked, each run a fresh loopback
# nats-server (started and stopped by the test itself). A drill checks, against a
# single-keeper run of the same feed, that every breach episode got exactly one order at the
# service, none lost and none twice:
#   - two keepers, one killed with SIGKILL at a random moment (and restarted);
#   - the same with the NATS server killed and restarted mid-run;
#   - one keeper paused with SIGSTOP past the server's acknowledgement time-out, then resumed;
#   - a keeper reading its inputs from the stream killed mid-stream, and across a server
#     restart: it resumes after its last applied sequence with the events and book of one
#     that read the whole stream once.
#
#   scripts/soak-nats.sh [SECONDS] [FIRST_SEED]     default 1800 s from seed 1
#
# Stops at the first failing seed and prints it (rerun with LIQSCAN_SEED=N cargo test ...).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-1800}
seed=${2:-1}
command -v nats-server >/dev/null || scripts/setup-tools.sh
export LIQSCAN_REQUIRE_NATS=1
cargo test --no-run --test nats_keepers --test nats_inputs
end=$(( $(date +%s) + secs ))
runs=0
while [ "$(date +%s)" -lt "$end" ]; do
    if ! LIQSCAN_SEED=$seed cargo test -q --test nats_keepers --test nats_inputs \
        -- two_keepers resumes reads_on >"/tmp/liqscan-soak-nats.$seed.log" 2>&1; then
        echo "soak-nats: seed $seed FAILED after $runs passing seeds; log /tmp/liqscan-soak-nats.$seed.log"
        exit 1
    fi
    rm -f "/tmp/liqscan-soak-nats.$seed.log"
    runs=$(( runs + 1 ))
    echo "soak-nats: seed $seed passed ($runs so far)"
    seed=$(( seed + 1 ))
done
echo "soak-nats: $runs seeds passed in ${secs} s (every drill, each seed)"
