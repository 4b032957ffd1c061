#!/usr/bin/env python3
"""Replication lag across two emulated regions: a steady rate of UpdateUserAttributes through
region A's proxy (boto3), replicated by A's proxy to B's inbound queue and applied by B's
replicator; lag = B's apply time − A's success time, as the replicator reports it (JSON log
`lag_ms` per applied event, and its Prometheus summary on RELAY_METRICS_LISTEN).

    .venv/bin/python bench/replication_lag.py [--rate 5 --seconds 30 --users 5]

Strict moto stands in for both regions (~150-300 calls/s in all): keep the rate modest.
Uses the release binaries (RELAY_PROFILE=release).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
import time
import urllib.request

from _common import OUT, save, table

os.environ.setdefault("RELAY_PROFILE", "release")
os.environ.setdefault("RELAY_TEST_LOG", "info")


from tests.harness.relay import start_proxy, start_replicator  # noqa: E402
from tests.harness.stack import app_client, client, free_port, latest_code, provision_pair, start_strict_moto, stop_strict_moto  # noqa: E402

PASSWORD = "Corr3ct-Horse!1"


def applied(log_path: str, action: str) -> list[int]:
    """lag_ms of every event of `action` the replicator logged as applied."""
    out = []
    with open(log_path, "rb") as f:
        for raw in f:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            fields = line.get("fields", line)
            if fields.get("message") == "event applied" and fields.get("action") == action and "lag_ms" in fields:
                out.append(int(fields["lag_ms"]))
    return out


def q(sorted_values: list[int], p: float) -> int:
    if not sorted_values:
        return 0
    rank = max(1, min(len(sorted_values), -(-int(p * 1000) * len(sorted_values) // 1000)))
    return sorted_values[rank - 1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=5.0, help="attribute updates per second")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--users", type=int, default=5)
    args = ap.parse_args()
    assert 0 < args.rate <= 20 and 0 < args.seconds <= 120 and 1 <= args.users <= 20

    workdir = tempfile.mkdtemp(prefix="relay-lag-", dir=OUT if os.path.isdir(OUT) else None)
    started = []
    motos = []
    try:
        motos = [start_strict_moto(free_port(), log_path=os.path.join(workdir, f"moto-{n}.log")) for n in ("a", "b")]
        a, b = provision_pair(motos[0].endpoint, "eu-west-1", motos[1].endpoint, "eu-central-1", "username")
        metrics_port = free_port()
        proxy_a = start_proxy(a, b, os.path.join(workdir, "proxy-a.log"), RUST_LOG="warn")
        started.append(proxy_a)
        rep_log = os.path.join(workdir, "replicator-b.log")
        rep_b = start_replicator(b, rep_log, RELAY_METRICS_LISTEN=f"127.0.0.1:{metrics_port}")
        started.append(rep_b)

        idp = app_client(proxy_a.url, "eu-west-1")
        tokens = []
        for i in range(args.users):
            username = f"lag{i}-{os.getpid()}"
            idp.sign_up(ClientId=a["public_client_id"], Username=username, Password=PASSWORD, UserAttributes=[{"Name": "email", "Value": f"{username}@example.com"}, {"Name": "name", "Value": "start"}])
            idp.confirm_sign_up(ClientId=a["public_client_id"], Username=username, ConfirmationCode=latest_code(a["endpoint"], a["pool_id"], username, "SIGN_UP"))
            auth = idp.initiate_auth(ClientId=a["public_client_id"], AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD})
            tokens.append((username, auth["AuthenticationResult"]["AccessToken"]))
        # Let the sign-ups reach B before the measured phase.
        deadline = time.monotonic() + 60
        while len(applied(rep_log, "ConfirmSignUp")) < args.users and time.monotonic() < deadline:
            time.sleep(0.2)

        total = int(args.rate * args.seconds)
        interval = 1.0 / args.rate
        call_ms, errors = [], 0
        t0 = time.monotonic()
        last_value = {}
        for i in range(total):
            due = t0 + i * interval
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            username, token = tokens[i % len(tokens)]
            value = f"v{i}"
            c0 = time.monotonic()
            try:
                idp.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": "name", "Value": value}])
                last_value[username] = value
            except Exception as e:  # noqa: BLE001 - counted and reported
                errors += 1
                print("    update failed:", e)
            call_ms.append((time.monotonic() - c0) * 1e3)
        sent_for = time.monotonic() - t0
        deadline = time.monotonic() + 60
        while len(applied(rep_log, "UpdateUserAttributes")) < total - errors and time.monotonic() < deadline:
            time.sleep(0.2)
        drained = time.monotonic() - t0 - sent_for

        lags = sorted(applied(rep_log, "UpdateUserAttributes"))
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        scraped = {m.group(1): float(m.group(2)) for m in re.finditer(r'relay_replication_lag_ms\{quantile="([0-9.]+)"\} ([0-9.e+-]+)', metrics)}
        count = re.search(r"relay_replication_lag_ms_count (\d+)", metrics)
        admin_b = client("cognito-idp", b["endpoint"], "eu-central-1")
        consistent = sum(
            1 for u, v in last_value.items()
            if {x["Name"]: x["Value"] for x in admin_b.admin_get_user(UserPoolId=b["pool_id"], Username=u)["UserAttributes"]}.get("name") == v
        )

        t1 = table(["updates sent", "rate (achieved)", "applied on B", "lag p50 ms", "lag p90 ms", "lag p99 ms", "lag max ms", "proxy call p50 / p99 ms"], [[
            f"{total} ({errors} failed)", f"{args.rate:g}/s ({total / sent_for:.2f}/s)", len(lags),
            q(lags, 0.5), q(lags, 0.9), q(lags, 0.99), lags[-1] if lags else "-",
            f"{statistics.median(call_ms):.0f} / {sorted(call_ms)[max(0, int(len(call_ms) * 0.99) - 1)]:.0f}",
        ]])
        notes = [
            f"{args.users} signed-up users updated round-robin through region A's proxy with boto3 for {args.seconds:g} s; lag = B's apply time − A's success time (ms clocks of one machine), from B's replicator JSON log (`lag_ms` of each applied UpdateUserAttributes).",
            f"B's /metrics summary over all {count.group(1) if count else '?'} applied events (sign-ups and confirmations included): p50 {scraped.get('0.5', 0):.0f} ms, p99 {scraped.get('0.99', 0):.0f} ms.",
            f"Queue drained {drained:.1f} s after the last update; B ended with the last value for {consistent}/{len(last_value)} users.",
            "Both regions are strict moto servers (Python, requests serialised): Cognito and SQS latencies here are the emulator's, not AWS's.",
        ]
        save("replication_lag", {"lags_ms": lags, "errors": errors, "scraped": scraped, "consistent": consistent, "table": t1, "notes": notes})
    finally:
        for p in reversed(started):
            p.stop()
        for m in motos:
            stop_strict_moto(m)


if __name__ == "__main__":
    main()
