"""Sessions survive failover, in both directions (issue 10 point 4), and dead sessions stay dead:
the real proxies, replicators and auth-trigger Lambda against two strict emulators, both pool
kinds.

A refresh token the primary's proxy sealed is continued by the standby's proxy (tokens of the
standby pool, and a new sealed refresh token of that pool, which the primary continues after a
failback). An attacker holding a refresh token gets nothing from the other region when the
token was revoked or its user signed out globally, deleted or disabled, when the token is
tampered with, or when it is a raw (unsealed) token of the other pool: each is Cognito's
NotAuthorizedException."""

from __future__ import annotations

import hashlib
import hmac
import base64
import os
import tempfile

import pytest
from botocore.exceptions import ClientError

from tests.e2e.test_bridge import PASSWORD, Stack, claims, error_of
from tests.harness.stack import app_client, client
from tests.harness.wait import eventually

A, B = "eu-west-1", "eu-central-1"
REVOKED = ("NotAuthorizedException", "Refresh Token has been revoked")


@pytest.fixture(scope="module", params=["username", "email"])
def stack(request):
    workdir = tempfile.mkdtemp(prefix=f"relay-sessions-{request.param}-")
    s = Stack(request.param, workdir)
    yield s
    s.close()


def new_user(s: Stack) -> str:
    """Signed up and confirmed through A, confirmed (enabled) at B."""
    name = s.sign_up_at_a()
    eventually(lambda: s.confirmed_at_b(name), timeout=30, what="the user is confirmed at B")
    return name


