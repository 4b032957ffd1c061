"""README command 1 stays true: the local stack starts, provisions both regions and its demo
sees a sign-up through region A arrive in region B."""

import os
import subprocess
import sys

from tests.harness.stack import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_local_stack_demo_replicates_a_sign_up(tmp_path):
    ports = [free_port() for _ in range(4)]
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "local_stack.py"), "--exit-after-demo",
         "--moto-ports", f"{ports[0]},{ports[1]}", "--proxy-ports", f"{ports[2]},{ports[3]}", "--state-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "it is in region B's pool" in out.stdout
    assert f"http://127.0.0.1:{ports[2]}" in out.stdout
    assert (tmp_path / "relay.json").exists()
