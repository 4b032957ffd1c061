"""Region A fails, the standby serves the same apps (same public ClientId), writes made on the
standby replicate back once A returns, failback loses nothing. Also runs every relayctl command
written in runbooks/ against this stack, page by page in the situation the page is written for,
and asserts the exit code the page gives for it (`# exit N`), so a runbook cannot rot."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.harness.relay import ROOT, binary, start_proxy, start_replicator, wait_http
from tests.harness.stack import (app_client, client, free_port, latest_code, provision_pair, route53_health_check, start_strict_moto,
                                 stop_strict_moto, strict_get, strict_post)
from tests.harness.wait import eventually

A, B = "eu-west-1", "eu-central-1"
OUTAGE = os.path.join(ROOT, "tests", "harness", "outage.py")


class Stack:
    def __init__(self, workdir: str):
        self.workdir = workdir
        self.moto_a = start_strict_moto(free_port(), log_path=os.path.join(workdir, "moto-a.log"))
        self.moto_b = start_strict_moto(free_port(), log_path=os.path.join(workdir, "moto-b.log"))
        self.net_port = free_port()
        self.net = None
        self.restore_a()
        net_a = f"http://127.0.0.1:{self.net_port}"
        self.a, self.b = provision_pair(net_a, A, self.moto_b.endpoint, B, "email")
        self.proxy_a = start_proxy(self.a, self.b, os.path.join(workdir, "proxy-a.log"))
        self.proxy_b = start_proxy(self.b, self.a, os.path.join(workdir, "proxy-b.log"))
        self.rep_a = start_replicator(self.a, os.path.join(workdir, "replicator-a.log"))
        self.rep_b = start_replicator(self.b, os.path.join(workdir, "replicator-b.log"))
        self.config = os.path.join(workdir, "relay.json")
        # Route 53 is global: region B's emulator plays it (it stays up when region A is lost).
        self.route53 = self.moto_b.endpoint
        regions = []
        for side, proxy, role in ((self.a, self.proxy_a, "primary"), (self.b, self.proxy_b, "standby")):
            # No replicator_metrics_url: relayctl reads lag and lost from CloudWatch, as on the
            # Lambda deployment.
            regions.append({"name": side["region"], "role": role, "health_url": proxy.url + "/health", "user_pool_id": side["pool_id"],
                            "username_attributes": side["username_attributes"], "inbound_queue_url": side["inbound_queue_url"],
                            "dlq_url": side["dlq_url"], "fallback_queue_url": side["fallback_queue_url"],
                            "drain_parameter": side["drain_parameter"], "aws_endpoint": side["endpoint"],
                            "health_check_id": route53_health_check(self.route53, proxy.url + "/health")})
        self.deployment = {"regions": regions, "route53_endpoint": self.route53}
        with open(self.config, "w") as f:
            json.dump(self.deployment, f)

    def variant(self, name: str, **primary_overrides) -> str:
        """A copy of the deployment file with some of the primary's fields replaced."""
        d = json.loads(json.dumps(self.deployment))
        d["regions"][0].update(primary_overrides)
        path = os.path.join(self.workdir, f"relay-{name}.json")
        with open(path, "w") as f:
            json.dump(d, f)
        return path

    def kill_a(self) -> None:
        self.net.kill()
        self.net.wait()

    def restore_a(self) -> None:
        self.net = subprocess.Popen([sys.executable, OUTAGE, str(self.net_port), self.moto_a.endpoint.rsplit(":", 1)[1]])
        wait_http(f"http://127.0.0.1:{self.net_port}/_strict/health", ok=(200,))

    def relayctl(self, *args: str, code: int | None = 0) -> subprocess.CompletedProcess:
        """Runs relayctl; asserts its exit code is `code` (None: any)."""
        out = subprocess.run([binary("relayctl"), "--config", self.config, *args], capture_output=True, text=True, timeout=120)
        if code is not None:
            assert out.returncode == code, f"relayctl {args}: exited {out.returncode}, expected {code}: {out.stdout[-500:]} {out.stderr[-500:]}"
        return out

    def sent_to(self, side: dict) -> int:
        """Messages sent so far to a side's inbound queue (counted by its emulator)."""
        moto = self.moto_a if side is self.a else self.moto_b
        return strict_get(moto.endpoint, "sqs_sent").get(side["inbound_queue_url"], 0)

    def idp(self, proxy, region):
        return app_client(proxy.url, region)

    def close(self) -> None:
        for p in (self.proxy_a, self.proxy_b, self.rep_a, self.rep_b):
            p.stop()
        if self.net and self.net.poll() is None:
            self.net.kill()
        stop_strict_moto(self.moto_a)
        stop_strict_moto(self.moto_b)


