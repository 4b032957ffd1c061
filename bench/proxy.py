#!/usr/bin/env python3
"""Proxy overhead: loadgen → stub-upstream directly vs loadgen → proxy (release, standalone) →
stub-upstream, in one run, at a fixed rate and at saturation. Also the proxy's RSS.

    .venv/bin/python bench/proxy.py [--duration 10] [--rate 2000]

Needs the release binaries (proxy, stub-upstream, loadgen) and a strict moto for Secrets
Manager (the proxy reads its client secret and replication key there). No replication (no
peer), rate limits off, RUST_LOG=warn. Everything on loopback; every step is time-bounded.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import statistics
import subprocess
import time
import urllib.request

from _common import OUT, release_bin, run_json, save, table, verdict  # noqa: E402  (sets sys.path)
from tests.harness.relay import wait_http
from tests.harness.stack import DUMMY_CREDENTIALS, client, free_port, start_strict_moto, stop_strict_moto

BODY = json.dumps({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "pub", "AuthParameters": {"USERNAME": "u", "PASSWORD": "Passw0rd!"}}).encode()


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS"):
                out[k] = int(v.split()[0])  # kB
    return out


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tck, int(fields[12]) / tck


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--rate", type=float, default=2000.0)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--sat-connections", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3, help="fixed-rate runs per path (alternating)")
    ap.add_argument("--perf", action="store_true", help="perf-sample the proxy at saturation (by object)")
    ap.add_argument("--workers", default="0", help="the proxy's RELAY_WORKER_THREADS (0 = one thread; 'default' = one worker per core)")
    args = ap.parse_args()

    with open("/proc/loadavg") as f:
        load_avg_start = " ".join(f.read().split()[:3])
    procs: list[subprocess.Popen] = []
    moto = None
    try:
        moto_port, stub_port, proxy_port = free_port(), free_port(), free_port()
        moto = start_strict_moto(moto_port)
        endpoint, region = f"http://127.0.0.1:{moto_port}", "eu-west-1"
        sm = client("secretsmanager", endpoint, region)
        sm.create_secret(Name="cognito-relay/clients", SecretString=json.dumps({"clients": [{"public_client_id": "pub", "client_id": "reg", "client_secret": "s"}]}))
        sm.create_secret(Name="cognito-relay/replication-key", SecretString=json.dumps({"current": "k1", "keys": {"k1": base64.b64encode(secrets.token_bytes(32)).decode()}}))

        stub = subprocess.Popen([release_bin("stub-upstream"), "--listen", f"127.0.0.1:{stub_port}", "--threads", "1", "--max-seconds", "300"], stdout=subprocess.DEVNULL)
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
            "RELAY_LISTEN": f"127.0.0.1:{proxy_port}",
            "RELAY_RATE_PER_IP": "0",
            "RELAY_RATE_PER_USERNAME": "0",
            "RUST_LOG": "warn",
        })
        if args.workers != "default":
            env["RELAY_WORKER_THREADS"] = args.workers
        os.makedirs(OUT, exist_ok=True)
        proxy_log = open(os.path.join(OUT, "proxy-bench-proxy.log"), "wb")
        proxy = subprocess.Popen([release_bin("proxy")], env=env, stdout=proxy_log, stderr=subprocess.STDOUT)
        procs.append(proxy)
        wait_http(f"http://127.0.0.1:{proxy_port}/health", timeout=20)
        wait_http(f"http://127.0.0.1:{stub_port}/stats", timeout=10)

        # One checked request through the proxy: 200, SECRET_HASH injected, refresh token sealed.
        req = urllib.request.Request(f"http://127.0.0.1:{proxy_port}/", data=BODY, method="POST", headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth"})
        with urllib.request.urlopen(req, timeout=10) as r:
            answer = json.loads(r.read())
            assert r.status == 200 and r.headers.get("x-amzn-requestid"), "proxy did not answer like Cognito"
        refresh = answer["AuthenticationResult"]["RefreshToken"]
        assert not refresh.startswith("rxxx"), "the proxy did not seal the refresh token"
        with urllib.request.urlopen(f"http://127.0.0.1:{stub_port}/stats", timeout=5) as r:
            assert json.loads(r.read())["signed"] >= 1, "the proxy did not inject SECRET_HASH"
        print("    sanity: proxy answered 200, injected SECRET_HASH, sealed the refresh token", flush=True)

        def load(label: str, port: int, rate: float, conns: int) -> dict:
            cmd = [release_bin("loadgen"), "--addr", f"127.0.0.1:{port}", "--connections", str(conns), "--rate", str(rate), "--duration", str(args.duration), "--warmup", str(args.warmup), "--label", label, "--json"]
            return run_json(cmd, timeout=args.duration + 30)

        def median_run(runs: list[dict]) -> dict:
            """Per-metric medians over repeated runs (and the p99 spread)."""
            out = dict(runs[0])
            for k in ("rate", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"):
                out[k] = statistics.median(x[k] for x in runs)
            for k in ("ok", "errors", "non_2xx"):
                out[k] = sum(x[k] for x in runs)
            out["p99_runs_ms"] = [x["p99_ms"] for x in runs]
            return out

        # Fixed rate: direct and proxy alternate, `--repeat` times each (the machine is shared;
        # alternating spreads other load over both), medians reported.
        cpu0 = cpu_times(proxy.pid)
        fixed: dict[str, list[dict]] = {"direct": [], "proxy": []}
        for _ in range(args.repeat):
            fixed["direct"].append(load("direct", stub_port, args.rate, args.connections))
            fixed["proxy"].append(load("proxy", proxy_port, args.rate, args.connections))
        cpu1 = cpu_times(proxy.pid)
        r = {"direct_fixed": median_run(fixed["direct"]), "proxy_fixed": median_run(fixed["proxy"])}
        r["direct_sat"] = load("direct", stub_port, 0, args.sat_connections)
        perf = None
        if args.perf and shutil.which("perf"):
            perf_data = os.path.join(OUT, "proxy-perf.data")
            perf = subprocess.Popen(["perf", "record", "-q", "-F", "499", "-o", perf_data, "-p", str(proxy.pid), "--", "sleep", str(max(args.duration - args.warmup - 1, 1))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu2 = cpu_times(proxy.pid)
        r["proxy_sat"] = load("proxy", proxy_port, 0, args.sat_connections)
        cpu3 = cpu_times(proxy.pid)
        by_dso = {}
        if perf is not None:
            perf.wait(timeout=60)
            rep = subprocess.run(["perf", "report", "-i", perf_data, "--sort", "dso", "--stdio", "-q"], capture_output=True, text=True, timeout=60).stdout
            for line in rep.splitlines():
                parts = line.split()
                if len(parts) >= 2 and parts[0].endswith("%"):
                    by_dso[" ".join(parts[1:])] = float(parts[0].rstrip("%"))
        time.sleep(0.2)
        mem = proc_status(proxy.pid)
        with urllib.request.urlopen(f"http://127.0.0.1:{stub_port}/stats", timeout=5) as resp:
            stub_stats = json.loads(resp.read())

        added_p99 = r["proxy_fixed"]["p99_ms"] - r["direct_fixed"]["p99_ms"]
        added_p50 = r["proxy_fixed"]["p50_ms"] - r["direct_fixed"]["p50_ms"]
        ratio = r["proxy_sat"]["rate"] / max(r["direct_sat"]["rate"], 1e-9)
        hwm_mb, rss_mb = mem["VmHWM"] / 1024, mem["VmRSS"] / 1024
        fixed_requests = args.rate * args.duration * args.repeat
        user_us = (cpu1[0] - cpu0[0]) / fixed_requests * 1e6
        sys_us = (cpu1[1] - cpu0[1]) / fixed_requests * 1e6
        sat_requests = r["proxy_sat"]["rate"] * args.duration  # approx. (warm-up included)
        sat_user_us = (cpu3[0] - cpu2[0]) / sat_requests * 1e6
        sat_sys_us = (cpu3[1] - cpu2[1]) / sat_requests * 1e6
        sat_cores = (cpu3[0] + cpu3[1] - cpu2[0] - cpu2[1]) / args.duration

        def row(name: str, x: dict) -> list:
            errs = x["errors"] + x["non_2xx"]
            load_desc = f"fixed {x['target_rate']:.0f}/s, {x['connections']} conns" + (f", median of {len(x['p99_runs_ms'])}" if "p99_runs_ms" in x else "") if x["target_rate"] else f"saturation, {x['connections']} conns"
            p99 = f"{x['p99_ms']:.3f}" + (" (" + " / ".join(f"{v:.3f}" for v in x["p99_runs_ms"]) + ")" if "p99_runs_ms" in x and len(x["p99_runs_ms"]) > 1 else "")
            return [name, load_desc, f"{x['rate']:.0f}", f"{x['p50_ms']:.3f}", f"{x['p90_ms']:.3f}", p99, f"{x['max_ms']:.2f}", errs]

        t1 = table(["path", "load", "achieved req/s", "p50 ms", "p90 ms", "p99 ms (each run)", "max ms", "errors"], [row("direct", r["direct_fixed"]), row("proxy", r["proxy_fixed"]), row("direct", r["direct_sat"]), row("proxy", r["proxy_sat"])])
        t2 = table(["target", "measured", "goal", "verdict"], [
            [f"added p99 at {args.rate:.0f} req/s (median proxy p99 − median direct p99)", f"{added_p99:.3f} ms (added p50 {added_p50:.3f} ms)", "≤ 0.3 ms", verdict(added_p99 <= 0.3)],
            ["saturated throughput proxy/direct", f"{ratio:.2f}", "≥ 0.5", verdict(ratio >= 0.5)],
            ["proxy RSS after the run (VmHWM / VmRSS)", f"{hwm_mb:.1f} MB / {rss_mb:.1f} MB", "≤ 30 MB", verdict(hwm_mb <= 30)],
            [f"proxy CPU per request at {args.rate:.0f} req/s (user + sys)", f"{user_us:.0f} + {sys_us:.0f} µs", "(info)", ""],
            ["proxy CPU per request at saturation (user + sys); cores used", f"{sat_user_us:.0f} + {sat_sys_us:.0f} µs; {sat_cores:.2f} cores", "(info)", ""],
        ] + ([["proxy CPU samples by object at saturation (perf)", ", ".join(f"{k}: {v:.0f}%" for k, v in list(by_dso.items())[:4]), "(info)", ""]] if by_dso else []))
        notes = [
            f"Load average at the start: {load_avg_start}; the machine is shared with other work, so tails (p99, max) carry its noise.",
            f"{args.duration:.0f} s per run, first {args.warmup:.0f} s not measured; fixed rate over {args.connections} keep-alive connections (open loop, latency from the intended send time when a connection was still busy), saturation over {args.sat_connections} (closed loop).",
            f"stub-upstream runs 1 tokio worker, loadgen 1 thread, the proxy RELAY_WORKER_THREADS={args.workers} (0 = one thread, the Lambda default; standalone defaults to one worker per core); all share the machine's cores, so at saturation the proxy competes with the stub and loadgen for CPU, while the direct run does not pay for the proxy's CPU at all.",
            f"Stub saw {stub_stats['requests']} requests, {stub_stats['signed']} of them with a SECRET_HASH (the proxy's).",
        ]
        save("proxy", {"results": r, "added_p99_ms": added_p99, "saturated_ratio": ratio, "vm_hwm_kb": mem["VmHWM"], "vm_rss_kb": mem["VmRSS"], "cpu_user_us_per_req": user_us, "cpu_sys_us_per_req": sys_us, "perf_by_dso": by_dso, "stub": stub_stats, "table": t1 + "\n\n" + t2, "notes": notes})
    finally:
        for p in reversed(procs):
            stop(p)
        if moto is not None:
            stop_strict_moto(moto)


if __name__ == "__main__":
    main()
