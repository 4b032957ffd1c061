"""The proxy end to end: a real boto3 client → the proxy binary → strict emulated Cognito.

Every flow of an app through the proxy, for a username pool and an e-mail sign-in pool, and
every refusal. The emulator checks secret hashes and codes, so a proxy that forgets a hash,
hashes over the wrong username or loses a code fails here.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.harness import srp as srp_client
from tests.harness.stack import latest_code
from tests.harness.relay import start_proxy
from tests.harness.stack import free_port

from .conftest import eventually

PASSWORD = "Corr3ct-Horse!1"
NEW_PASSWORD = "Batt3ry-Staple!2"
RESET_PASSWORD = "Res3t-Password!3"


def error_code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def new_user(regions) -> tuple[str, list[dict]]:
    """A username to sign up with, and the attributes to send."""
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    if regions.kind == "email":
        return email, [{"Name": "email", "Value": email}, {"Name": "name", "Value": "Ada"}]
    return f"user{uuid.uuid4().hex[:10]}", [{"Name": "email", "Value": email}, {"Name": "name", "Value": "Ada"}]


def sign_up_and_confirm(regions, idp, username, attrs, password=PASSWORD):
    out = idp.sign_up(ClientId=regions.public_client_id, Username=username, Password=password, UserAttributes=attrs)
    code = latest_code(regions.a["endpoint"], regions.a["pool_id"], username, "SIGN_UP")
    idp.confirm_sign_up(ClientId=regions.public_client_id, Username=username, ConfirmationCode=code)
    return out


def password_auth(regions, idp, username, password):
    return idp.initiate_auth(ClientId=regions.public_client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": password})


def test_the_emulator_refuses_requests_without_the_proxy(regions):
    """Calling the regional client directly without a hash must fail: the harness is strict."""
    direct = regions.admin(regions.a)
    username, attrs = new_user(regions)
    with pytest.raises(ClientError) as e:
        direct.sign_up(ClientId=regions.a["relay_client_id"], Username=username, Password=PASSWORD, UserAttributes=attrs)
    assert error_code(e.value) == "NotAuthorizedException"


def test_full_journey_through_the_proxy(regions):
    idp = regions.client(regions.proxy_a.url)
    username, attrs = new_user(regions)

    out = idp.sign_up(ClientId=regions.public_client_id, Username=username, Password=PASSWORD, UserAttributes=attrs)
    assert out["UserSub"]
    with pytest.raises(ClientError) as e:
        password_auth(regions, idp, username, PASSWORD)
    assert error_code(e.value) == "UserNotConfirmedException"

    idp.resend_confirmation_code(ClientId=regions.public_client_id, Username=username)
    with pytest.raises(ClientError) as e:
        idp.confirm_sign_up(ClientId=regions.public_client_id, Username=username, ConfirmationCode="000000")
    assert error_code(e.value) == "CodeMismatchException"
    code = latest_code(regions.a["endpoint"], regions.a["pool_id"], username, "RESEND")
    idp.confirm_sign_up(ClientId=regions.public_client_id, Username=username, ConfirmationCode=code)

    tokens = password_auth(regions, idp, username, PASSWORD)["AuthenticationResult"]
    access = tokens["AccessToken"]
    assert tokens["RefreshToken"].startswith("crr1."), "refresh tokens are sealed so refresh works without USERNAME"

    me = idp.get_user(AccessToken=access)
    assert {a["Name"]: a["Value"] for a in me["UserAttributes"]}["name"] == "Ada"

    idp.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "name", "Value": "Grace"}])
    me = idp.get_user(AccessToken=access)
    assert {a["Name"]: a["Value"] for a in me["UserAttributes"]}["name"] == "Grace"

    # Refresh: the emulator demands the hash over the *internal* username (the e-mail pool's uuid).
    refreshed = idp.initiate_auth(ClientId=regions.public_client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]})
    assert refreshed["AuthenticationResult"]["AccessToken"]

    idp.change_password(AccessToken=access, PreviousPassword=PASSWORD, ProposedPassword=NEW_PASSWORD)
    with pytest.raises(ClientError) as e:
        password_auth(regions, idp, username, PASSWORD)
    assert error_code(e.value) == "NotAuthorizedException"
    password_auth(regions, idp, username, NEW_PASSWORD)

    idp.forgot_password(ClientId=regions.public_client_id, Username=username)
    code = latest_code(regions.a["endpoint"], regions.a["pool_id"], username, "FORGOT_PASSWORD")
    idp.confirm_forgot_password(ClientId=regions.public_client_id, Username=username, ConfirmationCode=code, Password=RESET_PASSWORD)
    tokens = password_auth(regions, idp, username, RESET_PASSWORD)["AuthenticationResult"]

    # SRP (a real proof, verified by the emulator): the answer is hashed over USER_ID_FOR_SRP
    # (the internal username), not what was typed; a wrong password fails.
    def srp_sign_in(password):
        a, srp_a = srp_client.start()
        out = idp.initiate_auth(ClientId=regions.public_client_id, AuthFlow="USER_SRP_AUTH", AuthParameters={"USERNAME": username, "SRP_A": srp_a})
        assert out["ChallengeName"] == "PASSWORD_VERIFIER"
        params = out["ChallengeParameters"]
        return idp.respond_to_auth_challenge(
            ClientId=regions.public_client_id, ChallengeName="PASSWORD_VERIFIER", Session=out.get("Session", ""),
            ChallengeResponses={"USERNAME": params["USER_ID_FOR_SRP"], **srp_client.claim(regions.a["pool_id"], password, a, params)})
    with pytest.raises(ClientError) as e:
        srp_sign_in("Wrong-Passw0rd!9")
    assert error_code(e.value) == "NotAuthorizedException"
    answer = srp_sign_in(RESET_PASSWORD)
    assert answer["AuthenticationResult"]["RefreshToken"].startswith("crr1.")

    idp.revoke_token(ClientId=regions.public_client_id, Token=answer["AuthenticationResult"]["RefreshToken"])
    with pytest.raises(ClientError) as e:
        idp.initiate_auth(ClientId=regions.public_client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": answer["AuthenticationResult"]["RefreshToken"]})
    assert error_code(e.value) == "NotAuthorizedException"

    idp.global_sign_out(AccessToken=tokens["AccessToken"])
    fresh = password_auth(regions, idp, username, RESET_PASSWORD)["AuthenticationResult"]
    idp.delete_user(AccessToken=fresh["AccessToken"])
    with pytest.raises(ClientError) as e:
        password_auth(regions, idp, username, RESET_PASSWORD)
    assert error_code(e.value) in ("UserNotFoundException", "NotAuthorizedException")


def test_user_auth_choice_based_sign_in_through_the_proxy(regions):
    """USER_AUTH (PREFERRED_CHALLENGE PASSWORD, and SELECT_CHALLENGE answered with PASSWORD)
    through the proxy: the emulator checks the hash the proxy adds and the password, binds the
    challenge answer to its session; the refresh token it returns refreshes."""
    idp = regions.client(regions.proxy_a.url)
    username, attrs = new_user(regions)
    sign_up_and_confirm(regions, idp, username, attrs)
    out = idp.initiate_auth(ClientId=regions.public_client_id, AuthFlow="USER_AUTH",
                            AuthParameters={"USERNAME": username, "PREFERRED_CHALLENGE": "PASSWORD", "PASSWORD": PASSWORD})
    tokens = out["AuthenticationResult"]
    refreshed = idp.initiate_auth(ClientId=regions.public_client_id, AuthFlow="REFRESH_TOKEN_AUTH",
                                  AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]})
    assert refreshed["AuthenticationResult"]["AccessToken"]
    with pytest.raises(ClientError) as e:
        idp.initiate_auth(ClientId=regions.public_client_id, AuthFlow="USER_AUTH",
                          AuthParameters={"USERNAME": username, "PREFERRED_CHALLENGE": "PASSWORD", "PASSWORD": "Wrong-Passw0rd!9"})
    assert error_code(e.value) == "NotAuthorizedException"
    ch = idp.initiate_auth(ClientId=regions.public_client_id, AuthFlow="USER_AUTH", AuthParameters={"USERNAME": username})
    assert ch["ChallengeName"] == "SELECT_CHALLENGE"
    answer = {"ClientId": regions.public_client_id, "ChallengeName": "SELECT_CHALLENGE", "Session": ch["Session"],
              "ChallengeResponses": {"USERNAME": username, "ANSWER": "PASSWORD", "PASSWORD": PASSWORD}}
    assert idp.respond_to_auth_challenge(**answer)["AuthenticationResult"]["AccessToken"]
    with pytest.raises(ClientError) as e:
        idp.respond_to_auth_challenge(**answer)
    assert (error_code(e.value), e.value.response["Error"]["Message"]) == ("NotAuthorizedException", "Invalid session for the user.")


def raw(url: str, body: bytes, target: str | None, content_type: str = "application/x-amz-json-1.1", method: str = "POST"):
    headers = {"Content-Type": content_type}
    if target:
        headers["X-Amz-Target"] = target
    req = urllib.request.Request(url, data=body if method == "POST" else None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


T = "AWSCognitoIdentityProviderService."


@pytest.mark.parametrize(
    "body,target,ctype,expected",
    [
        (b'{"UserPoolId":"x","Username":"a"}', T + "AdminCreateUser", None, "NotAuthorizedException"),
        (b"{}", T + "DeleteUserPool", None, "UnknownOperationException"),
        (b"{}", "AmazonSQS.SendMessage", None, "UnknownOperationException"),
        (b"{}", None, None, "UnknownOperationException"),
        (b"{not json", T + "SignUp", None, "SerializationException"),
        (b"{}", T + "SignUp", "text/plain", "SerializationException"),
        (b'{"Username":"a","Password":"p"}', T + "SignUp", None, "InvalidParameterException"),
        (b'{"ClientId":"nope","Username":"a","Password":"p"}', T + "SignUp", None, "ResourceNotFoundException"),
        (b'{"ClientId":"x","Username":"' + b"a" * 70000 + b'"}', T + "SignUp", None, "InvalidParameterException"),
        (b"[1,2,3]", T + "InitiateAuth", None, "InvalidParameterException"),
        (b"\xff\xfe\x00", T + "GetUser", None, "SerializationException"),
    ],
)
def test_refusals_are_cognito_shaped(regions, body, target, ctype, expected):
    status, headers, payload = raw(regions.proxy_a.url + "/", body, target, ctype or "application/x-amz-json-1.1")
    assert status == 400
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["x-amzn-errortype"] == expected
    doc = json.loads(payload)
    assert doc["__type"] == expected and doc["message"]


def test_unreachable_upstream_gets_a_cognito_shaped_5xx(regions, tmp_path):
    dead = free_port()
    p = start_proxy(regions.a, None, str(tmp_path / "dead.log"), RELAY_COGNITO_ENDPOINT=f"http://127.0.0.1:{dead}/")
    try:
        status, headers, payload = raw(p.url + "/", json.dumps({"ClientId": regions.public_client_id, "Username": "x"}).encode(), T + "ForgotPassword")
        assert status >= 500
        assert json.loads(payload)["__type"] and {k.lower() for k in headers} >= {"x-amzn-errortype"}
    finally:
        p.stop()


def test_cors_preflight_and_headers(regions):
    status, headers, _ = raw(regions.proxy_a.url + "/", b"", None, method="OPTIONS")
    lower = {k.lower(): v for k, v in headers.items()}
    assert status == 200
    assert lower["access-control-allow-origin"] == "*"
    assert "x-amz-target" in lower["access-control-allow-headers"]
    status, headers, _ = raw(regions.proxy_a.url + "/", b"{}", T + "AdminGetUser")
    assert {k.lower(): v for k, v in headers.items()}["access-control-allow-origin"] == "*"


def test_rate_limit_per_username(regions, tmp_path):
    p = start_proxy(regions.a, None, str(tmp_path / "limited.log"), RELAY_RATE_PER_USERNAME="3")
    try:
        idp = regions.client(p.url)
        codes = []
        for _ in range(4):
            try:
                password_auth(regions, idp, "nobody-here", "x")
            except ClientError as e:
                codes.append(error_code(e))
        assert len(codes) == 4 and all(c != "TooManyRequestsException" for c in codes[:3])
        assert codes[3] == "TooManyRequestsException"
        # Another user is not affected.
        with pytest.raises(ClientError) as e:
            password_auth(regions, idp, "someone-else", "x")
        assert error_code(e.value) != "TooManyRequestsException"
    finally:
        p.stop()


def test_caller_ip_reaches_cognito_and_a_client_sent_one_never_does(regions):
    """What Cognito is told in UserContextData.IpAddress (recorded by the emulator) is the
    caller's socket address, never the IP a client wrote into its request."""
    from tests.harness.stack import strict_get

    idp = regions.client(regions.proxy_a.url)
    username, attrs = new_user(regions)
    idp.sign_up(ClientId=regions.public_client_id, Username=username, Password=PASSWORD, UserAttributes=attrs,
                UserContextData={"IpAddress": "6.6.6.6", "EncodedData": "fingerprint"})
    with pytest.raises(ClientError) as e:
        password_auth(regions, idp, username, PASSWORD)
    assert error_code(e.value) == "UserNotConfirmedException"
    seen = strict_get(regions.a["endpoint"], f"contexts?username={username}")
    assert [(c["action"], c["ip"]) for c in seen] == [("SignUp", "127.0.0.1"), ("InitiateAuth", "127.0.0.1")], seen