@pytest.fixture(scope="module")
def stack():
    s = Stack(tempfile.mkdtemp(prefix="relay-failover-"))
    yield s
    s.close()


def sign_in(s: Stack, proxy, region, username, password) -> bool:
    try:
        s.idp(proxy, region).initiate_auth(ClientId=s.a["public_client_id"], AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": password})
        return True
    except ClientError as e:
        # Only "no such user / wrong password" means no; a region error is raised.
        if e.response["Error"]["Code"] in ("NotAuthorizedException", "UserNotFoundException"):
            return False
        raise


def until(fn, timeout=30.0, interval=0.25):
    return eventually(fn, timeout=timeout, interval=interval)


def health(proxy) -> int:
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(proxy.url + "/health", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def test_region_loss_failover_and_failback(stack: Stack):
    s = stack
    idp_a = s.idp(s.proxy_a, A)
    users = {}  # username -> latest password
    for i in range(3):
        u = f"fo-{uuid.uuid4().hex[:8]}@example.com"
        idp_a.sign_up(ClientId=s.a["public_client_id"], Username=u, Password="First-Pass1!", UserAttributes=[{"Name": "email", "Value": u}])
        idp_a.confirm_sign_up(ClientId=s.a["public_client_id"], Username=u, ConfirmationCode=latest_code(s.moto_a.endpoint, s.a["pool_id"], u, "SIGN_UP"))
        users[u] = "First-Pass1!"
    first = next(iter(users))
    tok = idp_a.initiate_auth(ClientId=s.a["public_client_id"], AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": first, "PASSWORD": "First-Pass1!"})
    idp_a.change_password(AccessToken=tok["AuthenticationResult"]["AccessToken"], PreviousPassword="First-Pass1!", ProposedPassword="Second-Pass2!")
    users[first] = "Second-Pass2!"
    for u, pw in users.items():
        until(lambda: sign_in(s, s.proxy_b, B, u, pw))

    # Region A is lost.
    assert health(s.proxy_a) == 200
    t0 = time.time()
    s.kill_a()
    until(lambda: health(s.proxy_a) == 503, timeout=10)
    detection = time.time() - t0
    print(f"\nA's /health turned 503 {detection:.2f} s after the region was lost")

    # The standby serves the same app (original public ClientId) with the latest passwords.
    idp_b = s.idp(s.proxy_b, B)
    for u, pw in users.items():
        assert sign_in(s, s.proxy_b, B, u, pw), u
    # New writes on the standby.
    for i in range(2):
        u = f"fo-new-{uuid.uuid4().hex[:8]}@example.com"
        idp_b.sign_up(ClientId=s.a["public_client_id"], Username=u, Password="Standby-Pass3!", UserAttributes=[{"Name": "email", "Value": u}])
        idp_b.confirm_sign_up(ClientId=s.a["public_client_id"], Username=u, ConfirmationCode=latest_code(s.moto_b.endpoint, s.b["pool_id"], u, "SIGN_UP"))
        users[u] = "Standby-Pass3!"
    tok = idp_b.initiate_auth(ClientId=s.a["public_client_id"], AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": first, "PASSWORD": users[first]})
    idp_b.change_password(AccessToken=tok["AuthenticationResult"]["AccessToken"], PreviousPassword=users[first], ProposedPassword="Third-Pass4!")
    users[first] = "Third-Pass4!"
    # A's queue is unreachable: the standby's proxy kept those events in its fallback queue.
    status = json.loads(s.relayctl("--json", "status", code=3).stdout)
    b_status = next(r for r in status["regions"] if r["region"] == B)
    assert b_status["fallback"] >= 1
    assert status["attention"] is True

    # A comes back; B's events replicate to A; failback.
    sent_to_b = s.sent_to(s.b)
    applied_on_b = s.rep_b.logs().count('"event applied"')
    s.restore_a()
    until(lambda: health(s.proxy_a) == 200, timeout=30)
    def drained():
        st = json.loads(s.relayctl("--json", "status", code=None).stdout)
        by = {r["region"]: r for r in st["regions"]}
        return by[B]["fallback"] == 0 and by[A]["backlog"] == 0 and by[A]["in_flight"] == 0
    until(drained, timeout=60, interval=1)
    until(lambda: s.relayctl("reconcile", "--from", B, "--to", A, code=None).returncode == 0, timeout=30, interval=1)
    for u, pw in users.items():
        assert sign_in(s, s.proxy_a, A, u, pw), f"{u} cannot sign in on A with the latest password after failback"
        assert not sign_in(s, s.proxy_a, A, u, "First-Pass1!") or pw == "First-Pass1!"
    st = json.loads(s.relayctl("--json", "status").stdout)
    assert all(r["backlog"] == 0 and r["dlq"] == 0 for r in st["regions"])
    assert sent_to_b >= 1 and applied_on_b >= 1, "the counters below do count (A's writes before the outage reached B)"
    # No echo: A's replicator applied B's events with Admin calls that are not replicated, so
    # not one message went to B's inbound queue since A returned, and B applied nothing new.
    assert s.sent_to(s.b) == sent_to_b, "an event applied on A was sent back to B"
    assert s.rep_b.logs().count('"event applied"') == applied_on_b
    out = s.relayctl("reconcile", "--from", A, "--to", B)
    assert "pools are equal" in out.stdout


EXIT_NOTE = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")


def runbook_commands() -> list[tuple[str, str, int | None]]:
    """(page, command, exit code the page gives for it) for every relayctl line in a ```sh block."""
    cmds = []
    for name in sorted(os.listdir(os.path.join(ROOT, "runbooks"))):
        if not name.endswith(".md"):
            continue
        text = open(os.path.join(ROOT, "runbooks", name)).read()
        for block in re.findall(r"```sh\n(.*?)```", text, re.S):
            for line in block.splitlines():
                line = line.strip()
                if line.startswith("relayctl "):
                    m = EXIT_NOTE.search(line)
                    cmds.append((name, EXIT_NOTE.sub("", line), int(m.group(1)) if m else None))
    return cmds


def settled(s: Stack) -> None:
    """Both regions undrained and healthy, nothing queued, the pools equal: the state every
    test of this module starts from, whatever ran before it."""
    for region, proxy in ((A, s.proxy_a), (B, s.proxy_b)):
        s.relayctl("undrain", region)
        until(lambda: health(proxy) == 200, timeout=15)
    until(lambda: s.relayctl("status", code=None).returncode == 0, timeout=60, interval=1)
    until(lambda: s.relayctl("reconcile", "--from", A, "--to", B, code=None).returncode == 0, timeout=30, interval=1)
    until(lambda: s.relayctl("reconcile", "--from", B, "--to", A, code=None).returncode == 0, timeout=30, interval=1)


def wait_all_good(s: Stack, timeout: float = 60.0) -> None:
    """Both regions healthy, undrained, queues empty: `relayctl status` exits 0."""
    until(lambda: s.relayctl("status", code=None).returncode == 0, timeout=timeout, interval=1)


def scenario_clean(s: Stack) -> None:
    s.relayctl("undrain", A)
    s.relayctl("undrain", B)
    wait_all_good(s)


def scenario_failed_over(s: Stack) -> None:
    scenario_clean(s)
    out = s.relayctl("failover", code=None)
    assert out.returncode == 0, out.stdout + out.stderr


def scenario_primary_pool_down(s: Stack) -> None:
    scenario_clean(s)
    strict_post(s.moto_a.endpoint, "down", {"down": True})
    until(lambda: health(s.proxy_a) == 503, timeout=20)


def restore_primary_pool(s: Stack) -> None:
    strict_post(s.moto_a.endpoint, "down", {"down": False})


# The situation each page is written for ("When:" at its top); the rest run on a clean stack.
SCENARIOS = {
    "automatic-failover.md": (scenario_primary_pool_down, restore_primary_pool),
    "failback.md": (scenario_failed_over, None),
}


def test_runbook_commands_run_against_the_local_stack(stack: Stack, tmp_path):
    """Every relayctl line of runbooks/ runs, page by page, in the situation the page is written
    for (SCENARIOS; a clean stack otherwise), and exits with the code its `# exit N` note says."""
    settled(stack)
    cmds = runbook_commands()
    assert len(cmds) >= 10, "runbooks give their relayctl commands in ```sh blocks"
    unannotated = [f"{name}: {line}" for name, line, code in cmds if code is None]
    assert not unannotated, f"runbook lines without '# exit N': {unannotated}"
    pages = {name for name, _, _ in cmds}
    assert {"forced-failover.md", "failback.md", "game-day-drill.md"} <= pages
    assert any(" failover" in line for _, line, _ in cmds) and any(" failback" in line for _, line, _ in cmds)
    env = {"RELAY_CONFIG": stack.config, "PRIMARY": A, "STANDBY": B, "BACKFILL_STATE": str(tmp_path / "backfill.json")}
    ran = 0
    for page in sorted(pages):
        setup, teardown = SCENARIOS.get(page, (scenario_clean, None))
        setup(stack)
        try:
            for name, line, want in cmds:
                if name != page:
                    continue
                expanded = line
                for k, v in env.items():
                    expanded = expanded.replace(f'"${k}"', v).replace(f"${{{k}}}", v).replace(f"${k}", v)
                args = expanded.split()[1:]

                def run():
                    return subprocess.run([binary("relayctl"), *args], capture_output=True, text=True, timeout=300)

                out = run()
                if args[-1] == "status" and out.returncode != want:
                    # status only observes: the page's code holds once the proxies have seen the
                    # switch set by the line before (their control cache, 5 s).
                    out = eventually(lambda: (o := run()).returncode == want and o, timeout=20, interval=0.5,
                                     what=f"{name}: `{line}` exits {want} once the proxies saw the switch")
                assert out.returncode == want, f"{name}: `{line}` exited {out.returncode}, the page says {want}:\n{out.stdout[-1500:]}\n{out.stderr[-500:]}"
                ran += 1
        finally:
            if teardown:
                teardown(stack)
    assert ran == len(cmds)
    scenario_clean(stack)


def test_drain_switch_is_seen_in_time_and_survives_a_restart(stack: Stack):
    s = stack
    settled(s)
    assert health(s.proxy_b) == 200
    t0 = time.time()
    s.relayctl("drain", B)
    until(lambda: health(s.proxy_b) == 503, timeout=10)
    print(f"\ndrain observed after {time.time() - t0:.2f} s")
    # Survives a restart of the proxy (the switch lives in SSM, not in the process).
    log = s.proxy_b.log_path
    s.proxy_b.stop()
    port = int(s.proxy_b.url.rsplit(":", 1)[1])  # the same address: relay.json points at it
    s.proxy_b = start_proxy(s.b, s.a, log + ".2", port=port)
    assert health(s.proxy_b) == 503
    s.relayctl("undrain", B)
    until(lambda: health(s.proxy_b) == 200, timeout=10)


def test_reconcile_finds_and_repairs_differences_and_backfill_seeds(stack: Stack, tmp_path):
    s = stack
    settled(s)
    adm_a = client("cognito-idp", s.a["endpoint"], A)
    adm_b = client("cognito-idp", s.b["endpoint"], B)
    # Users that exist only on A (created by an admin, not through the proxy: no events).
    only_a = [f"seed-{uuid.uuid4().hex[:6]}@example.com" for _ in range(3)]
    for u in only_a:
        adm_a.admin_create_user(UserPoolId=s.a["pool_id"], Username=u, MessageAction="SUPPRESS",
                                UserAttributes=[{"Name": "email", "Value": u}, {"Name": "name", "Value": "Seed"}])
    out = s.relayctl("--json", "reconcile", "--from", A, "--to", B, code=3)
    assert sorted((d["key"], d["kind"]) for d in json.loads(out.stdout)["differences"]) == sorted((u, "missing") for u in only_a)
    # backfill seeds them, resumably (a second run creates nothing).
    state = str(tmp_path / "bf.json")
    out = s.relayctl("--json", "backfill", "--from", A, "--to", B, "--state", state)
    assert json.loads(out.stdout)["created"] >= 3
    out = s.relayctl("--json", "backfill", "--from", A, "--to", B, "--state", state)
    assert json.loads(out.stdout)["created"] == 0
    # An attribute drifts on B; reconcile sees it and --apply repairs it.
    u = adm_b.list_users(UserPoolId=s.b["pool_id"], Filter=f'email = "{only_a[0]}"')["Users"][0]["Username"]
    adm_b.admin_update_user_attributes(UserPoolId=s.b["pool_id"], Username=u, UserAttributes=[{"Name": "name", "Value": "Drifted"}])
    out = s.relayctl("--json", "reconcile", "--from", A, "--to", B, code=3)
    diffs = json.loads(out.stdout)["differences"]
    assert [(d["key"], d["kind"]) for d in diffs] == [(only_a[0], "attributes")]
    # A repair B's Cognito refuses: --apply says so and exits 4, and nothing is repaired.
    strict_post(s.moto_b.endpoint, "faults", {"error500": 1000, "actions": ["AdminUpdateUserAttributes"]})
    try:
        out = s.relayctl("--json", "reconcile", "--from", A, "--to", B, "--apply", code=4)
        assert f"cannot repair {only_a[0]} (attributes)" in out.stderr
        assert (json.loads(out.stdout)["repaired"], json.loads(out.stdout)["failed"]) == (0, 1)
        assert strict_get(s.moto_b.endpoint, "faults")["hits"]["AdminUpdateUserAttributes"]["error500"] >= 1
    finally:
        strict_post(s.moto_b.endpoint, "reset")
    s.relayctl("reconcile", "--from", A, "--to", B, "--apply")
    out = s.relayctl("reconcile", "--from", A, "--to", B)
    assert "pools are equal" in out.stdout, out.stdout
    attrs = {a["Name"]: a["Value"] for a in adm_b.admin_get_user(UserPoolId=s.b["pool_id"], Username=u)["UserAttributes"]}
    assert attrs["name"] == "Seed"
