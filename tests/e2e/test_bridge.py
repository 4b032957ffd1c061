"""The standby sign-in bridge with the real binaries (proxies, replicators, the auth-trigger
Lambda under the fake Lambda runtime) against two strict emulators, both pool kinds.

An app is built with region A's pool id and the public ClientId. After a user signs up and
confirms through A, region B's proxy must sign them in by SRP (the proof bound to A's pool
name, checked by B's proxy against the replicated verifier) and hand out tokens of pool B,
minted through CUSTOM_AUTH and the trigger. A wrong password, an unknown user, a replayed
claim, a forged assertion and an app-sent CUSTOM_AUTH all fail the way Cognito fails."""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.harness import srp as srp_client
from tests.harness.relay import start_auth_triggers, start_proxy, start_replicator
from tests.harness.stack import app_client, client, free_port, latest_code, provision_pair, start_strict_moto, stop_strict_moto
from tests.harness.wait import eventually

A, B = "eu-west-1", "eu-central-1"
PASSWORD = "Bridge-Pass1!"
WRONG = "Bridge-Wrong1!"


class Stack:
    def __init__(self, kind: str, workdir: str):
        self.kind = kind
        self.moto_a = start_strict_moto(free_port(), log_path=os.path.join(workdir, "moto-a.log"))
        self.moto_b = start_strict_moto(free_port(), log_path=os.path.join(workdir, "moto-b.log"))
        self.a, self.b = provision_pair(self.moto_a.endpoint, A, self.moto_b.endpoint, B, kind)
        self.triggers = start_auth_triggers((self.a, self.b), workdir)
        self.proxy_a = start_proxy(self.a, self.b, os.path.join(workdir, "proxy-a.log"))
        self.proxy_b = start_proxy(self.b, self.a, os.path.join(workdir, "proxy-b.log"),
                                   RELAY_FAILED_SIGNINS_PER_USERNAME="4", RELAY_LOCKOUT_BASE_S="30")
        self.rep_a = start_replicator(self.a, os.path.join(workdir, "replicator-a.log"))
        self.rep_b = start_replicator(self.b, os.path.join(workdir, "replicator-b.log"))
        self.client_id = self.a["public_client_id"]

    def close(self) -> None:
        for p in (self.proxy_a, self.proxy_b, self.rep_a, self.rep_b, *self.triggers):
            p.stop()
        stop_strict_moto(self.moto_a)
        stop_strict_moto(self.moto_b)

    def names(self) -> tuple[str, dict]:
        """A fresh sign-in name and the SignUp attributes for this pool kind."""
        n = uuid.uuid4().hex[:10]
        email = f"u{n}@example.com"
        return (email if self.kind == "email" else f"user{n}"), {"Name": "email", "Value": email}

    def sign_up_at_a(self) -> str:
        idp = app_client(self.proxy_a.url, A)
        name, email = self.names()
        idp.sign_up(ClientId=self.client_id, Username=name, Password=PASSWORD, UserAttributes=[email])
        internal = client("cognito-idp", self.a["endpoint"], A).admin_get_user(
            UserPoolId=self.a["pool_id"], Username=name)["Username"]
        code = latest_code(self.a["endpoint"], self.a["pool_id"], internal)
        idp.confirm_sign_up(ClientId=self.client_id, Username=name, ConfirmationCode=code)
        return name

    def confirmed_at_b(self, name: str) -> bool:
        try:
            u = client("cognito-idp", self.b["endpoint"], B).admin_get_user(UserPoolId=self.b["pool_id"], Username=name)
        except ClientError:
            return False
        return u["UserStatus"] == "CONFIRMED" and u["Enabled"]


def srp_start(url: str, client_id: str, name: str) -> tuple[int, dict]:
    a, srp_a = srp_client.start()
    out = app_client(url, B).initiate_auth(ClientId=client_id, AuthFlow="USER_SRP_AUTH",
                                           AuthParameters={"USERNAME": name, "SRP_A": srp_a})
    assert out["ChallengeName"] == "PASSWORD_VERIFIER", out
    return a, out["ChallengeParameters"]


def srp_answer(url: str, client_id: str, app_pool: str, password: str, a: int, params: dict) -> dict:
    return app_client(url, B).respond_to_auth_challenge(
        ClientId=client_id, ChallengeName="PASSWORD_VERIFIER",
        ChallengeResponses={"USERNAME": params["USER_ID_FOR_SRP"], **srp_client.claim(app_pool, password, a, params)})


