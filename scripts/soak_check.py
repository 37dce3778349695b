#!/usr/bin/env python3
"""Checks a scripts/soak-run.sh work directory against its uninterrupted reference run.

    soak_check.py WORK RUNS

Exit status 1 and a line per failure if any check fails (see soak-run.sh for the checks).
"""
import collections
import json
import re
import sys
from pathlib import Path

# Anonymous resident memory may grow this much after a run's start-up (allocator noise), and
# no more.
GROWTH_LIMIT_KIB = 8 * 1024
STARTUP_MS = 3000


def lines(path):
    out = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line cut by a kill
    return out


def final_set(events):
    s = set()
    for e in events:
        (s.add if e["event"] == "breach" else s.discard)(e["slot"])
    return s


def main():
    work, runs = Path(sys.argv[1]), int(sys.argv[2])
    fails = []
    ref_events = lines(work / "ref-out.jsonl")
    episodes = collections.Counter(e["slot"] for e in ref_events if e["event"] == "breach")
    ref_final = final_set(ref_events)
    ref_orders = collections.Counter(o["slot"] for o in lines(work / "ref-orders.jsonl"))
    orders = collections.Counter(o["slot"] for o in lines(work / "orders.jsonl"))
    resent = collections.Counter()
    failovers = 0
    startup_errors = []
    early_kills = 0
    for r in range(runs):
        err = (work / f"run-{r}.err").read_text(errors="replace")
        for m in re.finditer(r"journal: re-sent pending order \d+ \(slot (\d+)\)", err):
            resent[int(m.group(1))] += 1
        failovers += err.count("FAIL-OVER")
        opened = "recovered to record" in err or "book new journal" in err
        if not opened and "Error:" in err:
            startup_errors.append((r, err.strip().splitlines()[-1]))
        elif not opened:
            early_kills += 1  # killed while loading the workload, before its journal opened
    fin = final_set(lines(work / "out.jsonl"))
    if (work / "out.jsonl").read_bytes() != (work / "ref-out.jsonl").read_bytes():
        fails.append("the events file differs from the uninterrupted run's")
    accounts_of = collections.defaultdict(set)
    for o in lines(work / "orders.jsonl"):
        accounts_of[o["id"]].add(o["account"])
    reused = [i for i, a in accounts_of.items() if len(a) > 1]
    if reused:
        fails.append(f"{len(reused)} order ids name two accounts, e.g. {reused[:5]}")
    if fin != ref_final:
        fails.append(f"final breached set differs: {len(fin)} vs {len(ref_final)} slots, "
                     f"{sorted(fin ^ ref_final)[:10]}")
    for s, n in ref_orders.items():
        if n > episodes[s]:
            fails.append(f"uninterrupted run: slot {s}: {n} orders for {episodes[s]} breaches")
    twice = [(s, n, episodes[s] + resent[s]) for s, n in orders.items() if n > episodes[s] + resent[s]]
    for s, n, allowed in twice[:10]:
        fails.append(f"slot {s}: {n} orders for {allowed} breaches (+re-sends)")
    forgotten = sorted(s for s in ref_final if ref_orders[s] and not orders[s])
    if forgotten:
        fails.append(f"breached at the end, never ordered: {forgotten[:20]}")
    peak, worst = 0, (0, -1)
    for r in range(runs):
        f = work / f"rss-{r}.txt"
        if not f.exists():
            continue
        samples = [tuple(map(int, l.split())) for l in f.read_text().split("\n") if l.strip()]
        peak = max([peak] + [kib for _, kib in samples])
        after = [kib for ms, kib in samples if ms >= STARTUP_MS]
        if len(after) >= 2:
            growth = max(after) - after[0]
            worst = max(worst, (growth, r))
    if worst[0] > GROWTH_LIMIT_KIB:
        fails.append(f"run {worst[1]}: resident memory grew {worst[0]} KiB after start-up")
    print(f"soak-run: {sum(orders.values())} orders ({sum(ref_orders.values())} uninterrupted), "
          f"{sum(resent.values())} re-sent after restarts, {failovers} fail-overs, "
          f"{len(ref_final)} accounts breached at the end")
    if early_kills:
        print(f"soak-run: {early_kills} runs killed before they opened the journal")
    if startup_errors:
        print(f"soak-run: {len(startup_errors)} runs stopped at start-up with an error, e.g. "
              f"run {startup_errors[0][0]}: {startup_errors[0][1]}")
    print(f"soak-run: peak anonymous resident {peak / 1024:.1f} MiB, largest growth after start-up "
          f"{worst[0]} KiB (run {worst[1]})")
    for f in fails:
        print("FAIL:", f)
    print("soak-run: " + ("FAILED" if fails else "passed"))
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
