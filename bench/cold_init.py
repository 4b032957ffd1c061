#!/usr/bin/env python3
"""Lambda cold init: spawn of the release `proxy` (and `replicator`) binary with
AWS_LAMBDA_RUNTIME_API set → its first GET /2018-06-01/runtime/invocation/next on a fake
Runtime API (the `coldstart` bench binary), repeated; plus where the proxy's init goes
(`init-probe`, the same steps in a fresh process, timed one by one).

    .venv/bin/python bench/cold_init.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os

from _common import release_bin, run_json, save, table, verdict
from tests.harness.stack import DUMMY_CREDENTIALS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "AWS_"))}
    env.update({
        "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["aws_secret_access_key"],
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_REGION": "eu-west-1",
        "RELAY_REGION": "eu-west-1",
        "RELAY_USER_POOL_ID": "eu-west-1_bench",
        "RELAY_CLIENTS_SECRET_ID": "cognito-relay/clients",
        "RELAY_REPLICATION_KEY_SECRET_ID": "cognito-relay/replication-key",
        "RELAY_COGNITO_ENDPOINT": "http://127.0.0.1:9/",
        "RUST_LOG": "warn",
    })
    # --fake-secrets points RELAY_AWS_ENDPOINT at an in-process fake Secrets Manager: the proxy
    # does no I/O at init; the replicator reads its replication key there before polling.
    timeout = 15 * args.runs + 30
    proxy = run_json([release_bin("coldstart"), "--binary", release_bin("proxy"), "--runs", str(args.runs), "--fake-secrets", "--label", "proxy"], timeout, env)
    repl = run_json([release_bin("coldstart"), "--binary", release_bin("replicator"), "--runs", str(args.runs), "--fake-secrets", "--label", "replicator"], timeout, env)
    probe = run_json([release_bin("coldstart"), "--binary", release_bin("init-probe"), "--runs", str(args.runs), "--fake-secrets", "--probe", "--label", "init-probe"], timeout, env)

    def row(name: str, x: dict) -> list:
        return [name, x["runs"], f"{x['p50_ms']:.1f}", f"{x['p90_ms']:.1f}", f"{x['max_ms']:.1f}", f"{x['min_ms']:.1f}", x["failures"]]

    t1 = table(["binary", "runs", "p50 ms", "p90 ms", "max ms", "min ms", "failures"], [row("proxy", proxy), row("replicator (reads its key from a loopback fake Secrets Manager)", repl)])
    t2 = table(["proxy init step (fresh process, median of runs)", "ms"], [
        ["tokio runtime", f"{probe['runtime_ms_p50']:.2f}"],
        ["logging + Config::from_env", f"{probe['logging_ms_p50'] + probe['config_ms_p50']:.2f}"],
        ["first relay_aws::sdk_config (AWS SDK config load)", f"{probe['sdk_config_first_ms_p50']:.2f}"],
        ["a bare reqwest::Client (loads the TLS root store)", f"{probe['reqwest_client_ms_p50']:.2f}"],
        ["proxy::build after those were warm (SDK config again, SDK clients, its reqwest client)", f"{probe['proxy_build_after_warm_ms_p50']:.2f}"],
        ["whole probe process, spawn → exit", f"{probe['spawn_to_exit_ms_p50']:.2f}"],
    ])
    t3 = table(["target", "measured", "goal", "verdict"], [["proxy cold init p50 / max", f"{proxy['p50_ms']:.1f} / {proxy['max_ms']:.1f} ms", "≤ 20 ms", verdict(proxy["p50_ms"] <= 20) + ("" if proxy["max_ms"] <= 20 else " at p50, not at max")]])
    notes = [
        "Measured from just before the spawn to the arrival of the whole `invocation/next` request head, loopback; no Lambda sandbox, no binary download, no Firecracker: real cold starts add the platform's own init.",
        "The replicator fetches its replication key before polling: here from a loopback fake; in AWS that is one Secrets Manager round trip more.",
    ]
    save("cold_init", {"proxy": proxy, "replicator": repl, "probe": probe, "table": t1 + "\n\n" + t2 + "\n\n" + t3, "notes": notes})


if __name__ == "__main__":
    main()
