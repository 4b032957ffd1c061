"""The standby is never an easier door than Cognito itself (issue 19), written as the attacker
would run it: the real binaries (proxies, replicators, the auth-trigger Lambda) against two
strict emulators, both pool kinds. Each test is one attack that must fail; docs/security.md
maps each promise to its test here.

Region A's pool is the app pool; B bridges (SRP sign-in for A's pool name, sessions, half
finished sign-ups). Both regions count failed sign-ins in their own limits table and in the
peer's (RELAY_PEER_LIMITS_TABLE), so alternating regions buys no extra guesses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
import tempfile
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.harness import srp as srp_client
from tests.harness.relay import start_auth_triggers, start_proxy, start_replicator
from tests.harness.stack import (app_client, client, free_port, latest_code, provision_pair,
                                 start_strict_moto, stop_strict_moto)
from tests.harness.wait import eventually

A, B = "eu-west-1", "eu-central-1"
PASSWORD = "Attack-Pass1!"
WRONG = "Attack-Wrong1!"
ATTACKER = "Attacker-Pass9!"


class Stack:
    def __init__(self, kind: str, workdir: str):
        self.kind = kind
        self.workdir = workdir
        self.moto_a = start_strict_moto(free_port(), log_path=os.path.join(workdir, "moto-a.log"))
        self.moto_b = start_strict_moto(free_port(), log_path=os.path.join(workdir, "moto-b.log"))
        self.a, self.b = provision_pair(self.moto_a.endpoint, A, self.moto_b.endpoint, B, kind)
        self.triggers = start_auth_triggers((self.a, self.b), workdir)
        self.proxy_a = start_proxy(self.a, self.b, os.path.join(workdir, "proxy-a.log"),
                                   **self.limits(self.a, self.b))
        self.proxy_b = start_proxy(self.b, self.a, os.path.join(workdir, "proxy-b.log"),
                                   **self.limits(self.b, self.a))
        self.rep_a = start_replicator(self.a, os.path.join(workdir, "replicator-a.log"))
        self.rep_b = start_replicator(self.b, os.path.join(workdir, "replicator-b.log"))
        self.client_id = self.a["public_client_id"]
        self.app_pool = self.a["pool_id"]
        self.extra: list = []

    @staticmethod
    def limits(home: dict, peer: dict) -> dict:
        return {"RELAY_LIMITS_TABLE": home["limits_table"], "RELAY_PEER_LIMITS_TABLE": peer["limits_table"],
                "RELAY_FAILED_SIGNINS_PER_USERNAME": "5", "RELAY_LOCKOUT_BASE_S": "60",
                "RELAY_RATE_PER_USERNAME": "1000", "RELAY_RATE_PER_IP": "0"}

    def close(self) -> None:
        for p in (self.proxy_a, self.proxy_b, self.rep_a, self.rep_b, *self.triggers, *self.extra):
            p.stop()
        stop_strict_moto(self.moto_a)
        stop_strict_moto(self.moto_b)

    def url(self, region: str) -> str:
        return self.proxy_a.url if region == A else self.proxy_b.url

    def app(self, region: str, url: str | None = None):
        return app_client(url or self.url(region), region)

    def names(self) -> tuple[str, str]:
        n = uuid.uuid4().hex[:10]
        email = f"v{n}@example.com"
        return (email if self.kind == "email" else f"victim{n}"), email

    def admin(self, region: str):
        side = self.a if region == A else self.b
        return client("cognito-idp", side["endpoint"], region), side["pool_id"]

    def user(self, region: str, name: str) -> dict | None:
        idp, pool = self.admin(region)
        try:
            return idp.admin_get_user(UserPoolId=pool, Username=name)
        except ClientError:
            return None

    def code(self, region: str, name: str, email: str) -> str:
        side = self.a if region == A else self.b
        internal = self.user(region, name)["Username"]
        try:
            return latest_code(side["endpoint"], side["pool_id"], internal)
        except Exception:
            return latest_code(side["endpoint"], side["pool_id"], email)

    def sign_up(self, region: str, name: str, email: str, password: str = PASSWORD, extra=()) -> dict:
        return self.app(region).sign_up(ClientId=self.client_id, Username=name, Password=password,
                                        UserAttributes=[{"Name": "email", "Value": email}, *extra])

    def victim(self) -> str:
        """A user who signed up and confirmed at A, replicated (with SRP material) to B."""
        name, email = self.names()
        self.sign_up(A, name, email)
        self.app(A).confirm_sign_up(ClientId=self.client_id, Username=name,
                                    ConfirmationCode=self.code(A, name, email))
        eventually(lambda: (u := self.user(B, name)) is not None and u["UserStatus"] == "CONFIRMED" and u["Enabled"],
                   timeout=30, what="the victim is confirmed at B")
        # The bridge can verify them at B (material arrived).
        eventually(lambda: "AuthenticationResult" in self.srp_sign_in(B, name, PASSWORD, lenient=True),
                   timeout=30, interval=0.5, what="SRP material at B")
        return name

    def password_sign_in(self, region: str, name: str, password: str, url: str | None = None) -> dict:
        return self.app(region, url).initiate_auth(ClientId=self.client_id, AuthFlow="USER_PASSWORD_AUTH",
                                                   AuthParameters={"USERNAME": name, "PASSWORD": password})

    def srp_start(self, region: str, name: str, url: str | None = None) -> tuple[int, dict]:
        a, srp_a = srp_client.start()
        out = self.app(region, url).initiate_auth(ClientId=self.client_id, AuthFlow="USER_SRP_AUTH",
                                                  AuthParameters={"USERNAME": name, "SRP_A": srp_a})
        assert out["ChallengeName"] == "PASSWORD_VERIFIER", out
        return a, out["ChallengeParameters"]

    def srp_answer(self, region: str, password: str, a: int, params: dict, username: str | None = None,
                   url: str | None = None) -> dict:
        return self.app(region, url).respond_to_auth_challenge(
            ClientId=self.client_id, ChallengeName="PASSWORD_VERIFIER",
            ChallengeResponses={"USERNAME": username or params["USER_ID_FOR_SRP"],
                                **srp_client.claim(self.app_pool, password, a, params)})

    def srp_sign_in(self, region: str, name: str, password: str, lenient: bool = False, url: str | None = None):
        try:
            a, params = self.srp_start(region, name, url)
            return self.srp_answer(region, password, a, params, url=url)
        except ClientError:
            if lenient:
                return {}
            raise


@pytest.fixture(scope="module", params=["username", "email"])
def stack(request):
    workdir = tempfile.mkdtemp(prefix=f"relay-attacks-{request.param}-")
    s = Stack(request.param, workdir)
    yield s
    s.close()


def error_of(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


# --- 1. Guessing is bound by the lockout, everywhere ---------------------------------------

def test_one_secret_block_takes_one_guess(stack: Stack):
    """A wrong proof spends the block: the right password cannot follow on the same block."""
    name = stack.victim()
    a, params = stack.srp_start(B, name)
    assert error_of(lambda: stack.srp_answer(B, WRONG, a, params))[0] == "NotAuthorizedException"
    code, _ = error_of(lambda: stack.srp_answer(B, PASSWORD, a, params))
    assert code == "NotAuthorizedException", "the block was spent by the first answer"


def test_an_answer_for_another_username_than_the_blocks_is_refused(stack: Stack):
    """Random USERNAMEs per try used to dodge the per-user lockout; now they are refused."""
    name = stack.victim()
    a, params = stack.srp_start(B, name)
    code, _ = error_of(lambda: stack.srp_answer(B, PASSWORD, a, params, username=f"rnd{uuid.uuid4().hex[:8]}"))
    assert code == "NotAuthorizedException"


def test_a_locked_user_is_refused_in_both_regions_even_with_the_right_password(stack: Stack):
    """An attacker alternating regions (password sign-ins at A, SRP guesses at B, typed in
    another case) gets no more than five tries; then even the right password is refused
    everywhere, without being evaluated."""
    name = stack.victim()
    codes = []
    for i in range(5):
        if i % 2 == 0:
            codes.append(error_of(lambda: stack.password_sign_in(A, name, WRONG))[0])
        else:
            codes.append(error_of(lambda: stack.srp_sign_in(B, name.upper(), WRONG))[0])
    assert codes == ["NotAuthorizedException"] * 5, codes
    assert error_of(lambda: stack.password_sign_in(A, name, PASSWORD))[0] == "TooManyRequestsException"
    assert error_of(lambda: stack.srp_sign_in(B, name.upper(), PASSWORD))[0] == "TooManyRequestsException"
    assert error_of(lambda: stack.password_sign_in(B, name, PASSWORD))[0] == "TooManyRequestsException"


# --- 2. A sign-up belongs to whoever started it ---------------------------------------------

def test_signing_up_again_with_another_password_cannot_take_over_a_pending_sign_up(stack: Stack):
    """The victim signs up at A and has not confirmed yet; the attacker signs up again at B with
    the same address and their own password. Cognito's answer stands; the victim confirms
    at A with their own password."""
    name, email = stack.names()
    stack.sign_up(A, name, email)
    eventually(lambda: stack.user(B, name) is not None, timeout=30, what="the sign-up is replicated")
    code, _ = error_of(lambda: stack.sign_up(B, name, email, password=ATTACKER,
                                             extra=[{"Name": "name", "Value": "attacker"}]))
    assert code == "UsernameExistsException"
    stack.app(A).confirm_sign_up(ClientId=stack.client_id, Username=name,
                                 ConfirmationCode=stack.code(A, name, email))
    assert "AuthenticationResult" in stack.password_sign_in(A, name, PASSWORD)
    assert error_of(lambda: stack.password_sign_in(A, name, ATTACKER))[0] == "NotAuthorizedException"


def test_signing_up_again_with_the_same_password_keeps_the_first_sign_ups_attributes(stack: Stack):
    name, email = stack.names()
    stack.sign_up(A, name, email)
    eventually(lambda: stack.user(B, name) is not None, timeout=30, what="the sign-up is replicated")
    eventually(lambda: error_of(lambda: stack.password_sign_in(B, name, PASSWORD))[0] == "UserNotConfirmedException",
               timeout=30, interval=0.5, what="B answers as for an unconfirmed user")
    stack.sign_up(B, name, email, extra=[{"Name": "name", "Value": "injected"}])
    attrs = {a["Name"]: a["Value"] for a in stack.user(B, name)["UserAttributes"]}
    assert "name" not in attrs, "attributes never come from the second request"


# --- 3. MFA is never downgraded --------------------------------------------------------------

def totp(secret: str, at: float | None = None) -> str:
    """RFC 6238 (HMAC-SHA1, 30 s, 6 digits), as an authenticator app computes it."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    step = int((time.time() if at is None else at) // 30)
    h = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = h[-1] & 0x0F
    return f"{(struct.unpack('>I', h[off:off + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def enrol_totp_at_a(stack: Stack, name: str) -> str:
    """Adds an authenticator through A's proxy (the relay sees the secret and its
    confirmation) and prefers it. Returns the secret."""
    idp = stack.app(A)
    access = stack.password_sign_in(A, name, PASSWORD)["AuthenticationResult"]["AccessToken"]
    secret = idp.associate_software_token(AccessToken=access)["SecretCode"]
    assert idp.verify_software_token(AccessToken=access, UserCode=totp(secret))["Status"] == "SUCCESS"
    idp.set_user_mfa_preference(AccessToken=access,
                                SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True})
    return secret


