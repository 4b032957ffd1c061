#!/usr/bin/env bash
# Fuzzes the parsers that read untrusted input (issue 12, point 5) with cargo-fuzz (libFuzzer,
# nightly, AddressSanitizer): each target for RUNS executions (default 10^7), starting from
# fuzz/corpus/<target> (kept in git) into fuzz/work/<target> (not kept). A crash stops the run
# and is copied into fuzz/corpus/<target>/ so `cargo test` replays it from then on (fix it first).
# A benchmark, not CI: CI replays the corpora as ordinary tests (crates/*/tests/fuzz_corpus.rs).
#
#   bench/fuzz.sh [RUNS] [target...]
# Environment: FUZZ_BUILD="--release -s none" (default: cargo-fuzz's, i.e. AddressSanitizer;
# the crates forbid unsafe code, so "-s none" trades little for ~3x the speed), MAX_TIME=seconds
# per target (default: none).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10000000}"
shift || true
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(prepare refresh_token event_open secrets)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
printf '| target | executions | seconds | exec/s | crashes |\n|---|---|---|---|---|\n'
for t in "${targets[@]}"; do
  mkdir -p "fuzz/work/$t"
  log="fuzz/work/$t.log"
  status=0
  (cd fuzz && cargo +nightly fuzz run ${FUZZ_BUILD:-} "$t" "work/$t" "corpus/$t" -- -runs="$runs" ${MAX_TIME:+-max_total_time=$MAX_TIME} -print_final_stats=1 >"../$log" 2>&1) || status=$?
  done_line=$(grep -E "^Done [0-9]+ runs in [0-9]+ second" "$log" | tail -1 || true)
  n=$(sed -E 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\1/' <<<"$done_line")
  s=$(sed -E 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\2/' <<<"$done_line")
  crashes=0
  if [[ $status -ne 0 ]]; then
    crashes=$(ls fuzz/artifacts/"$t"/ 2>/dev/null | wc -l)
    cp fuzz/artifacts/"$t"/* "fuzz/corpus/$t/" 2>/dev/null || true
  fi
  rate=$([[ -n "$s" && "$s" -gt 0 ]] && echo $(( n / s )) || echo "-")
  printf '| %s | %s | %s | %s | %s |\n' "$t" "${n:--}" "${s:--}" "$rate" "$crashes"
done