def claims(jwt: str) -> dict:
    body = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def error_of(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


@pytest.fixture(scope="module", params=["username", "email"])
def stack(request):
    workdir = tempfile.mkdtemp(prefix=f"relay-bridge-{request.param}-")
    s = Stack(request.param, workdir)
    yield s
    s.close()


@pytest.fixture(scope="module")
def user(stack: Stack) -> str:
    """A user who signed up and confirmed at A, replicated (with SRP material) to B."""
    name = stack.sign_up_at_a()
    eventually(lambda: stack.confirmed_at_b(name), timeout=30, what="the user is confirmed at B")
    return name


def sign_in_at_b(stack: Stack, name: str, password: str) -> dict:
    a, params = srp_start(stack.proxy_b.url, stack.client_id, name)
    return srp_answer(stack.proxy_b.url, stack.client_id, stack.a["pool_id"], password, a, params)


def test_srp_sign_in_on_the_standby_returns_tokens_of_the_standby_pool(stack: Stack, user: str):
    # The verifier is derived by B's replicator right after it applies the sign-up; the first
    # bridged sign-in may race it, so wait for a success, then check what it returned.
    def attempt():
        try:
            return sign_in_at_b(stack, user, PASSWORD)
        except ClientError:
            return None

    out = eventually(attempt, timeout=30, what="a bridged SRP sign-in at B")
    result = out["AuthenticationResult"]
    idt = claims(result["IdToken"])
    assert idt["iss"].endswith("/" + stack.b["pool_id"]), idt["iss"]
    assert result["RefreshToken"].startswith("crr1."), "the refresh token is sealed by the proxy"
    # The access token works against pool B through the proxy.
    me = app_client(stack.proxy_b.url, B).get_user(AccessToken=result["AccessToken"])
    emails = [x["Value"] for x in me["UserAttributes"] if x["Name"] == "email"]
    assert emails and (stack.kind == "username" or emails[0] == user)


def test_wrong_password_and_unknown_user_get_cognitos_answer(stack: Stack, user: str):
    code, msg = error_of(lambda: sign_in_at_b(stack, user, WRONG))
    assert (code, msg) == ("NotAuthorizedException", "Incorrect username or password.")
    # An unknown user gets a challenge like anyone (no oracle), and the same refusal.
    ghost, _ = stack.names()
    a, params = srp_start(stack.proxy_b.url, stack.client_id, ghost)
    assert set(params) >= {"SALT", "SRP_B", "SECRET_BLOCK", "USER_ID_FOR_SRP"}
    a2, params2 = srp_start(stack.proxy_b.url, stack.client_id, ghost)
    assert params2["SALT"] == params["SALT"], "a decoy salt is stable, like a real one"
    code, msg = error_of(lambda: srp_answer(stack.proxy_b.url, stack.client_id, stack.a["pool_id"], PASSWORD, a, params))
    assert (code, msg) == ("NotAuthorizedException", "Incorrect username or password.")


def test_a_claim_answers_once(stack: Stack, user: str):
    a, params = srp_start(stack.proxy_b.url, stack.client_id, user)
    answers = srp_client.claim(stack.a["pool_id"], PASSWORD, a, params)
    idp = app_client(stack.proxy_b.url, B)

    def respond():
        return idp.respond_to_auth_challenge(ClientId=stack.client_id, ChallengeName="PASSWORD_VERIFIER",
                                             ChallengeResponses={"USERNAME": params["USER_ID_FOR_SRP"], **answers})

    assert "AuthenticationResult" in respond()
    code, _ = error_of(respond)
    assert code == "NotAuthorizedException"


def test_wrong_passwords_count_toward_the_per_user_limit(stack: Stack):
    name = stack.sign_up_at_a()
    eventually(lambda: stack.confirmed_at_b(name), timeout=30, what="the user is confirmed at B")
    codes = []
    for _ in range(6):
        try:
            sign_in_at_b(stack, name, WRONG)
        except ClientError as e:
            codes.append(e.response["Error"]["Code"])
    assert codes[:4] == ["NotAuthorizedException"] * 4, codes
    assert "TooManyRequestsException" in codes[4:], codes
    # Locked: even the right password is refused now.
    code, _ = error_of(lambda: sign_in_at_b(stack, name, PASSWORD))
    assert code == "TooManyRequestsException"


def test_app_sent_custom_auth_is_refused(stack: Stack, user: str):
    for url in (stack.proxy_a.url, stack.proxy_b.url):
        code, msg = error_of(lambda: app_client(url, B).initiate_auth(
            ClientId=stack.client_id, AuthFlow="CUSTOM_AUTH", AuthParameters={"USERNAME": user}))
        assert code == "InvalidParameterException", (code, msg)


def test_a_forged_assertion_cannot_mint(stack: Stack, user: str):
    """Even with the relay client's secret, CUSTOM_AUTH straight at pool B fails without the
    bridge key: the trigger refuses any answer but a signed, bound, fresh assertion."""
    import hashlib
    import hmac

    b = stack.b
    idp = client("cognito-idp", b["endpoint"], B)

    def secret_hash(name: str) -> str:
        return base64.b64encode(hmac.new(b["relay_client_secret"].encode(), (name + b["relay_client_id"]).encode(),
                                         hashlib.sha256).digest()).decode()

    first = idp.initiate_auth(ClientId=b["relay_client_id"], AuthFlow="CUSTOM_AUTH",
                              AuthParameters={"USERNAME": user, "SECRET_HASH": secret_hash(user)})
    assert first["ChallengeName"] == "CUSTOM_CHALLENGE"
    internal = first["ChallengeParameters"]["USERNAME"]
    nonce = first["ChallengeParameters"]["nonce"]
    body = base64.urlsafe_b64encode(json.dumps({"pool": b["pool_id"], "user": internal, "nonce": nonce,
                                                "exp": int(time.time()) + 30, "why": "srp"}).encode()).decode().rstrip("=")
    forged = f"cra1.b1.{body}.{base64.urlsafe_b64encode(b'x' * 32).decode().rstrip('=')}"
    code, _ = error_of(lambda: idp.respond_to_auth_challenge(
        ClientId=b["relay_client_id"], ChallengeName="CUSTOM_CHALLENGE", Session=first["Session"],
        ChallengeResponses={"USERNAME": internal, "ANSWER": forged, "SECRET_HASH": secret_hash(internal)}))
    assert code == "NotAuthorizedException"


def test_a_backfilled_user_gets_material_from_one_password_sign_in_at_the_primary(stack: Stack):
    """A user who exists at A with a password the relay never saw (created by an admin, as
    backfill finds them) and at B without one: no SRP at B. One USER_PASSWORD_AUTH through A's
    proxy sends the material; then SRP at B works with no reset."""
    name, email = stack.names()
    adm_a = client("cognito-idp", stack.a["endpoint"], A)
    adm_b = client("cognito-idp", stack.b["endpoint"], B)
    attrs = [email, {"Name": "email_verified", "Value": "true"}]
    for adm, side in ((adm_a, stack.a), (adm_b, stack.b)):
        adm.admin_create_user(UserPoolId=side["pool_id"], Username=name, MessageAction="SUPPRESS", UserAttributes=attrs)
    adm_a.admin_set_user_password(UserPoolId=stack.a["pool_id"], Username=name, Password=PASSWORD, Permanent=True)
    code, msg = error_of(lambda: sign_in_at_b(stack, name, PASSWORD))
    assert (code, msg) == ("NotAuthorizedException", "Incorrect username or password.")
    out = app_client(stack.proxy_a.url, A).initiate_auth(ClientId=stack.client_id, AuthFlow="USER_PASSWORD_AUTH",
                                                          AuthParameters={"USERNAME": name, "PASSWORD": PASSWORD})
    assert "AuthenticationResult" in out

    def attempt():
        try:
            return sign_in_at_b(stack, name, PASSWORD)
        except ClientError:
            return None

    result = eventually(attempt, timeout=30, what="SRP at B after one password sign-in at A")["AuthenticationResult"]
    assert claims(result["IdToken"])["iss"].endswith("/" + stack.b["pool_id"])


def test_a_user_who_signs_up_on_the_standby_signs_in_there_by_srp(stack: Stack):
    """After a failover, sign-ups happen at B; B's proxy keeps their material itself."""
    idp = app_client(stack.proxy_b.url, B)
    name, email = stack.names()
    idp.sign_up(ClientId=stack.client_id, Username=name, Password=PASSWORD, UserAttributes=[email])
    internal = client("cognito-idp", stack.b["endpoint"], B).admin_get_user(
        UserPoolId=stack.b["pool_id"], Username=name)["Username"]
    code = latest_code(stack.b["endpoint"], stack.b["pool_id"], internal)
    idp.confirm_sign_up(ClientId=stack.client_id, Username=name, ConfirmationCode=code)
    result = sign_in_at_b(stack, name, PASSWORD)["AuthenticationResult"]
    assert claims(result["IdToken"])["iss"].endswith("/" + stack.b["pool_id"])
    code, msg = error_of(lambda: sign_in_at_b(stack, name, WRONG))
    assert (code, msg) == ("NotAuthorizedException", "Incorrect username or password.")


def test_the_bridge_matches_the_user_whatever_case_they_type(stack: Stack, user: str):
    """Cognito pools compare user names case-insensitively by default: so does the bridge (the
    challenge names the user id the verifier was computed with)."""
    a, params = srp_start(stack.proxy_b.url, stack.client_id, user.upper())
    assert params["USER_ID_FOR_SRP"] == user
    out = srp_answer(stack.proxy_b.url, stack.client_id, stack.a["pool_id"], PASSWORD, a, params)
    assert claims(out["AuthenticationResult"]["IdToken"])["iss"].endswith("/" + stack.b["pool_id"])
    # An unknown user's decoy names the lower-cased key too (no hint from the case).
    ghost, _ = stack.names()
    _, decoy = srp_start(stack.proxy_b.url, stack.client_id, ghost.upper())
    assert decoy["USER_ID_FOR_SRP"] == ghost.lower()
