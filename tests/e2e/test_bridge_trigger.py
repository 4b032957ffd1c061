"""The bridge's token mint, end to end: the real `auth-trigger` binary runs as the pool's Define /
Create / Verify Auth Challenge triggers (fake Lambda runtime, invoked by strict_moto's
CUSTOM_AUTH loop) and reads the bridge key from the region's Secrets Manager.

A correctly signed assertion (wire::bridge: `cra1.<key id>.<base64url(JSON claims)>.<base64url(
HMAC-SHA256(HMAC-SHA256(key, "bridge-assertion"), "cra1.<key id>.<claims>"))>`, claims bound to
pool, user and the challenge's nonce, expiring within 60 s) mints tokens of the pool; anything
else — another key, pool, user or nonce, expired, replayed, too long-lived, garbage, no answer —
does not. The assertion is made here, independently of the Rust code, from the format."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time

import pytest
from botocore.exceptions import ClientError

from tests.harness.relay import start_auth_triggers
from tests.harness.stack import client, free_port, provision_pair, start_strict_moto, stop_strict_moto

A, B = "eu-west-1", "eu-central-1"
PASSWORD = "Bridge-Pass1!"
NONCE_PARAMETER = "nonce"  # the CUSTOM_CHALLENGE's public parameter carrying the nonce


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def assertion(key_b64: str, kid: str, pool: str, user: str, nonce: str, exp: int | None = None,
              why: str = "srp") -> str:
    claims = {"pool": pool, "user": user, "nonce": nonce, "exp": int(time.time()) + 30 if exp is None else exp,
              "why": why}
    signed = f"cra1.{kid}.{b64url(json.dumps(claims).encode())}"
    sub = hmac.new(base64.b64decode(key_b64), b"bridge-assertion", hashlib.sha256).digest()
    return f"{signed}.{b64url(hmac.new(sub, signed.encode(), hashlib.sha256).digest())}"


def secret_hash(secret: str, username: str, client_id: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()).decode()


class Bridge:
    def __init__(self, workdir: str):
        self.moto_a = start_strict_moto(free_port(), log_path=os.path.join(workdir, "moto-a.log"))
        self.moto_b = start_strict_moto(free_port(), log_path=os.path.join(workdir, "moto-b.log"))
        self.a, self.b = provision_pair(self.moto_a.endpoint, A, self.moto_b.endpoint, B, "email")
        self.hosts = start_auth_triggers((self.a, self.b), workdir)

    def close(self) -> None:
        for host in self.hosts:
            host.stop()
        stop_strict_moto(self.moto_a)
        stop_strict_moto(self.moto_b)


@pytest.fixture(scope="module")
def bridge():
    b = Bridge(tempfile.mkdtemp(prefix="relay-bridge-trigger-"))
    yield b
    b.close()


class Side:
    """The proxy's view of one region: its relay client (with secret) and the pool."""

    def __init__(self, side: dict):
        self.side = side
        self.idp = client("cognito-idp", side["endpoint"], side["region"])

    def user(self) -> tuple[str, str]:
        """A confirmed user: (email, internal username)."""
        email = f"b-{secrets.token_hex(4)}@example.com"
        created = self.idp.admin_create_user(UserPoolId=self.side["pool_id"], Username=email, MessageAction="SUPPRESS",
                                             UserAttributes=[{"Name": "email", "Value": email},
                                                             {"Name": "email_verified", "Value": "true"}])
        self.idp.admin_set_user_password(UserPoolId=self.side["pool_id"], Username=email, Password=PASSWORD,
                                         Permanent=True)
        return email, created["User"]["Username"]

    def hash(self, username: str) -> str:
        return secret_hash(self.side["relay_client_secret"], username, self.side["relay_client_id"])

    def challenge(self, username: str) -> dict:
        out = self.idp.initiate_auth(ClientId=self.side["relay_client_id"], AuthFlow="CUSTOM_AUTH",
                                     AuthParameters={"USERNAME": username, "SECRET_HASH": self.hash(username)})
        assert out["ChallengeName"] == "CUSTOM_CHALLENGE", out
        assert out["ChallengeParameters"].get(NONCE_PARAMETER), out
        return out

    def answer(self, username: str, challenge: dict, answer: str) -> dict:
        return self.idp.respond_to_auth_challenge(
            ClientId=self.side["relay_client_id"], ChallengeName="CUSTOM_CHALLENGE", Session=challenge["Session"],
            ChallengeResponses={"USERNAME": username, "ANSWER": answer, "SECRET_HASH": self.hash(username)})

    def refused(self, username: str, challenge: dict, answer: str) -> None:
        """No tokens: Cognito's "Incorrect username or password." (or, if Define asks again,
        another challenge, never AuthenticationResult)."""
        try:
            out = self.answer(username, challenge, answer)
        except ClientError as e:
            err = e.response["Error"]
            assert (err["Code"], err["Message"]) == ("NotAuthorizedException", "Incorrect username or password."), err
            return
        assert "AuthenticationResult" not in out, out


