#!/usr/bin/env bash
# The NATS JetStream figures of issue 18 in one go (needs nats-server; scripts/setup-tools.sh):
#
#     scripts/bench-nats.sh [DEATH_RUNS] [THROUGHPUT_ACCOUNTS] [HOP_ORDERS]   (defaults: 10 20000 5000)
#
# (a) death to next order: two keepers on one venue's input stream, keeper A SIGKILLed at a
#     random moment of the paced demo crash; beside it, the same time from random moments of
#     the second before the kill (benches/nats_keepers.rs, "death");
# (b) the JetStream hop beside the direct TCP executor, order handed over to order read by
#     the service, one run (nats/benches/hop.rs);
# (c) orders per second through the bridge with two keepers' orders in the stream, and the
#     duplicates the server removed (benches/nats_keepers.rs, "throughput").
# Built with the test profile (optimised, shares the test build). Run it on a quiet machine:
# the figures are latencies.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10}"
accounts="${2:-20000}"
orders="${3:-5000}"
export LIQSCAN_REQUIRE_NATS=1
echo "== (a) death to next order, $runs kills"
cargo bench --profile test --bench nats_keepers -- death "$runs"
echo "== (b) JetStream hop vs direct TCP, $orders orders a path"
LIQSCAN_HOP_ORDERS="$orders" cargo bench --profile test -p liqscan-nats --bench hop
echo "== (c) orders per second through the bridge, demo crash of $accounts accounts"
cargo bench --profile test --bench nats_keepers -- throughput "$accounts"
