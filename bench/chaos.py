"""Chaos benchmark (not a test): the scenario of tests/e2e/test_chaos.py at scale.

    .venv/bin/python bench/chaos.py [--users 50] [--mutations 1000] [--cut 60] [--throttle 200]

Two strict moto regions and the debug binaries (`cargo build --workspace`). Prints acked /
lost / fallback / stale-skipped / DLQ counts and the phases' durations, and exits non-zero
when the standby did not converge or anything but the forged event reached the DLQ."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import _common  # noqa: F401  (puts the repository root on sys.path)

from tests.harness import chaos


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--mutations", type=int, default=1000)
    ap.add_argument("--cut", type=float, default=60.0, help="seconds B's network is cut")
    ap.add_argument("--throttle", type=int, default=200, help="Cognito calls B throttles")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--converge", type=float, default=600.0)
    ap.add_argument("--kind", choices=["email", "username"], default="email")
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="relay-chaos-bench-")
    print(f"chaos: {args.users} users, {args.mutations} mutations, {args.cut:.0f} s cut; logs in {workdir}", flush=True)
    s = chaos.ChaosStack(workdir, args.kind)
    ok = True
    t0 = time.time()
    try:
        try:
            report, users = chaos.run(s, args.users, args.mutations, args.cut, args.throttle, args.converge, args.workers,
                                      log=lambda m: print(m, flush=True))
        except AssertionError as e:
            print(f"DID NOT CONVERGE: {e}")
            return 1
        wrong = [u.key for u in users if not chaos.signs_in(s, u.key, u.passwords[-1]) or chaos.signs_in(s, u.key, u.passwords[-2])]
        diffs = chaos.differences(s, users)
        ok = not wrong and not diffs and report.dlq_depth == 1 and report.proxy.get("lost", 0) == 0
        print(report.line() + f" total_s={time.time() - t0:.1f}")
        print(json.dumps({"acked": report.acked, "errors": len(report.errors), "lost": report.proxy.get("lost", 0),
                          "fallback": report.proxy.get("fallback", 0), "enqueued": report.proxy.get("enqueued", 0),
                          "stale_skipped": report.stale_skipped, "dlq": report.dlq_depth, "wrong_password_on_b": len(wrong),
                          "pool_differences": len(diffs), **{f"{k}_s": round(v, 1) for k, v in report.seconds.items()}}))
    finally:
        s.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
