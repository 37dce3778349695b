#!/usr/bin/env bash
# Regenerates the scan core's Verilog from the rust-hdl sources.
#   scripts/gen-verilog.sh [OUT.v]     (default: build/verilog/liqscan_core.v)
# BUILD_ID is the low 32 bits of the current git commit (0 when not in a git checkout).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/build/verilog/liqscan_core.v}
mkdir -p "$(dirname "$OUT")"
BUILD_ID=$(git -C "$ROOT" rev-parse --short=8 HEAD 2>/dev/null || echo 0)
cd "$ROOT"
LIQSCAN_BUILD_ID=$BUILD_ID cargo run -q -p liqscan-hdl --example gen_verilog -- "$OUT"
