#!/usr/bin/env bash
# Bridge SRP sign-in CPU on the proxy: p50/p99 over N handshakes (default 1000) in release, with
# the baseline (the crypto every proxied sign-in already does) measured in the same run, and the
# Cognito round trips a bridged sign-in adds. Usage: bench/srp_bridge.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000}"
cargo run -q --release -p wire --example srp_bench -- "$N"
cat <<'TABLE'

| per bridged call | Cognito calls | other calls |
|---|---|---|
| InitiateAuth USER_SRP_AUTH (direct to the app pool: 1) | 0 (answered by the proxy) | 1 DynamoDB GetItem (verifier) |
| RespondToAuthChallenge PASSWORD_VERIFIER (direct: 1) | 2 (InitiateAuth CUSTOM_AUTH, RespondToAuthChallenge CUSTOM_CHALLENGE; Cognito invokes the trigger 4×: Define, Create, Verify, Define) | 1 DynamoDB PutItem (one-time block), 1 GetItem (MFA flag) |
| whole sign-in | 2 (same as direct SRP: +0) | 3 DynamoDB |
| refresh of another region's session | not bridged yet | — |
TABLE