def test_health_is_deep(regions):
    """/health answers from a real DescribeUserPool at the home pool (cached for
    RELAY_HEALTH_CACHE_MS = 1 s in these tests), not from the process alone."""
    from tests.harness.stack import strict_get

    def describes() -> int:
        return strict_get(regions.a["endpoint"], "calls").get("DescribeUserPool", 0)

    before = describes()

    def checked_again():
        status, _, body = raw(regions.proxy_a.url + "/health", b"", None, method="GET")
        assert status == 200 and json.loads(body)["pool"] == "ok"
        return describes() > before

    eventually(checked_again, timeout=10, what="a /health that asked Cognito")


def test_logs_hold_no_secret(regions):
    """After a journey of its own (sign-up, sign-in, refresh, password change and reset, all
    replicated to B), no password, secret, token or code appears in any relay log."""
    idp = regions.client(regions.proxy_a.url)
    username, attrs = new_user(regions)
    sign_up_and_confirm(regions, idp, username, attrs)
    code = latest_code(regions.a["endpoint"], regions.a["pool_id"], username, "SIGN_UP")
    tokens = password_auth(regions, idp, username, PASSWORD)["AuthenticationResult"]
    refreshed = idp.initiate_auth(ClientId=regions.public_client_id, AuthFlow="REFRESH_TOKEN_AUTH",
                                  AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]})["AuthenticationResult"]
    idp.change_password(AccessToken=tokens["AccessToken"], PreviousPassword=PASSWORD, ProposedPassword=NEW_PASSWORD)
    idp.forgot_password(ClientId=regions.public_client_id, Username=username)
    reset_code = latest_code(regions.a["endpoint"], regions.a["pool_id"], username, "FORGOT_PASSWORD")
    idp.confirm_forgot_password(ClientId=regions.public_client_id, Username=username, ConfirmationCode=reset_code, Password=RESET_PASSWORD)
    # B applied all of it (so the replicators' logs cover this journey too).
    idp_b = regions.client(regions.proxy_b.url, "eu-central-1")
    eventually(lambda: password_auth(regions, idp_b, username, RESET_PASSWORD), timeout=30, what="the reset password on B")
    forbidden = [PASSWORD, NEW_PASSWORD, RESET_PASSWORD, regions.a["relay_client_secret"], regions.b["relay_client_secret"],
                 tokens["AccessToken"], tokens["RefreshToken"], tokens["IdToken"], refreshed["AccessToken"], regions.a["replication_key_b64"],
                 f'"{code}"', f'"{reset_code}"']
    for proc in (regions.proxy_a, regions.proxy_b, regions.rep_a, regions.rep_b):
        text = proc.logs()
        assert text, f"{proc.name} logged nothing"
        for secret in forbidden:
            assert secret not in text, f"{proc.name} log contains a secret"
    assert '"action":"SignUp"' in regions.proxy_a.logs()


