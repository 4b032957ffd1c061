#!/usr/bin/env python3
"""Enrichment overhead: the added latency of the sign-up policy and the event stream.

    .venv/bin/python bench/enrichment.py [--duration 10] [--rate 2000] [--repeat 3]

SignUp requests at a fixed rate through four release proxies of the same build, in one run,
alternating (the machine is shared; alternating spreads other load over all of them):

- off:      no policy, no event stream;
- policy only: the policy below, no event stream;
- on:       a policy with every rule kind (5,000-domain disposable list, patterns, required
            attributes, per-IP and per-domain counters set high enough never to refuse) and
            the event stream publishing to the stub (it answers PutEvents), user hashed;
- on+flush: as `on`, plus RELAY_EVENTS_FLUSH_MS=200: each request waits for its own event's
            PutEvents call before answering — what every request does under Lambda;
- dead bus: as `on`, the bus a TCP port that accepts connections and never answers (events
            time out and are dropped): requests must not notice.

Needs the release binaries (proxy, stub-upstream, loadgen) and a strict moto for Secrets
Manager. No replication, proxy rate limits off, RUST_LOG=warn, RELAY_WORKER_THREADS=0.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import socket
import statistics
import subprocess
import urllib.request

from _common import OUT, release_bin, run_json, save, table  # noqa: E402  (sets sys.path)
from tests.harness.relay import wait_http
from tests.harness.stack import DUMMY_CREDENTIALS, client, free_port, start_strict_moto, stop_strict_moto

POLICY = {
    "blocked_email_domains": ["blocked.example", "spam.example"],
    "username_pattern": "[A-Za-z0-9_.@+-]{3,128}",
    "attribute_patterns": {"name": "[^<>]{1,64}"},
    "required_attributes": ["email", "name"],
    "signups_per_ip_per_minute": 100_000_000,
    "signups_per_email_domain_per_minute": 100_000_000,
}


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        total = 0.0
        for line in r.read().decode().splitlines():
            if line.startswith(name):
                total += float(line.split()[-1])
        return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--rate", type=float, default=2000.0)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    with open("/proc/loadavg") as f:
        load_avg_start = " ".join(f.read().split()[:3])
    procs: list[subprocess.Popen] = []
    moto = None
    blackhole = socket.socket()
    try:
        moto_port, stub_port = free_port(), free_port()
        moto = start_strict_moto(moto_port)
        endpoint, region = f"http://127.0.0.1:{moto_port}", "eu-west-1"
        sm = client("secretsmanager", endpoint, region)
        sm.create_secret(Name="cognito-relay/clients", SecretString=json.dumps({"clients": [{"public_client_id": "pub", "client_id": "reg", "client_secret": "s"}]}))
        sm.create_secret(Name="cognito-relay/replication-key", SecretString=json.dumps({"current": "k1", "keys": {"k1": base64.b64encode(secrets.token_bytes(32)).decode()}}))
        os.makedirs(OUT, exist_ok=True)
        disposable = os.path.join(OUT, "enrichment-disposable.txt")
        with open(disposable, "w") as f:
            f.write("\n".join(f"throwaway{i}.example" for i in range(5000)) + "\n")
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(4096)  # accepts (in the kernel), never answers
        dead = f"http://127.0.0.1:{blackhole.getsockname()[1]}"

        stub = subprocess.Popen([release_bin("stub-upstream"), "--listen", f"127.0.0.1:{stub_port}", "--threads", "1", "--max-seconds", "900"], stdout=subprocess.DEVNULL)
        procs.append(stub)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "AWS_"))}
        base.update({
            "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["aws_secret_access_key"],
            "AWS_EC2_METADATA_DISABLED": "true",
            "RELAY_REGION": region,
            "RELAY_USER_POOL_ID": f"{region}_bench",
            "RELAY_COGNITO_ENDPOINT": f"http://127.0.0.1:{stub_port}/",
            "RELAY_AWS_ENDPOINT": endpoint,
            "RELAY_CLIENTS_SECRET_ID": "cognito-relay/clients",
            "RELAY_REPLICATION_KEY_SECRET_ID": "cognito-relay/replication-key",
            "RELAY_RATE_PER_IP": "0",
            "RELAY_RATE_PER_USERNAME": "0",
            "RELAY_WORKER_THREADS": "0",
            "RUST_LOG": "warn",
        })
        on = {"RELAY_POLICY": json.dumps(POLICY), "RELAY_POLICY_DISPOSABLE_DOMAINS": f"file:{disposable}",
              "RELAY_EVENTS_BUS": "bench", "RELAY_EVENTS_ENDPOINT": f"http://127.0.0.1:{stub_port}"}
        policy_only = {k: v for k, v in on.items() if k.startswith("RELAY_POLICY")}
        configs = {
            "off": {},
            "policy only": policy_only,
            "on": on,
            "on+flush": {**on, "RELAY_EVENTS_FLUSH_MS": "200"},
            "dead bus": {**on, "RELAY_EVENTS_ENDPOINT": dead},
        }
        ports = {}
        for name, extra in configs.items():
            port = free_port()
            log = open(os.path.join(OUT, f"enrichment-proxy-{name.replace(' ', '-').replace('+', '-')}.log"), "wb")
            p = subprocess.Popen([release_bin("proxy")], env={**base, **extra, "RELAY_LISTEN": f"127.0.0.1:{port}"}, stdout=log, stderr=subprocess.STDOUT)
            procs.append(p)
            wait_http(f"http://127.0.0.1:{port}/health", timeout=20)
            ports[name] = port
        wait_http(f"http://127.0.0.1:{stub_port}/stats", timeout=10)

        # Sanity: a sign-up the policy must refuse is refused like a PreSignUp trigger.
        bad = json.dumps({"ClientId": "pub", "Username": "x_1", "Password": "Passw0rd!", "UserAttributes": [{"Name": "email", "Value": "x@throwaway7.example"}, {"Name": "name", "Value": "A"}]}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{ports['on']}/", data=bad, method="POST", headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AWSCognitoIdentityProviderService.SignUp"})
        try:
            urllib.request.urlopen(req, timeout=10)
            raise SystemExit("the policy did not refuse a disposable domain")
        except urllib.error.HTTPError as e:
            assert e.headers.get("x-amzn-errortype") == "UserLambdaValidationException", e.headers
        print("    sanity: the policy refuses a disposable domain with UserLambdaValidationException", flush=True)

        def load(label: str, port: int) -> dict:
            cmd = [release_bin("loadgen"), "--addr", f"127.0.0.1:{port}", "--action", "SignUp", "--connections", str(args.connections), "--rate", str(args.rate), "--duration", str(args.duration), "--warmup", str(args.warmup), "--label", label, "--json"]
            return run_json(cmd, timeout=args.duration + 30)

        runs: dict[str, list[dict]] = {k: [] for k in configs}
        for _ in range(args.repeat):
            for name, port in ports.items():
                runs[name].append(load(name, port))
        med = {k: {m: statistics.median(x[m] for x in v) for m in ("rate", "p50_ms", "p90_ms", "p99_ms", "max_ms")} | {"errors": sum(x["errors"] + x["non_2xx"] for x in v), "p99_runs": [x["p99_ms"] for x in v]} for k, v in runs.items()}
        with urllib.request.urlopen(f"http://127.0.0.1:{stub_port}/stats", timeout=5) as resp:
            stub_stats = json.loads(resp.read())
        counters = {name: {"published": metric(port, "relay_events_published_total"), "dropped": metric(port, "relay_events_dropped_total")} for name, port in ports.items() if "RELAY_EVENTS_BUS" in configs[name]}

        rows = []
        for name in configs:
            m = med[name]
            added = "" if name == "off" else f"{m['p99_ms'] - med['off']['p99_ms']:+.3f}"
            added50 = "" if name == "off" else f"{m['p50_ms'] - med['off']['p50_ms']:+.3f}"
            ev = counters.get(name)
            rows.append([name, f"{m['rate']:.0f}", f"{m['p50_ms']:.3f}", f"{m['p99_ms']:.3f} (" + " / ".join(f"{v:.3f}" for v in m["p99_runs"]) + ")", added50, added, f"{m['max_ms']:.2f}", m["errors"], "" if ev is None else f"{ev['published']:.0f} / {ev['dropped']:.0f}"])
        t = table(["proxy", "achieved req/s", "p50 ms", "p99 ms median (each run)", "added p50 ms", "added p99 ms", "max ms", "errors", "events published / dropped"], rows)
        notes = [
            f"Load average at the start: {load_avg_start}; the machine is shared with other work, so tails carry its noise.",
            f"SignUp at a fixed {args.rate:.0f} req/s over {args.connections} keep-alive connections, {args.duration:.0f} s per run (first {args.warmup:.0f} s not measured), {args.repeat} runs per proxy alternating; medians.",
            "added = median of that proxy − median of `off`, same build, same run. The stub answers SignUp and PutEvents with fixed bytes on loopback, so `on+flush` measures the proxy's own cost of waiting for a PutEvents round trip on loopback; against EventBridge add its in-region round trip (typically ~10–30 ms) to every Lambda request.",
            f"Stub saw {stub_stats['requests']} requests and {stub_stats.get('events', 0)} events in PutEvents calls.",
        ]
        save("enrichment", {"median": med, "counters": counters, "stub": stub_stats, "table": t, "notes": notes})
    finally:
        for p in reversed(procs):
            stop(p)
        if moto is not None:
            stop_strict_moto(moto)
        blackhole.close()


if __name__ == "__main__":
    main()
