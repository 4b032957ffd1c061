"""The real client libraries prove the standby sign-in bridge: amazon-cognito-identity-js and
Amplify v6 (tests/clients/journey.mjs, run by Node), configured as an app is built — with the
app pool id (region A's) and the public ClientId — against a relay proxy as their endpoint.

Journeys, for both pool kinds: sign up and confirm through the primary; default (SRP) sign-in,
a wrong password refused; sessions refresh (Amplify `fetchAuthSession({forceRefresh: true})`,
identity-js `refreshSession`); a globally signed-out session does not. Then fail over (drain the
primary with relayctl, point the apps' endpoint at the standby) and the same holds there, with
the already signed-in apps keeping their sessions (fresh tokens whose issuer is the standby
pool) and a half-finished sign-up completing on the standby; then fail back and the same holds
in the other direction.

Each step is a separate Node process; the app's local storage (tokens) lives in a JSON file
between steps, as it does across an app's restarts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

from tests.harness.relay import ROOT, binary, start_auth_triggers, start_proxy, start_replicator
from tests.harness.stack import client, free_port, latest_code, mailbox, provision_pair, start_strict_moto, stop_strict_moto
from tests.harness.wait import eventually

A, B = "eu-west-1", "eu-central-1"
CLIENTS = os.path.join(ROOT, "tests", "clients")
JOURNEY = os.path.join(CLIENTS, "journey.mjs")
LIBS = ("amplify", "identity-js")
PASSWORD = "Journey-Pass1!"
WRONG = "Journey-Wrong1!"


class Stack:
    """Two regions, a proxy and a replicator each, the auth triggers, and relayctl."""

    def __init__(self, kind: str, workdir: str):
        self.kind, self.workdir = kind, workdir
        self.moto_a = start_strict_moto(free_port(), log_path=os.path.join(workdir, "moto-a.log"))
        self.moto_b = start_strict_moto(free_port(), log_path=os.path.join(workdir, "moto-b.log"))
        self.a, self.b = provision_pair(self.moto_a.endpoint, A, self.moto_b.endpoint, B, kind)
        self.triggers = start_auth_triggers((self.a, self.b), workdir)
        self.proxy_a = start_proxy(self.a, self.b, os.path.join(workdir, "proxy-a.log"))
        self.proxy_b = start_proxy(self.b, self.a, os.path.join(workdir, "proxy-b.log"))
        self.rep_a = start_replicator(self.a, os.path.join(workdir, "replicator-a.log"))
        self.rep_b = start_replicator(self.b, os.path.join(workdir, "replicator-b.log"))
        self.config = os.path.join(workdir, "relay.json")
        regions = []
        for side, proxy, role in ((self.a, self.proxy_a, "primary"), (self.b, self.proxy_b, "standby")):
            regions.append({"name": side["region"], "role": role, "health_url": proxy.url + "/health",
                            "user_pool_id": side["pool_id"], "username_attributes": side["username_attributes"],
                            "inbound_queue_url": side["inbound_queue_url"], "dlq_url": side["dlq_url"],
                            "fallback_queue_url": side["fallback_queue_url"],
                            "drain_parameter": side["drain_parameter"], "aws_endpoint": side["endpoint"]})
        with open(self.config, "w") as f:
            json.dump({"regions": regions}, f)
        self.endpoint = self.proxy_a.url  # where the apps' endpoint points now

    def relayctl(self, *args: str) -> None:
        out = subprocess.run([binary("relayctl"), "--config", self.config, *args], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, f"relayctl {args}: {out.returncode} {out.stderr}"

    def fail_over(self) -> None:
        """Region A is drained; the apps' endpoint now reaches the standby."""
        self.relayctl("drain", A)
        self.endpoint = self.proxy_b.url

    def fail_back(self) -> None:
        self.relayctl("undrain", A)
        self.relayctl("drain", B)
        self.endpoint = self.proxy_a.url

    def user(self, side: dict, username: str) -> dict | None:
        idp = client("cognito-idp", side["endpoint"], side["region"])
        try:
            return idp.admin_get_user(UserPoolId=side["pool_id"], Username=username)
        except idp.exceptions.UserNotFoundException:
            return None

    def close(self) -> None:
        for p in (self.proxy_a, self.proxy_b, self.rep_a, self.rep_b):
            p.stop()
        for host in self.triggers:
            host.stop()
        stop_strict_moto(self.moto_a)
        stop_strict_moto(self.moto_b)


@pytest.fixture(scope="module", params=["username", "email"])
def stack(request):
    if not os.path.isdir(os.path.join(CLIENTS, "node_modules")):
        pytest.fail("tests/clients/node_modules is missing: run scripts/setup")
    workdir = tempfile.mkdtemp(prefix=f"relay-clients-{request.param}-")
    s = Stack(request.param, workdir)
    yield s
    s.close()