def test_rotated_client_secret_is_picked_up_on_rejection(regions, tmp_path):
    """The proxy caches the clients secret; when Cognito rejects a hash (the secret rotated),
    it re-reads Secrets Manager once and retries, so the app sees no error."""
    from tests.harness.stack import client as aws
    from tests.harness.stack import strict_get

    sm = aws("secretsmanager", regions.a["endpoint"], regions.a["region"])
    good = sm.get_secret_value(SecretId=regions.a["clients_secret_id"])["SecretString"]
    stale = json.loads(good)
    stale["clients"][0]["client_secret"] = "an-old-secret-that-no-longer-works"
    sm.put_secret_value(SecretId=regions.a["clients_secret_id"], SecretString=json.dumps(stale))
    p = start_proxy(regions.a, None, str(tmp_path / "rotation.log"))
    try:
        idp = regions.client(p.url)
        with pytest.raises(ClientError) as e:
            idp.forgot_password(ClientId=regions.public_client_id, Username="whoever")
        assert error_code(e.value) == "NotAuthorizedException", "the stale secret is really wrong"
        reads = strict_get(regions.a["endpoint"], "secret_reads").get(regions.a["clients_secret_id"], 0)
        sm.put_secret_value(SecretId=regions.a["clients_secret_id"], SecretString=good)

        # The proxy re-reads at most every 5 s: until then a rejection is answered as is.
        def signed_up():
            username, attrs = new_user(regions)
            try:
                return idp.sign_up(ClientId=regions.public_client_id, Username=username, Password=PASSWORD, UserAttributes=attrs)
            except ClientError as e:
                assert error_code(e) == "NotAuthorizedException", e
                return None

        out = eventually(signed_up, timeout=15, interval=0.5, what="a sign-up with the rotated secret")
        assert out["UserSub"]
        assert strict_get(regions.a["endpoint"], "secret_reads").get(regions.a["clients_secret_id"], 0) > reads, "the proxy re-read the secret"
    finally:
        sm.put_secret_value(SecretId=regions.a["clients_secret_id"], SecretString=good)
        p.stop()


def test_invalid_configuration_fails_before_binding(tmp_path):
    import subprocess
    from tests.harness.relay import base_env, binary

    port = free_port()
    env = {**base_env(), "RELAY_REGION": "eu-west-1", "RELAY_USER_POOL_ID": "us-east-1_x", "RELAY_CLIENTS_SECRET_ID": "c",
           "RELAY_REPLICATION_KEY_SECRET_ID": "k", "RELAY_LISTEN": f"127.0.0.1:{port}"}
    out = subprocess.run([binary("proxy")], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "RELAY_USER_POOL_ID" in out.stderr and "does not belong" in out.stderr
    env["RELAY_USER_POOL_ID"] = "eu-west-1_x"
    env["RELAY_RATE_PER_IP"] = "many"
    out = subprocess.run([binary("proxy")], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "RELAY_RATE_PER_IP" in out.stderr