def test_a_totp_user_gets_no_tokens_on_the_standby_with_the_password_alone(stack: Stack):
    name = stack.victim()  # signs in by SRP at B before enrolling TOTP
    enrol_totp_at_a(stack, name)

    def challenged_at_b():
        a, params = stack.srp_start(B, name)
        return stack.srp_answer(B, PASSWORD, a, params).get("ChallengeName") == "SOFTWARE_TOKEN_MFA"

    eventually(challenged_at_b, timeout=30, interval=0.5,
               what="the bridge asks for the authenticator once the enrolment arrived")
    code, message = error_of(lambda: stack.password_sign_in(B, name, PASSWORD))
    assert (code, "multi-factor" in message) == ("NotAuthorizedException", True), \
        "USER_PASSWORD_AUTH at the standby pool gives no tokens on the password alone either"


def test_a_totp_user_keeps_their_authenticator_on_the_standby(stack: Stack):
    """Beyond Cognito's own replication: the standby's bridge answers SOFTWARE_TOKEN_MFA with the
    replicated secret. A wrong code, a replayed code and a replayed session all fail."""
    name = stack.victim()
    secret = enrol_totp_at_a(stack, name)
    idp = stack.app(B)

    def challenge() -> dict:
        a, params = stack.srp_start(B, name)
        out = stack.srp_answer(B, PASSWORD, a, params)
        assert out.get("ChallengeName") == "SOFTWARE_TOKEN_MFA", out
        return out

    eventually(lambda: challenge() is not None, timeout=30, interval=0.5, what="the TOTP enrolment reached B")

    def answer(ch: dict, code: str) -> dict:
        user = name.lower()
        return idp.respond_to_auth_challenge(ClientId=stack.client_id, ChallengeName="SOFTWARE_TOKEN_MFA",
                                             Session=ch["Session"],
                                             ChallengeResponses={"USERNAME": user, "SOFTWARE_TOKEN_MFA_CODE": code})

    wrong = f"{(int(totp(secret)) + 1) % 1_000_000:06d}"
    assert error_of(lambda: answer(challenge(), wrong))[0] == "CodeMismatchException"
    ch = challenge()
    code = totp(secret)
    out = answer(ch, code)
    assert "AccessToken" in out["AuthenticationResult"], out
    assert error_of(lambda: answer(ch, code))[0] == "NotAuthorizedException", "a session answers once"
    assert error_of(lambda: answer(challenge(), code))[0] == "CodeMismatchException", "a code is usable once"


