"""Limits shared by every proxy instance of a region: two proxy processes against the
emulator's DynamoDB (RELAY_LIMITS_TABLE) count into the same counters, so a caller cannot
escape a per-username limit, or a credential-stuffing lockout, by spreading requests over
instances (what Lambda does)."""

from __future__ import annotations

import tempfile
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.harness.relay import start_proxy

from .conftest import Regions
from .test_proxy import PASSWORD, error_code, sign_up_and_confirm


@pytest.fixture(scope="module")
def stack():
    r = Regions("username", tempfile.mkdtemp(prefix="relay-limits-"))
    yield r
    r.close()


def two_proxies(stack, tmp_path, **extra):
    env = {"RELAY_LIMITS_TABLE": stack.a["limits_table"], "RELAY_RATE_PER_IP": "0", **extra}
    return [start_proxy(stack.a, None, str(tmp_path / f"p{i}.log"), **env) for i in (1, 2)]


def outcome(call) -> str:
    try:
        call()
        return "ok"
    except ClientError as e:
        return error_code(e)


def test_a_per_username_limit_holds_across_two_processes(stack, tmp_path):
    procs = two_proxies(stack, tmp_path, RELAY_RATE_PER_USERNAME="4")
    try:
        idps = [stack.client(p.url) for p in procs]
        name = f"rate{uuid.uuid4().hex[:8]}"
        seen = [outcome(lambda: idps[i % 2].forgot_password(ClientId=stack.public_client_id, Username=name)) for i in range(6)]
        assert "TooManyRequestsException" not in seen[:4], seen
        assert seen[4:] == ["TooManyRequestsException"] * 2, "the 5th and 6th requests, on either process, are over the shared limit"
        other = outcome(lambda: idps[0].forgot_password(ClientId=stack.public_client_id, Username=name + "x"))
        assert other != "TooManyRequestsException"
    finally:
        for p in procs:
            p.stop()


def test_failed_sign_ins_lock_a_username_across_processes(stack, tmp_path):
    procs = two_proxies(stack, tmp_path, RELAY_RATE_PER_USERNAME="100", RELAY_FAILED_SIGNINS_PER_USERNAME="3", RELAY_LOCKOUT_BASE_S="30")
    try:
        idps = [stack.client(p.url) for p in procs]
        user, bystander = f"stuff{uuid.uuid4().hex[:8]}", f"by{uuid.uuid4().hex[:8]}"
        for u in (user, bystander):
            sign_up_and_confirm(stack, idps[0], u, [{"Name": "email", "Value": f"{u}@example.com"}])

        def sign_in(i, u, pw):
            return outcome(lambda: idps[i].initiate_auth(ClientId=stack.public_client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": u, "PASSWORD": pw}))

        assert [sign_in(i % 2, user, "Wrong-Passw0rd!") for i in range(3)] == ["NotAuthorizedException"] * 3
        assert sign_in(1, user, PASSWORD) == "TooManyRequestsException", "locked on the other process too, even with the right password"
        assert sign_in(0, user, PASSWORD) == "TooManyRequestsException"
        assert sign_in(1, bystander, PASSWORD) == "ok", "other users sign in"
    finally:
        for p in procs:
            p.stop()
