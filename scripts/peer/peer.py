#!/usr/bin/env python3
"""The whole job as a risk team would write it with polars + numpy: read the book, weight each
leg by its side's weight, pivot to one row per account, compute every account's health in
float64 after every tick, count breaches. The peer of `liqscan scan` in
scripts/bench-whole-job.sh. Handles the default tier (the generated book has no other).

With --band it also counts breaches at the edges of docs/RISK_MODEL.md's rounding band (slower;
the bench runs it apart from the timed run): liqscan's integer health lies in
[real - band, real], so its breached set lies between {h < 0} and {h < band}."""
import argparse, json, sys, time, tomllib

import numpy as np
import polars as pl

ap = argparse.ArgumentParser()
ap.add_argument("--venue", required=True)
ap.add_argument("--accounts", required=True)
ap.add_argument("--ticks", required=True)
ap.add_argument("--band", action="store_true")
a = ap.parse_args()

t0 = time.perf_counter()
venue = tomllib.load(open(a.venue, "rb"))
assets = [x["symbol"] for x in venue["assets"]]
col = {s: i for i, s in enumerate(assets)}
weight = {s: x["tiers"]["default"] for s, x in zip(assets, venue["assets"])}
book = pl.read_csv(a.accounts, schema_overrides={"account": pl.String, "asset": pl.String, "balance": pl.Float64})
t_read = time.perf_counter()
aw = pl.col("asset").replace_strict({s: float(w["asset_weight"]) for s, w in weight.items()})
lw = pl.col("asset").replace_strict({s: float(w["liability_weight"]) for s, w in weight.items()})
legs = book.with_columns(c=pl.col("balance") * pl.when(pl.col("balance") > 0).then(aw).otherwise(lw))
wide = legs.pivot(on="asset", index="account", values="c", aggregate_function="sum", maintain_order=True)
C = wide.select([s for s in assets if s in wide.columns]).fill_null(0.0).to_numpy()
cols = [col[s] for s in assets if s in wide.columns]
ticks = pl.read_csv(a.ticks, schema_overrides={"asset": pl.String, "price": pl.Float64})
t_pivot = time.perf_counter()

prices = np.zeros(len(cols))
where = {assets[c]: i for i, c in enumerate(cols)}
unpriced = set(where)
prev = np.zeros(len(C), bool)
ever = np.zeros(len(C), bool)
events = 0
if a.band:
    v = 10.0 ** venue["venue"].get("value_exp", -8)
    qe = np.array([venue["assets"][c]["quantum_exp"] for c in cols], float)
    r, q = v / 10.0**qe, 10.0**qe  # price quantum, coefficient quantum
    held = C != 0
    lo_prev, hi_prev = prev.copy(), prev.copy()
    lo_ever, hi_ever = ever.copy(), ever.copy()
    lo_events = hi_events = in_band = 0
for sym, p in zip(ticks["asset"].to_list(), ticks["price"].to_list()):
    if sym not in where:
        continue
    prices[where[sym]] = p
    unpriced.discard(sym)
    h = C @ prices
    if unpriced:
        continue  # as liqscan: no events until every held asset has a price
    now = h < 0
    events += int(np.count_nonzero(now & ~prev))
    ever |= now
    prev = now
    if a.band:
        band = np.abs(C) @ r + held @ (prices * q + v)
        lo, hi = h < -1e-6, h < band  # 1e-6: far above float64's error, far below a quantum
        lo_events += int(np.count_nonzero(lo & ~lo_prev))
        hi_events += int(np.count_nonzero(hi & ~hi_prev))
        in_band += int(np.count_nonzero(lo != hi))
        lo_ever |= lo
        hi_ever |= hi
        lo_prev, hi_prev = lo, hi
t_end = time.perf_counter()

out = {
    "accounts": len(C),
    "ticks": ticks.height,
    "read_csv_s": t_read - t0,
    "pivot_s": t_pivot - t_read,
    "ticks_s": t_end - t_pivot,
    "total_s": t_end - t0,
    "breach_events": events,
    "accounts_breached": int(np.count_nonzero(ever)),
    "breached_at_end": int(np.count_nonzero(prev)),
}
if a.band:
    out["band"] = {
        "breach_events": [lo_events, hi_events],
        "accounts_breached": [int(np.count_nonzero(lo_ever)), int(np.count_nonzero(hi_ever))],
        "breached_at_end": [int(np.count_nonzero(lo_prev)), int(np.count_nonzero(hi_prev))],
        # (account, tick) pairs inside the band: an event count may differ by at most twice this
        "in_band": in_band,
    }
json.dump(out, sys.stdout)
print()