def sign_in(s: Stack, url: str, name: str) -> dict:
    return app_client(url, A).initiate_auth(
        ClientId=s.client_id, AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": name, "PASSWORD": PASSWORD})["AuthenticationResult"]


def refresh(s: Stack, url: str, token: str) -> dict:
    """REFRESH_TOKEN_AUTH, as amazon-cognito-identity-js refreshes."""
    return app_client(url, A).initiate_auth(
        ClientId=s.client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": token})


def get_tokens(s: Stack, url: str, token: str) -> dict:
    """GetTokensFromRefreshToken, as Amplify v6 refreshes."""
    return app_client(url, A).get_tokens_from_refresh_token(ClientId=s.client_id, RefreshToken=token)


def issuer_pool(result: dict) -> str:
    return claims(result["AccessToken"])["iss"].rsplit("/", 1)[1]


def refused_at(s: Stack, url: str, token: str) -> tuple[str, str]:
    """What both refresh actions answer (they must agree)."""
    first = error_of(lambda: refresh(s, url, token))
    assert error_of(lambda: get_tokens(s, url, token)) == first
    return first


def refusal_of(s: Stack, url: str, token: str) -> tuple[str, str] | None:
    """REFRESH_TOKEN_AUTH's error, or None while it still succeeds (for `eventually`)."""
    try:
        refresh(s, url, token)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"]["Message"]
    return None


def test_a_session_continues_on_the_standby_and_back_on_the_primary(stack: Stack):
    s = stack
    name = new_user(s)
    token_a = sign_in(s, s.proxy_a.url, name)["RefreshToken"]

    out = refresh(s, s.proxy_b.url, token_a)
    assert out["ChallengeParameters"] == {} and set(out) <= {"AuthenticationResult", "ChallengeParameters",
                                                             "ResponseMetadata"}, out
    result = out["AuthenticationResult"]
    assert issuer_pool(result) == s.b["pool_id"] and claims(result["IdToken"])["iss"].endswith(s.b["pool_id"])
    token_b = result["RefreshToken"]
    assert token_b.startswith("crr1.") and token_b != token_a, "a sealed refresh token of the standby pool"
    got = get_tokens(s, s.proxy_b.url, token_a)
    assert set(got) <= {"AuthenticationResult", "ResponseMetadata"}, got
    assert issuer_pool(got["AuthenticationResult"]) == s.b["pool_id"]

    # The standby's own token refreshes there like any (Cognito answers, no new refresh token).
    again = refresh(s, s.proxy_b.url, token_b)["AuthenticationResult"]
    assert issuer_pool(again) == s.b["pool_id"] and "RefreshToken" not in again
    # Failback: the primary continues the standby's session.
    back = get_tokens(s, s.proxy_a.url, token_b)["AuthenticationResult"]
    assert issuer_pool(back) == s.a["pool_id"] and back["RefreshToken"].startswith("crr1.")
    assert issuer_pool(refresh(s, s.proxy_a.url, back["RefreshToken"])["AuthenticationResult"]) == s.a["pool_id"]
    me = app_client(s.proxy_a.url, A).get_user(AccessToken=back["AccessToken"])
    assert me["Username"] == client("cognito-idp", s.a["endpoint"], A).admin_get_user(
        UserPoolId=s.a["pool_id"], Username=name)["Username"]


def test_a_token_revoked_on_the_primary_is_refused_on_the_standby(stack: Stack):
    s = stack
    name = new_user(s)
    revoked = sign_in(s, s.proxy_a.url, name)["RefreshToken"]
    kept = sign_in(s, s.proxy_a.url, name)["RefreshToken"]
    app_client(s.proxy_a.url, A).revoke_token(ClientId=s.client_id, Token=revoked)
    assert error_of(lambda: refresh(s, s.proxy_a.url, revoked))[0] == "NotAuthorizedException"
    eventually(lambda: refusal_of(s, s.proxy_b.url, revoked), timeout=30, what="the revocation reaches the standby")
    assert refused_at(s, s.proxy_b.url, revoked) == REVOKED
    # Only that token: the user's other session continues there.
    assert issuer_pool(refresh(s, s.proxy_b.url, kept)["AuthenticationResult"]) == s.b["pool_id"]


def test_a_token_revoked_on_the_standby_stays_dead_on_both(stack: Stack):
    s = stack
    name = new_user(s)
    token_a = sign_in(s, s.proxy_a.url, name)["RefreshToken"]
    # The app signs out on the standby with the primary's token: recorded there, replicated.
    app_client(s.proxy_b.url, B).revoke_token(ClientId=s.client_id, Token=token_a)
    assert refused_at(s, s.proxy_b.url, token_a) == REVOKED
    # The primary's Cognito cannot be told by the standby: the primary's replicator signs the
    # user out there (no Admin API revokes a single token).
    eventually(lambda: refusal_of(s, s.proxy_a.url, token_a), timeout=30, what="the revocation reaches the primary")
    assert refused_at(s, s.proxy_a.url, token_a)[0] == "NotAuthorizedException"


def test_signing_out_of_a_continued_session_ends_all_of_it(stack: Stack):
    s = stack
    name = new_user(s)
    token_a = sign_in(s, s.proxy_a.url, name)["RefreshToken"]
    token_b = refresh(s, s.proxy_b.url, token_a)["AuthenticationResult"]["RefreshToken"]
    # The app signs out on the standby (its token is now the standby's).
    app_client(s.proxy_b.url, B).revoke_token(ClientId=s.client_id, Token=token_b)
    assert refused_at(s, s.proxy_b.url, token_b)[0] == "NotAuthorizedException"
    assert refused_at(s, s.proxy_b.url, token_a) == REVOKED, "a copy of the token it started with"
    eventually(lambda: refusal_of(s, s.proxy_a.url, token_a), timeout=30, what="the revocation reaches the primary")


def test_revoking_the_first_token_ends_its_continuation(stack: Stack):
    s = stack
    name = new_user(s)
    token_a = sign_in(s, s.proxy_a.url, name)["RefreshToken"]
    token_b = refresh(s, s.proxy_b.url, token_a)["AuthenticationResult"]["RefreshToken"]
    app_client(s.proxy_a.url, A).revoke_token(ClientId=s.client_id, Token=token_a)
    eventually(lambda: refusal_of(s, s.proxy_b.url, token_b), timeout=30, what="the revocation reaches the standby")
    assert refused_at(s, s.proxy_b.url, token_b) == REVOKED


def test_a_global_sign_out_on_the_primary_ends_the_session_on_the_standby(stack: Stack):
    s = stack
    name = new_user(s)
    before = sign_in(s, s.proxy_a.url, name)
    app_client(s.proxy_a.url, A).global_sign_out(AccessToken=before["AccessToken"])
    eventually(lambda: refusal_of(s, s.proxy_b.url, before["RefreshToken"]), timeout=30,
               what="the sign-out reaches the standby")
    assert refused_at(s, s.proxy_b.url, before["RefreshToken"]) == REVOKED
    # A session started after the sign-out continues.
    after = sign_in(s, s.proxy_a.url, name)["RefreshToken"]
    assert issuer_pool(refresh(s, s.proxy_b.url, after)["AuthenticationResult"]) == s.b["pool_id"]


def test_tampered_sealed_tokens_are_refused(stack: Stack):
    s = stack
    name = new_user(s)
    token = sign_in(s, s.proxy_a.url, name)["RefreshToken"]
    middle = len(token) // 2
    flipped = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]
    for bad in (flipped, token[:-4], "crr1.v1.r1." + "A" * 80, "crr1.v1.r9." + token.split(".", 3)[3]):
        assert refused_at(s, s.proxy_b.url, bad) == ("NotAuthorizedException", "Invalid Refresh Token"), bad


def test_sessions_of_deleted_or_disabled_users_are_refused(stack: Stack):
    s = stack
    idp_b = client("cognito-idp", s.b["endpoint"], B)
    # Disabled on the standby (an administrator did it there): Cognito's own answer.
    name = new_user(s)
    token = sign_in(s, s.proxy_a.url, name)["RefreshToken"]
    idp_b.admin_disable_user(UserPoolId=s.b["pool_id"], Username=name)
    assert refused_at(s, s.proxy_b.url, token) == ("NotAuthorizedException", "User is disabled.")
    # Deleted by the user at the primary (replicated): revoked.
    name = new_user(s)
    signed_in = sign_in(s, s.proxy_a.url, name)
    app_client(s.proxy_a.url, A).delete_user(AccessToken=signed_in["AccessToken"])
    eventually(lambda: not s.confirmed_at_b(name), timeout=30, what="the deletion reaches the standby")
    assert refused_at(s, s.proxy_b.url, signed_in["RefreshToken"]) == REVOKED


def secret_hash(secret: str, username: str, client_id: str) -> str:
    mac = hmac.new(secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def test_a_raw_refresh_token_of_the_other_pool_is_refused_clearly(stack: Stack):
    s = stack
    name = new_user(s)
    # Straight from pool A's Cognito (not through a proxy): never sealed.
    a = s.a
    raw = client("cognito-idp", a["endpoint"], A).initiate_auth(
        ClientId=a["relay_client_id"], AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": name, "PASSWORD": PASSWORD,
                        "SECRET_HASH": secret_hash(a["relay_client_secret"], name, a["relay_client_id"])},
    )["AuthenticationResult"]["RefreshToken"]
    assert not raw.startswith("crr1.")
    code, message = error_of(lambda: refresh(s, s.proxy_b.url, raw))
    assert (code, message) == ("NotAuthorizedException",
                               "This refresh token was not issued through this endpoint; sign in again.")
    assert error_of(lambda: get_tokens(s, s.proxy_b.url, raw))[0] == "NotAuthorizedException"
