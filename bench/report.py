#!/usr/bin/env python3
"""Writes BENCHMARKS.md from the JSON results of bench/*.py (in $BENCH_OUT)."""

from __future__ import annotations

import datetime
import json
import os
import subprocess


from _common import OUT, ROOT

MARKER = "<!-- sections below are kept by bench/report.py -->"

SECTIONS = [
    ("proxy", "1. Proxy overhead (stub upstream, direct vs through the release proxy)", "bench/proxy.py"),
    ("cold_init", "2. Lambda cold init (spawn → first `GET /2018-06-01/runtime/invocation/next`)", "bench/cold_init.py"),
    ("pacing", "3. Replicator pacing against a throttling pool", "bench/pacing.py"),
    ("replication_lag", "4. Replication lag across two emulated regions", "bench/replication_lag.py"),
    ("enrichment", "5. Sign-up policy and event stream overhead (same build, on vs off)", "bench/enrichment.py"),
    ("lambda_flush", "6. Lambda: cost of publishing each event within its invocation", "bench/lambda_flush.py"),
]


# How to read each table (independent of one run's numbers).
READING = {
    "proxy": [
        "Per request the proxy parses the body, maps the client, computes the SECRET_HASH (HMAC), makes its own HTTP/1.1 call, parses Cognito's answer, seals the refresh token (AES-GCM) and re-serialises it: several times the stub's work, which only returns fixed bytes. So on 2 shared cores the saturated ratio mostly measures that the stub is nearly free; it is not the proxy's share of a real Cognito call (tens of ms).",
        "The perf row is by object because the release binary is stripped: `[kernel]` is loopback TCP, epoll and context switches (the proxy adds two socket hops per request). A symbolised profile (release with debug info, `perf record -g`) showed glibc malloc's arena locks at ~10 % of the proxy's CPU at saturation; the proxy now uses mimalloc (+50 % saturated throughput in that A/B, at the cost of ~10 MB more RSS at 32 connections).",
        "At a fixed 2,000 req/s the proxy spends about 2.5 times the CPU per request that it spends at saturation: at low load most of it is waking tokio workers and the kernel's socket wake-ups, not the proxy's own work. On these 2 shared cores one runtime thread beats one worker per core: an A/B with the same build (`RELAY_WORKER_THREADS` 0 vs unset, stub and loadgen alongside) gave proxy p99 at 2,000/s of 0.47–0.50 ms vs 0.56–1.03 ms, and 33.1k vs 30.2k req/s at saturation. Standalone servers with cores to spare keep the multi-thread default.",
    ],
    "cold_init": [
        "The AWS SDK config load and the TLS root store (rustls-native-certs via reqwest and the SDK's HTTPS client) are most of the proxy's own init; the rest is process exec and the Lambda runtime client.",
    ],
    "pacing": [
        "An earlier version of the pacer allowed a burst of a full second of quota: after all tasks backed off, the refilled bucket released a second's worth at once, the sliding window throttled the excess, and with 8 tasks the rate settled at 0.865 Q (407 throttled calls). The burst is now a tenth of a second of quota, which gives ≈ 0.99 Q with 8 or 64 tasks and ~27 throttled calls, all retried.",
    ],
    "replication_lag": [],
    "lambda_flush": [],
    "enrichment": [
        "Reading of the 2026-11-26 run: the policy costs ~0.1 ms at p50 and nothing measurable at p99. Publishing events does not wait (the `dead bus` row, whose calls hang and whose events are dropped, stays close to `off`), but it is not free: each PutEvents call (SigV4 signing, serialisation, an HTTP call) runs on the proxy's single runtime thread (RELAY_WORKER_THREADS=0) and its answer on the stub, sharing the 2 cores with the load: ~200 calls/s add ~1 ms at p50 and tens of ms at p99 here. Not yet done: a publisher on its own thread, or a linger so batches fill (fewer, fuller calls).",
        "`on+flush` is the Lambda mode's guarantee (each request waits for its own event's PutEvents call, at most RELAY_EVENTS_FLUSH_MS): its added latency is the price of not losing events when an instance freezes. Standalone (`on`) requests never wait.",
        "`dead bus`: the events' PutEvents calls hang until their 2 s timeout, the 4 calls in flight block, the buffer fills and the rest are dropped at once (counted): request latency must stay that of `on`.",
    ],
}


def main() -> None:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "unknown")
    nproc = os.cpu_count()
    mem_kb = next((int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    kernel = os.uname().release
    try:
        rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001
        rustc, commit = "unknown", "unknown"
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# Benchmarks",
        "",
        "Performance is measured here, never in the test suites. Everything runs on loopback on one",
        "machine; every run is bounded in time. Numbers below are from one run of `bench/run-all.sh`",
        "(rewritten by it).",
        "",
        "Reproduce (from the repository root, with the Python venv that has moto and boto3 at `.venv`):",
        "",
        "```sh",
        "bench/run-all.sh",
        "```",
        "",
        "It builds `cargo build --release -p proxy -p replicator -p bench`, runs the six drivers below",
        "(each also runs alone: `.venv/bin/python bench/<name>.py --help`) and rewrites this file.",
        "The benchmarks take about 5 minutes; the build adds whatever is not yet compiled.",
        "",
        f"- Date: {now}; commit {commit} (plus uncommitted work in the tree at the time)",
        f"- Machine: {nproc} cores ({cpu}), {mem_kb // 1024} MB RAM, Linux {kernel}; {rustc}",
        "- The cores are **shared**: the load generator, the stub upstream, the proxy (and in 4 the",
        "  moto servers) run on the same cores, alongside whatever else the machine was doing.",
        "",
    ]
    for name, title, script in SECTIONS:
        path = os.path.join(OUT, f"{name}.json")
        out += [f"## {title}", "", f"`{script}`", ""]
        if not os.path.exists(path):
            out += ["Not run (no result file).", ""]
            continue
        data = json.load(open(path))
        out += [data["table"], ""]
        out += [f"- {n}" for n in data.get("notes", []) + READING.get(name, [])]
        out.append("")
    # Sections written by hand or by other scripts (after the marker) are kept.
    target = os.path.join(ROOT, "BENCHMARKS.md")
    kept = ""
    if os.path.exists(target):
        old = open(target).read()
        if MARKER in old:
            kept = old[old.index(MARKER):]
    with open(target, "w") as f:
        f.write("\n".join(out))
        if kept:
            f.write("\n" + kept)
    print(f"wrote {os.path.join(ROOT, 'BENCHMARKS.md')}")


if __name__ == "__main__":
    main()
