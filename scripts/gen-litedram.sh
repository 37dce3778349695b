#!/usr/bin/env bash
# Generates a LiteDRAM standalone DDR3 controller (Verilog) for a board's memory.
#   scripts/gen-litedram.sh [board]        boards: orangecrab-85f (default)
# Reads scripts/litedram/<board>.yml (the controller's configuration, each value explained there)
# and writes build/litedram/<board>/ (gateware/litedram_core.v, its CSR map and init code).
# LIQSCAN_DRAM_SYS_MHZ overrides the configuration's sys clock (a trial: the PHY's DDR3 rate is
# 4 x sys) and writes build/litedram/<board>-sys<MHz>/ instead.
# LIQSCAN_DRAM_PORT_BITS overrides the width of the native user port `terms` (128: the
# controller's own width, so LiteDRAM puts no up-converter in front of it) and writes
# build/litedram/<board>[-sys<MHz>]-port<bits>/.
# Installs litex, litedram and migen (PyPI, pinned; litedram brings pyyaml) into scripts/.tools/venv
# (the venv scripts/build-bitstream.sh uses). Idempotent: installed packages and an up-to-date
# core are kept.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BOARD=${1:-orangecrab-85f}
CONFIG=$ROOT/scripts/litedram/$BOARD.yml
[ -f "$CONFIG" ] || { echo "gen-litedram: no configuration $CONFIG for board '$BOARD'" >&2; exit 2; }
LITEX_VER=2024.12
LITEDRAM_VER=2024.12
MIGEN_VER=0.10.0
VENV=$ROOT/scripts/.tools/venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys, yaml
want = {'litex': '$LITEX_VER', 'litedram': '$LITEDRAM_VER', 'migen': '$MIGEN_VER'}
sys.exit(any(m.version(k) != v for k, v in want.items()))" 2>/dev/null; then
    "$VENV/bin/pip" install -q "litex==$LITEX_VER" "litedram==$LITEDRAM_VER" "migen==$MIGEN_VER"
fi
SYS_MHZ=${LIQSCAN_DRAM_SYS_MHZ:-}
PORT_BITS=${LIQSCAN_DRAM_PORT_BITS:-}
case "$PORT_BITS" in
    ''|64|128) ;;
    *) echo "gen-litedram: LIQSCAN_DRAM_PORT_BITS must be 64 or 128 (the controller's width); got '$PORT_BITS'" >&2; exit 2 ;;
esac
OUT=$ROOT/build/litedram/$BOARD${SYS_MHZ:+-sys$SYS_MHZ}${PORT_BITS:+-port$PORT_BITS}
mkdir -p "$OUT"
# The configuration litedram_gen reads: the repository's, or a copy with the sys clock or the
# port width overridden;
# rewritten only when its content changes, so an unchanged core is not regenerated.
"$VENV/bin/python" - "$CONFIG" "$OUT/config.yml" "$SYS_MHZ" "$PORT_BITS" <<'PY'
import sys, yaml
src, dst, mhz, bits = sys.argv[1:]
text = open(src).read()
if mhz or bits:
    conf = yaml.safe_load(text)
    if mhz:
        conf["sys_clk_freq"] = float(mhz) * 1e6
    if bits:
        conf["user_ports"]["terms"]["data_width"] = int(bits)
    text = yaml.safe_dump(conf, sort_keys=False)
try:
    same = open(dst).read() == text
except FileNotFoundError:
    same = False
if not same:
    open(dst, "w").write(text)
PY
if [ -s "$OUT/gateware/litedram_core.v" ] && [ "$OUT/gateware/litedram_core.v" -nt "$OUT/config.yml" ]; then
    echo "gen-litedram: $OUT/gateware/litedram_core.v is up to date" >&2
    exit 0
fi
# litedram_gen writes gateware/ and software/ under --output-dir; it runs no synthesis
# (the generator turns compile_gateware off).
"$VENV/bin/litedram_gen" --output-dir "$OUT" --name litedram_core "$OUT/config.yml" >"$OUT/litedram_gen.log" 2>&1 \
    || { tail -20 "$OUT/litedram_gen.log" >&2; echo "gen-litedram: litedram_gen failed (log: $OUT/litedram_gen.log)" >&2; exit 1; }
echo "gen-litedram: wrote $OUT/gateware/litedram_core.v" >&2