class App:
    """One app install: a client library, its local storage (a file), the app pool id and
    public ClientId it was built with; its endpoint follows the stack's (failover)."""

    def __init__(self, s: Stack, lib: str, username: str, email: str):
        self.s, self.lib, self.username, self.email = s, lib, username, email
        self.state = os.path.join(s.workdir, f"app-{lib}-{uuid.uuid4().hex[:8]}.json")

    def run(self, action: str, **extra) -> dict:
        args = {"lib": self.lib, "action": action, "endpoint": self.s.endpoint, "poolId": self.s.a["pool_id"],
                "clientId": self.s.a["public_client_id"], "state": self.state, "username": self.username,
                "email": self.email, **extra}
        out = subprocess.run(["node", JOURNEY, json.dumps(args)], cwd=CLIENTS, capture_output=True, text=True,
                             timeout=120)
        lines = out.stdout.strip().splitlines()
        assert out.returncode == 0 and lines, f"{self.lib} {action}: rc={out.returncode} {out.stderr[-2000:]}"
        return json.loads(lines[-1])

    def snapshot(self) -> str:
        copy = self.state + ".snapshot"
        shutil.copyfile(self.state, copy)
        return copy

    def restore(self, copy: str) -> None:
        shutil.copyfile(copy, self.state)


def new_app(s: Stack, lib: str) -> App:
    tag = uuid.uuid4().hex[:8]
    email = f"{lib}-{tag}@example.com"
    return App(s, lib, email if s.kind == "email" else f"{lib}-{tag}", email)


def issuer(side: dict) -> str:
    return f"https://cognito-idp.{side['region']}.amazonaws.com/{side['pool_id']}"


def sign_up_and_confirm(s: Stack, app: App, side: dict) -> None:
    out = app.run("signUp", password=PASSWORD)
    assert out["ok"], out
    code = latest_code(side["endpoint"], side["pool_id"], app.email, "SIGN_UP")
    out = app.run("confirmSignUp", code=code)
    assert out["ok"], out


def assert_signed_in(out: dict, side: dict) -> None:
    assert out["ok"], out
    if "isSignedIn" in out:
        assert out["isSignedIn"] is True, out
    else:
        assert out["authFlow"] == "USER_SRP_AUTH", out
    assert out["iss"] == issuer(side) and out["id_iss"] == issuer(side), out


def assert_incorrect(out: dict) -> None:
    assert (out["ok"], out.get("name"), out.get("message")) == (
        False, "NotAuthorizedException", "Incorrect username or password."), out


def refresh(app: App) -> dict:
    """The library's own way to renew a session."""
    if app.lib == "amplify":
        return app.run("session", forceRefresh=True)
    return app.run("refreshSession")


def assert_refresh_refused(out: dict) -> None:
    # Amplify drops a session it cannot refresh (no tokens); identity-js reports the error.
    assert out["ok"] is False, out
    assert out["name"] in ("NoSession", "NotAuthorizedException"), out


# ---------------------------------------------------------------------------------- primary


@pytest.mark.parametrize("lib", LIBS)
def test_primary_sign_up_srp_sign_in_refresh_and_sign_out(stack: Stack, lib: str):
    s = stack
    app = new_app(s, lib)
    sign_up_and_confirm(s, app, s.a)
    assert_incorrect(app.run("signIn", password=WRONG))
    signed_in = app.run("signIn", password=PASSWORD)
    assert_signed_in(signed_in, s.a)
    fresh = refresh(app)
    assert fresh["ok"] and fresh["iss"] == issuer(s.a) and fresh["jti"] != signed_in["jti"], fresh
    # a globally signed-out session does not refresh, even from a copy of the app's storage
    before = app.snapshot()
    assert app.run("globalSignOut")["ok"]
    app.restore(before)
    assert_refresh_refused(refresh(app))


def test_primary_half_finished_sign_up_completes_with_a_resent_code(stack: Stack):
    s = stack
    app = new_app(s, "amplify")
    assert app.run("signUp", password=PASSWORD)["ok"]
    out = app.run("signIn", password=PASSWORD)
    assert out["ok"] and out["isSignedIn"] is False and out["nextStep"] == "CONFIRM_SIGN_UP", out
    assert app.run("resendSignUpCode")["ok"]
    code = latest_code(s.a["endpoint"], s.a["pool_id"], app.email, "RESEND")
    assert app.run("confirmSignUp", code=code)["ok"]
    assert_signed_in(app.run("signIn", password=PASSWORD), s.a)


# ---------------------------------------------------------------------------------- failover
#
# One story per pool kind, in phases (pytest runs them in this order for each stack): the apps
# are set up on the primary, the primary is drained and the apps' endpoint points at the
# standby, later back. State is carried on the stack object.


