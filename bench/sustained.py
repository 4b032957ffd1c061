#!/usr/bin/env python3
"""Sustained load (issue 12, point 6): the standalone release proxy for 60 s at 5,000 req/s
against the stub upstream, mutations included (SignUp, replicated to the stub's SQS
SendMessage), with the proxy's RSS sampled every second. Prints a table; not a test.

    .venv/bin/python bench/sustained.py [--duration 60] [--rate 5000] [--signup-share 0.2]

Needs `cargo build --release -p proxy -p bench` and the venv (a strict moto serves Secrets
Manager). Two loadgens run side by side: InitiateAuth at (1 - share) of the rate, SignUp at the
share. Pass criteria: 0 errors, every SignUp's event reached the stub queue, RSS of the last
10 s within 10 % (+ 2 MB) of the first 10 s after warm-up.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import subprocess
import threading
import time
import urllib.request

from _common import OUT, release_bin, run_json  # noqa: E402  (sets sys.path)
from tests.harness.relay import wait_http
from tests.harness.stack import DUMMY_CREDENTIALS, client, free_port, start_strict_moto, stop_strict_moto


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=5000.0)
    ap.add_argument("--signup-share", type=float, default=0.2)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    procs: list[subprocess.Popen] = []
    moto = None
    try:
        moto_port, stub_port, proxy_port = free_port(), free_port(), free_port()
        moto = start_strict_moto(moto_port)
        endpoint, region = f"http://127.0.0.1:{moto_port}", "eu-west-1"
        sm = client("secretsmanager", endpoint, region)
        sm.create_secret(Name="cognito-relay/clients", SecretString=json.dumps({"clients": [{"public_client_id": "pub", "client_id": "reg", "client_secret": "s"}]}))
        sm.create_secret(Name="cognito-relay/replication-key", SecretString=json.dumps({"current": "k1", "keys": {"k1": base64.b64encode(secrets.token_bytes(32)).decode()}}))
        stub = subprocess.Popen([release_bin("stub-upstream"), "--listen", f"127.0.0.1:{stub_port}", "--threads", "1", "--max-seconds", str(int(args.duration + 120))], stdout=subprocess.DEVNULL)
        procs.append(stub)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "AWS_"))}
        env.update({
            "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["aws_secret_access_key"],
            "AWS_EC2_METADATA_DISABLED": "true",
            "RELAY_REGION": region,
            "RELAY_USER_POOL_ID": f"{region}_bench",
            "RELAY_COGNITO_ENDPOINT": f"http://127.0.0.1:{stub_port}/",
            "RELAY_AWS_ENDPOINT": endpoint,
            "RELAY_CLIENTS_SECRET_ID": "cognito-relay/clients",
            "RELAY_REPLICATION_KEY_SECRET_ID": "cognito-relay/replication-key",
            # Replication on: the peer's queue is the stub's SQS SendMessage.
            "RELAY_PEER_REGION": "eu-central-1",
            "RELAY_PEER_QUEUE_URL": f"http://127.0.0.1:{stub_port}/000000000000/cognito-relay-inbound.fifo",
            "RELAY_PEER_AWS_ENDPOINT": f"http://127.0.0.1:{stub_port}",
            "RELAY_PEER_USER_POOL_ID": "eu-central-1_bench",
            "RELAY_LISTEN": f"127.0.0.1:{proxy_port}",
            "RELAY_RATE_PER_IP": "0",
            "RELAY_RATE_PER_USERNAME": "0",
            "RUST_LOG": "warn",
        })
        os.makedirs(OUT, exist_ok=True)
        proxy = subprocess.Popen([release_bin("proxy")], env=env, stdout=open(os.path.join(OUT, "sustained-proxy.log"), "wb"), stderr=subprocess.STDOUT)
        procs.append(proxy)
        wait_http(f"http://127.0.0.1:{proxy_port}/health", timeout=20)

        samples: list[tuple[float, int]] = []
        stop = threading.Event()

        def sample() -> None:
            t0 = time.monotonic()
            while not stop.is_set():
                samples.append((time.monotonic() - t0, rss_kb(proxy.pid)))
                stop.wait(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        results: dict[str, dict] = {}

        def load(action: str, rate: float, conns: int) -> None:
            cmd = [release_bin("loadgen"), "--addr", f"127.0.0.1:{proxy_port}", "--connections", str(conns), "--rate", str(rate),
                   "--duration", str(args.duration), "--warmup", str(args.warmup), "--label", action, "--action", action, "--json"]
            results[action] = run_json(cmd, timeout=args.duration + 60)

        share = args.signup_share
        runs = [threading.Thread(target=load, args=("InitiateAuth", args.rate * (1 - share), max(1, int(args.connections * (1 - share))))),
                threading.Thread(target=load, args=("SignUp", args.rate * share, max(1, int(args.connections * share))))]
        for t in runs:
            t.start()
        for t in runs:
            t.join()
        stop.set()
        sampler.join(timeout=5)
        time.sleep(2)  # the last enqueues
        with urllib.request.urlopen(f"http://127.0.0.1:{stub_port}/stats", timeout=5) as r:
            stats = json.loads(r.read())
        with urllib.request.urlopen(f"http://127.0.0.1:{proxy_port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        lost = next((line.split()[-1] for line in metrics.splitlines() if line.startswith("relay_replication_lost_total ")), "?")
        after_warmup = [kb for t, kb in samples if t >= args.warmup]
        first, last = after_warmup[:10], after_warmup[-10:]
        rss_first, rss_last = sum(first) / len(first) / 1024, sum(last) / len(last) / 1024
        signups_ok = results["SignUp"]["ok"] + results["SignUp"].get("warmup_ok", 0)
        print("| stream | target req/s | achieved req/s | ok | errors | non-2xx | p50 ms | p99 ms | p99.9 ms | max ms |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for action, r in results.items():
            target = args.rate * (share if action == "SignUp" else 1 - share)
            print(f"| {action} | {target:.0f} | {r['rate']:.0f} | {r['ok']} | {r['errors']} | {r['non_2xx']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['p999_ms']:.3f} | {r['max_ms']:.2f} |")
        print()
        print("| proxy RSS first 10 s (MiB) | last 10 s (MiB) | growth | replication events at the stub queue | lost |")
        print("|---|---|---|---|---|")
        print(f"| {rss_first:.1f} | {rss_last:.1f} | {rss_last - rss_first:+.1f} MiB | {stats.get('queued')} | {lost} |")
        errors = sum(r["errors"] + r["non_2xx"] for r in results.values())
        flat = rss_last <= rss_first * 1.1 + 2
        print(f"\nverdict: errors={errors} rss_flat={flat} (SignUps answered ok incl. warm-up ≈ {signups_ok}; queued {stats.get('queued')})")
        return 0 if errors == 0 and flat else 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
        if moto:
            stop_strict_moto(moto)


if __name__ == "__main__":
    raise SystemExit(main())
