"""Shared helpers of the cognito-relay benchmark drivers (bench/*.py). Not a test suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
OUT = os.environ.get("BENCH_OUT", os.path.join(ROOT, "target", "bench-results"))


def release_bin(name: str) -> str:
    path = os.path.join(TARGET, "release", name)
    if not os.path.exists(path):
        raise SystemExit(f"{path} is missing: run `cargo build --release -p proxy -p replicator -p bench`")
    return path


def run_json(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> dict:
    """Runs a bench binary (bounded by `timeout`), echoes its human line, returns its last JSON line."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    lines = [line for line in p.stdout.splitlines() if line.strip()]
    for line in lines:
        if not line.startswith("{"):
            print("   ", line, flush=True)
    return json.loads(next(line for line in reversed(lines) if line.startswith("{")))


def table(headers: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def save(name: str, data: dict) -> None:
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump(data, f, indent=2)
    print()
    print(data["table"])
    for note in data.get("notes", []):
        print(f"- {note}")
    print(flush=True)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"