def test_a_user_whose_mfa_state_the_standby_never_learned_is_treated_as_having_mfa(stack: Stack):
    """Created straight in pool B (as a backfill or an Admin call would): no MFA state here."""
    name, email = stack.names()
    idp, pool = stack.admin(B)
    attrs = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}]
    idp.admin_create_user(UserPoolId=pool, Username=name, UserAttributes=attrs, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool, Username=name, Password=PASSWORD, Permanent=True)
    code, message = error_of(lambda: stack.password_sign_in(B, name, PASSWORD))
    assert code == "NotAuthorizedException" and "multi-factor" in message


# --- 6. Nothing tells an outsider who exists -------------------------------------------------

def test_real_and_unknown_users_get_challenges_of_the_same_shape(stack: Stack):
    name = stack.victim()
    _, real = stack.srp_start(B, name.upper())
    _, unknown = stack.srp_start(B, ("NOBODY" + uuid.uuid4().hex[:8]).upper() + ("@EXAMPLE.COM" if stack.kind == "email" else ""))
    assert real["USER_ID_FOR_SRP"] == real["USER_ID_FOR_SRP"].lower(), "no stored case is echoed"
    assert unknown["USER_ID_FOR_SRP"] == unknown["USER_ID_FOR_SRP"].lower()
    assert sorted(real) == sorted(unknown)
    assert len(real["SECRET_BLOCK"]) == len(unknown["SECRET_BLOCK"])
    assert len(real["SALT"]) == len(unknown["SALT"]) or abs(len(real["SALT"]) - len(unknown["SALT"])) <= 2


