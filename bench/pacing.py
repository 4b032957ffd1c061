#!/usr/bin/env python3
"""Replicator pacing: the real `replication::apply` over N UpdateAttributes events against an
in-process fake pool enforcing Q calls/s per category in a sliding 1 s window (the `pacing`
bench binary), with the pacer at Q, then with pacing off.

    .venv/bin/python bench/pacing.py [--events 2000 --q 100 --concurrency 8]
"""

from __future__ import annotations

import argparse

from _common import release_bin, run_json, save, table, verdict


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--q", type=float, default=100.0)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    def cmd(concurrency: int) -> list[str]:
        return [release_bin("pacing"), "--events", str(args.events), "--q", str(args.q), "--concurrency", str(concurrency), "--max-seconds", "120"]

    base = cmd(args.concurrency)
    on = run_json(base + ["--q-pacer", str(args.q), "--label", "paced"], 150)
    off = run_json(base + ["--q-pacer", "0", "--label", "unpaced"], 150)
    storm_c = args.concurrency * 8
    storm_base = cmd(storm_c)
    storm_on = run_json(storm_base + ["--q-pacer", str(args.q), "--label", "paced-wide"], 150)
    storm = run_json(storm_base + ["--q-pacer", "0", "--label", "unpaced-wide"], 150)

    def row(name: str, x: dict) -> list:
        return [name, x["applied"], x["failed"], f"{x['elapsed_s']:.1f}", f"{x['rate']:.1f}", f"{x['rate_over_q']:.3f}", x["calls"], x["throttled"]]

    t1 = table(["run", "applied", "failed after retries", "seconds", "applied/s", "applied/s ÷ Q", "calls to the pool", "throttled calls"], [row(f"pacer at Q = {args.q:.0f}/s, {args.concurrency} tasks", on), row(f"pacing off, {args.concurrency} tasks", off), row(f"pacer at Q, {storm_c} tasks", storm_on), row(f"pacing off, {storm_c} tasks", storm)])
    t2 = table(["target", "measured", "goal", "verdict"], [
        ["paced rate", f"{on['rate_over_q']:.3f} Q", "≥ 0.95 Q", verdict(on["rate_over_q"] >= 0.95)],
        ["paced failures", str(on["failed"]), "0", verdict(on["failed"] == 0)],
    ])
    notes = [
        f"{args.events} events for distinct existing users, {args.concurrency} concurrent apply tasks; each event costs 1 UserRead (get_user) + 1 UserUpdate call; the fake quota is Q = {args.q:.0f}/s per category over a sliding 1 s window (throttled calls are not admitted and do not count toward it).",
        "apply retries retryable errors 5 times (exponential backoff 50 ms..2 s with jitter); the pacer is a token bucket whose burst is 0.1 s of quota (at least 1 token).",
    ]
    save("pacing", {"paced": on, "unpaced": off, "paced_wide": storm_on, "unpaced_wide": storm, "table": t1 + "\n\n" + t2, "notes": notes})


if __name__ == "__main__":
    main()
