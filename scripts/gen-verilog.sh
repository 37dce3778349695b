#!/usr/bin/env bash
# Regenerates the scan core's Verilog from the rust-hdl sources.
#   scripts/gen-verilog.sh [OUT.v] [lane_bits]   (default: build/verilog/liqscan_core.v, 4 = 16 lanes)
# LIQSCAN_TOP=card writes the whole card (front end and core) instead of the core alone.
# lane_bits (1..=5) is passed to the crate's build as LIQSCAN_LANE_BITS (hdl/src/abi/config.rs);
# OUT.v.config gets the configuration compiled in.
# BUILD_ID is the low 32 bits of the current git commit (0 when not in a git checkout).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/build/verilog/liqscan_core.v}
mkdir -p "$(dirname "$OUT")"
BUILD_ID=$(git -C "$ROOT" rev-parse --short=8 HEAD 2>/dev/null || echo 0)
cd "$ROOT"
if [ -n "${2:-}" ]; then export LIQSCAN_LANE_BITS=$2; else unset LIQSCAN_LANE_BITS; fi
CARD=()
if [ "${LIQSCAN_TOP:-core}" = card ]; then CARD=(--card); fi
LIQSCAN_BUILD_ID=$BUILD_ID cargo run -q -p liqscan-hdl --example gen_verilog -- "${CARD[@]}" "$OUT"