# --- 7. The standby's bridge is open only while it is needed ---------------------------------

def test_the_bridge_is_closed_while_the_peer_is_healthy_and_opens_when_it_is_not(stack: Stack):
    name = stack.victim()
    closed = start_proxy(stack.b, stack.a, os.path.join(stack.workdir, "proxy-b-closed.log"),
                         RELAY_PEER_HEALTH_URL=stack.proxy_a.url + "/health")
    dead = f"http://127.0.0.1:{free_port()}/health"
    opened = start_proxy(stack.b, stack.a, os.path.join(stack.workdir, "proxy-b-open.log"),
                         RELAY_PEER_HEALTH_URL=dead)
    stack.extra += [closed, opened]
    code, _ = error_of(lambda: stack.srp_sign_in(B, name, PASSWORD, url=closed.url))
    assert code == "NotAuthorizedException", "A is healthy: B's regional name is no second door"
    assert "AuthenticationResult" in stack.srp_sign_in(B, name, PASSWORD, url=opened.url), \
        "A unreachable: B bridges"


# --- 4. A session is exactly as revocable as Cognito makes it --------------------------------

def test_a_session_disabled_at_the_issuing_pool_outside_the_relay_is_not_continued(stack: Stack):
    """An admin disables the user in pool A's console (nothing replicates that). The standby,
    serving, asks A's proxy about the session before minting: A's Cognito refuses the token, so
    the standby does too. With A unreachable it falls back to the replicated marks."""
    name = stack.victim()
    sealed = stack.password_sign_in(A, name, PASSWORD)["AuthenticationResult"]["RefreshToken"]
    dead = f"http://127.0.0.1:{free_port()}/health"
    asking = start_proxy(stack.b, stack.a, os.path.join(stack.workdir, "proxy-b-asking.log"),
                         RELAY_PEER_HEALTH_URL=dead, RELAY_PEER_URL=stack.proxy_a.url + "/")
    blind = start_proxy(stack.b, stack.a, os.path.join(stack.workdir, "proxy-b-blind.log"),
                        RELAY_PEER_HEALTH_URL=dead)
    stack.extra += [asking, blind]

    def refresh(url: str) -> dict:
        return app_client(url, A).initiate_auth(ClientId=stack.client_id, AuthFlow="REFRESH_TOKEN_AUTH",
                                                AuthParameters={"REFRESH_TOKEN": sealed})

    assert "AccessToken" in refresh(asking.url)["AuthenticationResult"], "alive at A: continued"
    idp, pool = stack.admin(A)
    idp.admin_disable_user(UserPoolId=pool, Username=name)
    code, _ = error_of(lambda: refresh(asking.url))
    assert code == "NotAuthorizedException", "A's Cognito refused the token: so does the standby"
    # Without a way to ask (no RELAY_PEER_URL, A unreachable): the replicated marks alone.
    assert "AccessToken" in refresh(blind.url)["AuthenticationResult"]


def test_unauthenticated_srp_handshakes_cannot_take_every_core(stack: Stack):
    """A flood of SRP starts (no password needed) against a proxy allowed one handshake at a
    time: those that cannot get a slot within 250 ms are refused with TooManyRequestsException
    instead of queueing CPU work; the others are answered."""
    from concurrent.futures import ThreadPoolExecutor

    capped = start_proxy(stack.b, stack.a, os.path.join(stack.workdir, "proxy-b-capped.log"),
                         RELAY_SRP_MAX_CONCURRENT="1", RELAY_RATE_PER_IP="0")
    stack.extra.append(capped)

    def start(i: int) -> str:
        try:
            stack.srp_start(B, f"flood{i}-{uuid.uuid4().hex[:6]}", url=capped.url)
            return "answered"
        except ClientError as e:
            return e.response["Error"]["Code"]

    with ThreadPoolExecutor(max_workers=24) as pool:
        seen = list(pool.map(start, range(48)))
    assert "answered" in seen, seen
    assert "TooManyRequestsException" in seen, seen
    assert set(seen) <= {"answered", "TooManyRequestsException"}, seen
