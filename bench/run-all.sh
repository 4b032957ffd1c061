#!/usr/bin/env bash
# Builds what the benchmarks need, runs all six (each time-bounded; ~5 minutes in all), prints
# one table per benchmark and rewrites BENCHMARKS.md. Loopback only.
#   bench/run-all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
export BENCH_OUT="${BENCH_OUT:-$PWD/target/bench-results}"
rm -rf "$BENCH_OUT"
mkdir -p "$BENCH_OUT"

echo "== build (release: proxy, replicator, bench)"
timeout 1800 cargo build --release -p proxy -p replicator -p bench

echo "== 1. proxy overhead"
timeout 300 "$PY" bench/proxy.py --duration 10 --warmup 2 --rate 2000 --repeat 3 $(command -v perf >/dev/null && echo --perf)
echo "== 2. lambda cold init"
timeout 300 "$PY" bench/cold_init.py --runs 20
echo "== 3. replicator pacing"
timeout 400 "$PY" bench/pacing.py --events 2000 --q 100 --concurrency 8
echo "== 4. replication lag"
timeout 300 "$PY" bench/replication_lag.py --rate 5 --seconds 30 --users 5
echo "== 5. sign-up policy and event stream overhead"
timeout 400 "$PY" bench/enrichment.py --duration 10 --warmup 2 --rate 2000 --repeat 3
echo "== 6. lambda: publishing within the invocation"
timeout 300 "$PY" bench/lambda_flush.py --invocations 300

"$PY" bench/report.py
