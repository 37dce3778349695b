#!/usr/bin/env bash
# The whole job side by side: `liqscan scan` (release) and the peer script a risk team would
# write (scripts/peer/peer.py, polars + numpy) on identical generated files, in one run.
#
#     scripts/bench-whole-job.sh [ACCOUNTS] [TICKS]        (defaults: 1000000 500)
#
# Generates the book with `liqscan gen-book` into build/bench-whole-job/N/ (ignored by git),
# runs both under /usr/bin/time -v (peak memory), prints their times and breach counts, then
# runs the peer once more with --band (not timed) to show that liqscan's counts lie inside the
# rounding band of docs/RISK_MODEL.md. Exits non-zero when they do not.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
ticks="${2:-500}"
dir="build/bench-whole-job/$n"
py="$(scripts/peer/setup.sh)"
cargo build --release --quiet --bin liqscan
bin="${CARGO_TARGET_DIR:-target}/release/liqscan"
mkdir -p "$dir"
if [ ! -s "$dir/ticks.csv" ]; then
    "$bin" gen-book --accounts "$n" --ticks "$((ticks - 4))" --dir "$dir"
fi
cpu() { awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$1"; }
peak() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$1"; }
wall() {
    awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s}' "$1"
}

echo "== liqscan scan: $n accounts, $ticks ticks"
/usr/bin/time -v "$bin" scan --venue "$dir/venue.toml" --accounts "$dir/accounts.csv" \
    --ticks "$dir/ticks.csv" --out /dev/null --json 2> "$dir/liqscan.time" > "$dir/liqscan.json"
echo "== peer (polars + numpy)"
/usr/bin/time -v "$py" scripts/peer/peer.py --venue "$dir/venue.toml" --accounts "$dir/accounts.csv" \
    --ticks "$dir/ticks.csv" 2> "$dir/peer.time" > "$dir/peer.json"
echo "== liqscan run: the keeper on the same files (engine, dispatch to the discard executor, events)"
/usr/bin/time -v "$bin" run --venue "$dir/venue.toml" --accounts "$dir/accounts.csv" \
    --ticks "$dir/ticks.csv" --out /dev/null 2> "$dir/keeper.time" > /dev/null
echo "== peer with the rounding band (not timed)"
"$py" scripts/peer/peer.py --venue "$dir/venue.toml" --accounts "$dir/accounts.csv" \
    --ticks "$dir/ticks.csv" --band > "$dir/band.json"

"$py" - "$dir" "$(wall "$dir/liqscan.time")" "$(peak "$dir/liqscan.time")" "$(cpu "$dir/liqscan.time")" \
    "$(wall "$dir/peer.time")" "$(peak "$dir/peer.time")" "$(cpu "$dir/peer.time")" \
    "$(wall "$dir/keeper.time")" "$(peak "$dir/keeper.time")" "$(cpu "$dir/keeper.time")" <<'PY'
import json, re, sys
d, lw, lm, lc, pw, pm, pc = sys.argv[1], float(sys.argv[2]), sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), sys.argv[6], float(sys.argv[7])
kw, km, kc = float(sys.argv[8]), sys.argv[9], float(sys.argv[10])
l = json.load(open(f"{d}/liqscan.json"))
p = json.load(open(f"{d}/peer.json"))
b = json.load(open(f"{d}/band.json"))["band"]
print(f"\n{'':24}{'liqscan':>14}{'peer':>14}")
print(f"{'whole job, wall (s)':24}{lw:>14.2f}{pw:>14.2f}   ratio {pw / lw:.1f}x")
print(f"{'whole job, CPU (s)':24}{lc:>14.2f}{pc:>14.2f}   ratio {pc / lc:.1f}x (user + system)")
print(f"{'peak memory (MiB)':24}{lm:>14}{pm:>14}")
print(f"{'read accounts (s)':24}{l['read_ms'] / 1e3:>14.3f}{p['read_csv_s']:>14.3f}   (peer: polars.read_csv)")
print(f"{'engine load / pivot (s)':24}{l['engine_load_ms'] / 1e3:>14.3f}{p['pivot_s']:>14.3f}")
print(f"{'ticks (s)':24}{l['ticks_ms'] / 1e3:>14.3f}{p['ticks_s']:>14.3f}")
keeper = open(f"{d}/keeper.time").read()
kb = re.search(r"(\d+) breach events", keeper)
ko = re.search(r"(\d+) orders built", keeper)
print(f"\nliqscan run (the keeper): wall {kw:.2f} s, CPU {kc:.2f} s, peak {km} MiB; "
      f"{ko.group(1) if ko else '?'} orders to the discard executor")
# The keeper and `liqscan scan` run the same engine on the same files: the same breach events.
ok = kb is not None and int(kb.group(1)) == l["stats"]["breaches"]
print(f"keeper breach events {kb.group(1) if kb else 'missing'} vs scan {l['stats']['breaches']}: "
      f"{'equal' if ok else 'DIFFERENT'}")
lq = {"breach_events": l["stats"]["breaches"], "accounts_breached": l["stats"]["accounts_breached"],
      "breached_at_end": l["breached_at_end"]}
print(f"\n{'':24}{'liqscan':>14}{'peer':>14}   band [real < 0, real < band]")
for k in ["breach_events", "accounts_breached", "breached_at_end"]:
    lo, hi = b[k]
    if k == "breach_events":
        # Events are transitions: an account inside the band may cross it back and forth, so
        # the counts may differ by at most twice the (account, tick) pairs inside the band.
        inside = abs(lq[k] - p[k]) <= 2 * b["in_band"]
        note = f"|diff| {abs(lq[k] - p[k])} <= 2 x {b['in_band']} in-band (account, tick) pairs"
    else:
        inside = lo <= lq[k] <= hi
        note = f"[{lo}, {hi}]"
    ok &= inside
    print(f"{k:24}{lq[k]:>14}{p[k]:>14}   {note}: {'inside' if inside else 'OUTSIDE'}")
print("\ncounts differ only inside the rounding band" if ok else "\nCOUNTS DIFFER OUTSIDE THE ROUNDING BAND")
sys.exit(0 if ok else 1)
PY