def claims_of(jwt: str) -> dict:
    part = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_signed_assertion_mints_tokens_of_the_home_pool(bridge: Bridge):
    for side in (bridge.b, bridge.a):
        s = Side(side)
        email, internal = s.user()
        ch = s.challenge(email)
        nonce = ch["ChallengeParameters"][NONCE_PARAMETER]
        out = s.answer(email, ch, assertion(side["bridge_key_b64"], "b1", side["pool_id"], internal, nonce))
        tokens = out["AuthenticationResult"]
        access = claims_of(tokens["AccessToken"])
        assert access["iss"].endswith("/" + side["pool_id"]) and access["username"] == internal
        assert s.idp.get_user(AccessToken=tokens["AccessToken"])["Username"] == internal


def test_forged_assertions_fail(bridge: Bridge):
    side, other = bridge.b, bridge.a
    s = Side(side)
    email, internal = s.user()
    _, someone_else = s.user()
    key = side["bridge_key_b64"]
    pool = side["pool_id"]

    def nonce_of(ch):
        return ch["ChallengeParameters"][NONCE_PARAMETER]

    cases = {
        "wrong key": lambda n: assertion(base64.b64encode(secrets.token_bytes(32)).decode(), "b1", pool, internal, n),
        "unknown key id": lambda n: assertion(key, "b9", pool, internal, n),
        "other pool": lambda n: assertion(key, "b1", other["pool_id"], internal, n),
        "other user": lambda n: assertion(key, "b1", pool, someone_else, n),
        "other nonce": lambda n: assertion(key, "b1", pool, internal, n + "x"),
        "expired": lambda n: assertion(key, "b1", pool, internal, n, exp=int(time.time()) - 5),
        "lives too long": lambda n: assertion(key, "b1", pool, internal, n, exp=int(time.time()) + 3600),
        "tampered claims": lambda n: (lambda t: ".".join(
            [*t.split(".")[:2], b64url(json.dumps({"pool": pool, "user": someone_else, "nonce": n,
                                                    "exp": int(time.time()) + 30, "why": "srp"}).encode()),
             t.split(".")[3]]))(assertion(key, "b1", pool, internal, n)),
        "garbage": lambda n: "garbage",
        "empty": lambda n: "",
        "the password": lambda n: PASSWORD,
    }
    for name, make in cases.items():
        ch = s.challenge(email)
        try:
            s.refused(email, ch, make(nonce_of(ch)))
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None

    # replayed: an assertion that worked once does not work for the next challenge
    ch = s.challenge(email)
    good = assertion(key, "b1", pool, internal, nonce_of(ch))
    assert "AuthenticationResult" in s.answer(email, ch, good)
    s.refused(email, s.challenge(email), good)
    # nor can the answered session be replayed
    with pytest.raises(ClientError) as e:
        s.answer(email, ch, good)
    assert e.value.response["Error"]["Code"] == "NotAuthorizedException"
    # the other region's pool does not take an assertion for this one (both share the key)
    o = Side(other)
    o_email, o_internal = o.user()
    och = o.challenge(o_email)
    o.refused(o_email, och, assertion(key, "b1", pool, o_internal, nonce_of(och)))