def prepared(s: Stack) -> dict:
    """The apps of the story, set up on the primary before the failover (once per stack)."""
    if getattr(s, "story", None) is not None:
        return s.story
    st = {
        "signed_in": {lib: new_app(s, lib) for lib in LIBS},    # keep their sessions across it
        "fresh": {lib: new_app(s, lib) for lib in LIBS},        # sign in for the first time on B
        "signed_out": new_app(s, "identity-js"),                # signed out before the failover
        "pending": new_app(s, "amplify"),                       # signs up, does not confirm
    }
    for app in (*st["signed_in"].values(), *st["fresh"].values(), st["signed_out"]):
        sign_up_and_confirm(s, app, s.a)
    for app in (*st["signed_in"].values(), st["signed_out"]):
        assert_signed_in(app.run("signIn", password=PASSWORD), s.a)
    stale = st["signed_out"].snapshot()
    assert st["signed_out"].run("globalSignOut")["ok"]
    st["signed_out"].restore(stale)
    assert st["pending"].run("signUp", password=PASSWORD)["ok"]
    for app in (*st["signed_in"].values(), *st["fresh"].values(), st["signed_out"]):
        eventually(lambda app=app: (s.user(s.b, app.username) or {}).get("UserStatus") == "CONFIRMED", timeout=60)
    eventually(lambda: s.user(s.b, st["pending"].username) is not None, timeout=60)
    s.story = st
    return st


def on_standby(s: Stack) -> dict:
    st = prepared(s)
    if s.endpoint != s.proxy_b.url:
        s.fail_over()
    return st


def test_failover_default_srp_sign_in_works_on_the_standby(stack: Stack):
    s = stack
    st = on_standby(s)
    for app in st["fresh"].values():
        assert_incorrect(app.run("signIn", password=WRONG))
        assert_signed_in(app.run("signIn", password=PASSWORD), s.b)


def test_failover_user_signed_up_on_the_standby_signs_in_there(stack: Stack):
    s = stack
    st = on_standby(s)
    st["standby_user"] = app = new_app(s, "amplify")
    sign_up_and_confirm(s, app, s.b)
    assert_signed_in(app.run("signIn", password=PASSWORD), s.b)


def test_failover_signed_in_apps_keep_their_sessions_on_the_standby(stack: Stack):
    s = stack
    st = on_standby(s)
    for app in st["signed_in"].values():
        fresh = refresh(app)
        assert fresh["ok"] and fresh["iss"] == issuer(s.b), fresh
        again = refresh(app)  # the standby's own refresh token keeps working
        assert again["ok"] and again["iss"] == issuer(s.b), again
    assert_refresh_refused(refresh(st["signed_out"]))


def test_failover_half_finished_sign_up_completes_on_the_standby(stack: Stack):
    s = stack
    st = on_standby(s)
    pending = st["pending"]
    assert not mailbox(s.b["endpoint"], s.b["pool_id"], pending.email), "replication sent a message"
    out = pending.run("signIn", password=PASSWORD)
    assert out["ok"] and out["isSignedIn"] is False and out["nextStep"] == "CONFIRM_SIGN_UP", out
    assert pending.run("resendSignUpCode")["ok"]
    code = latest_code(s.b["endpoint"], s.b["pool_id"], pending.email)
    assert pending.run("confirmSignUp", code=code)["ok"]
    assert_signed_in(pending.run("signIn", password=PASSWORD), s.b)
    eventually(lambda: (s.user(s.a, pending.username) or {}).get("UserStatus") == "CONFIRMED", timeout=60)


def back_on_primary(s: Stack) -> dict:
    st = on_standby(s)
    if "pending_b" not in st:
        # a sign-up made on the standby and left half-finished
        st["pending_b"] = new_app(s, "identity-js")
        assert st["pending_b"].run("signUp", password=PASSWORD)["ok"]
        for app in (st["pending_b"], st["standby_user"]):
            eventually(lambda app=app: s.user(s.a, app.username) is not None, timeout=60)
        eventually(lambda: (s.user(s.a, st["standby_user"].username) or {}).get("UserStatus") == "CONFIRMED",
                   timeout=60)
    if s.endpoint != s.proxy_a.url:
        s.fail_back()
    return st


def test_failback_srp_sign_in_works_on_the_primary_again(stack: Stack):
    s = stack
    st = back_on_primary(s)
    for app in (*st["fresh"].values(), st["standby_user"]):
        assert app.run("signOut")["ok"]  # (Amplify refuses signIn while a user is signed in)
        assert_incorrect(app.run("signIn", password=WRONG))
        assert_signed_in(app.run("signIn", password=PASSWORD), s.a)


def test_failback_sessions_from_the_standby_continue_on_the_primary(stack: Stack):
    s = stack
    st = back_on_primary(s)
    # these apps hold sessions of the standby pool (signed in there, or refreshed there)
    apps = [st["standby_user"], *st["signed_in"].values()]
    for app in apps:
        fresh = refresh(app)
        assert fresh["ok"] and fresh["iss"] == issuer(s.a), fresh


def test_failback_half_finished_sign_up_from_the_standby_completes_on_the_primary(stack: Stack):
    s = stack
    st = back_on_primary(s)
    pending_b = st["pending_b"]
    assert not mailbox(s.a["endpoint"], s.a["pool_id"], pending_b.email), "replication sent a message"
    out = pending_b.run("signIn", password=PASSWORD)
    assert (out["ok"], out.get("name")) == (False, "UserNotConfirmedException"), out
    assert pending_b.run("resendSignUpCode")["ok"]
    assert pending_b.run("confirmSignUp", code=latest_code(s.a["endpoint"], s.a["pool_id"], pending_b.email))["ok"]
    assert_signed_in(pending_b.run("signIn", password=PASSWORD), s.a)
