#!/usr/bin/env bash
# Memory benchmark of the proxy's per-process rate limiter (issue 12, point 2): RSS growth when
# one million (and four million) distinct 128-character usernames are counted in one window.
# Usage: bench/limiter_memory.sh [--debug]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=--release
[[ "${1:-}" == "--debug" ]] && profile=
cargo build -q $profile -p bench --bin limiter-memory
bin=target/$([[ -n "$profile" ]] && echo release || echo debug)/limiter-memory
for n in 1000000 4000000; do
  "$bin" "$n"
done
