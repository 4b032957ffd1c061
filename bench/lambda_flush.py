#!/usr/bin/env python3
"""The Lambda publishing guarantee's cost: invocation latency of the proxy under a fake Lambda
Runtime API, with the event stream off vs on (each request waits for its own event's PutEvents
call, RELAY_EVENTS_FLUSH_MS), against EventBridge served by moto on loopback.

    .venv/bin/python bench/lambda_flush.py [--invocations 300] [--profile release|debug]

Requests are ones the proxy answers itself (an Admin* target → NotAuthorizedException), so
Cognito's (moto's) latency is not in the numbers: the difference is the event's PutEvents round
trip to the bus. Sequential invocations, as Lambda sends them to one instance.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time

from _common import OUT, ROOT, save, table  # noqa: E402  (sets sys.path)
from tests.harness.fake_lambda import FakeRuntime, rest_event
from tests.harness.relay import proxy_env
from tests.harness.stack import client, free_port, provision_pair, start_strict_moto, stop_strict_moto


def run(binary: str, env: dict, n: int, log: str) -> list[float]:
    rt = FakeRuntime()
    p = subprocess.Popen([binary], env={**env, **rt.env("proxy")}, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        ev = rest_event("POST", "/", {"content-type": "application/x-amz-json-1.1", "x-amz-target": "AWSCognitoIdentityProviderService.AdminDeleteUser"}, "{}", "198.51.100.7")
        for _ in range(20):  # warm-up: connections, secrets
            rt.invoke(ev)
        out = []
        for _ in range(n):
            t = time.perf_counter()
            kind, resp = rt.invoke(ev)
            out.append((time.perf_counter() - t) * 1e3)
            assert kind == "response" and resp["statusCode"] == 400, resp
        return out
    finally:
        p.kill()
        p.wait()
        rt.close()


def q(v: list[float], p: float) -> float:
    s = sorted(v)
    return s[min(len(s) - 1, int(p * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--invocations", type=int, default=300)
    ap.add_argument("--profile", default="release")
    args = ap.parse_args()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    binary = os.path.join(target, args.profile, "proxy")
    moto_a, moto_b = start_strict_moto(free_port()), start_strict_moto(free_port())
    try:
        a, b = provision_pair(moto_a.endpoint, "eu-west-1", moto_b.endpoint, "eu-central-1", "username")
        events = client("events", a["endpoint"], a["region"])
        events.create_event_bus(Name="relay-events")
        env = proxy_env(a, b, 0, AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH="true", RUST_LOG="warn")
        env.pop("RELAY_LISTEN")
        os.makedirs(OUT, exist_ok=True)
        res = {}
        for rnd in range(2):  # alternate: off, on, off, on
            for name, extra in (("off", {}), ("on (flush ≤ 200 ms)", {"RELAY_EVENTS_BUS": "relay-events"})):
                res.setdefault(name, []).extend(run(binary, {**env, **extra}, args.invocations // 2, os.path.join(OUT, f"lambda-flush-{rnd}-{len(extra)}.log")))
        rows = [[k, len(v), f"{statistics.median(v):.2f}", f"{q(v, 0.9):.2f}", f"{q(v, 0.99):.2f}", f"{max(v):.2f}"] for k, v in res.items()]
        off, on = res["off"], res["on (flush ≤ 200 ms)"]
        t = table(["events", "invocations", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows)
        t += "\n\n" + table(["cost of publishing within the invocation", "ms"], [["added p50", f"{statistics.median(on) - statistics.median(off):+.2f}"], ["added p99", f"{q(on, 0.99) - q(off, 0.99):+.2f}"]])
        notes = [
            f"{args.profile} proxy binary under the fake Lambda Runtime API (tests/harness/fake_lambda.py), one request at a time; latency is the harness's invoke round trip (event queued → response posted), so it includes the fake runtime's own overhead, equal in both rows.",
            "The bus is moto's EventBridge on loopback: the added time is the proxy's cost plus a loopback PutEvents to moto (Python). Against EventBridge in the same region, expect its round trip instead (typically ~10–30 ms), bounded by RELAY_EVENTS_FLUSH_MS (200 ms).",
        ]
        save("lambda_flush", {"latency_ms": res, "table": t, "notes": notes})
    finally:
        stop_strict_moto(moto_a)
        stop_strict_moto(moto_b)


if __name__ == "__main__":
    main()
