"""Proves that strict_moto is strict: talks to it directly (no proxy) with boto3 / raw HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from tests.harness import srp  # noqa: E402

REGION = "eu-west-1"  # not us-east-1: unsigned requests must still find the pool
REGION_B = "eu-central-1"
PASSWORD = "Passw0rd!"
NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"})
MISSING = "is configured with secret but SECRET_HASH was not received"
WRONG = "Unable to verify secret hash for client"


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def servers():
    ports = [stack.free_port(), stack.free_port()]
    with ThreadPoolExecutor(2) as pool:
        procs = list(pool.map(stack.start_strict_moto, ports))
    try:
        yield [f"http://127.0.0.1:{p}" for p in ports]
    finally:
        for proc in procs:
            stack.stop_strict_moto(proc)


@pytest.fixture(scope="module")
def ep(servers):
    return servers[0]


@pytest.fixture(autouse=True)
def _clean_faults(ep):
    yield
    stack.strict_post(ep, "reset")


def idp(ep, region=REGION):
    return boto3.client(
        "cognito-idp", endpoint_url=ep, region_name=region, config=NO_RETRY, **stack.DUMMY_CREDENTIALS
    )


def h(secret: str, username: str, client_id: str) -> str:
    """Written independently of strict_moto on purpose."""
    mac = hmac.new(secret.encode(), f"{username}{client_id}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def claims(jwt: str) -> dict:
    part = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class Pool:
    def __init__(self, ep: str, kind: str, region: str = REGION):
        self.ep, self.kind, self.c = ep, kind, idp(ep, region)
        kwargs = {"PoolName": f"t-{uuid.uuid4().hex[:8]}"}
        if kind == "email":
            kwargs.update(UsernameAttributes=["email"], AutoVerifiedAttributes=["email"])
        self.id = self.c.create_user_pool(**kwargs)["UserPool"]["Id"]
        cl = self.c.create_user_pool_client(
            UserPoolId=self.id,
            ClientName="relay",
            GenerateSecret=True,
            ExplicitAuthFlows=stack.AUTH_FLOWS,
        )["UserPoolClient"]
        self.cid, self.secret = cl["ClientId"], cl["ClientSecret"]

    def hash(self, username: str) -> str:
        return h(self.secret, username, self.cid)

    def name(self) -> str:
        tag = uuid.uuid4().hex[:8]
        return f"u{tag}@example.com" if self.kind == "email" else f"user-{tag}"

    def code(self, username: str, kind: str | None = None) -> str:
        return stack.latest_code(self.ep, self.id, username, kind)

    def sign_up(self, username: str, **extra):
        return self.c.sign_up(
            ClientId=self.cid,
            Username=username,
            Password=PASSWORD,
            SecretHash=self.hash(username),
            UserAttributes=extra.pop("attrs", [{"Name": "email", "Value": f"x{uuid.uuid4().hex[:6]}@example.com"}]
                                     if self.kind != "email" else []),
            **extra,
        )

    def confirmed_user(self) -> str:
        username = self.name()
        self.sign_up(username)
        self.c.confirm_sign_up(
            ClientId=self.cid, Username=username, SecretHash=self.hash(username),
            ConfirmationCode=self.code(username, "SIGN_UP"),
        )
        return username

    def login(self, username: str, password: str = PASSWORD) -> dict:
        return self.c.initiate_auth(
            ClientId=self.cid,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password, "SECRET_HASH": self.hash(username)},
        )["AuthenticationResult"]


@pytest.fixture
def upool(ep):
    return Pool(ep, "username")


@pytest.fixture
def epool(ep):
    return Pool(ep, "email")


def error_of(fn, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as e:
        fn(**kwargs)
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def assert_hash_enforced(fn, kwargs: dict, put_hash, good: str, client_id: str):
    """Missing and wrong hashes are rejected with Cognito's messages; the right one passes."""
    code, msg = error_of(fn, **kwargs)
    assert (code, msg) == ("NotAuthorizedException", f"Client {client_id} {MISSING}")
    code, msg = error_of(fn, **put_hash(kwargs, base64.b64encode(b"x" * 32).decode()))
    assert (code, msg) == ("NotAuthorizedException", f"{WRONG} {client_id}")
    return fn(**put_hash(kwargs, good))


def top(kwargs, value):
    return {**kwargs, "SecretHash": value}


def in_auth(kwargs, value):
    return {**kwargs, "AuthParameters": {**kwargs["AuthParameters"], "SECRET_HASH": value}}


def in_answers(kwargs, value):
    return {**kwargs, "ChallengeResponses": {**kwargs["ChallengeResponses"], "SECRET_HASH": value}}


def raw(ep: str, action: str, body: dict) -> tuple[int, dict, bytes]:
    """An unsigned request exactly as a proxy would forward it."""
    host, port = ep.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(
            "POST", "/", body=json.dumps(body),
            headers={
                "X-Amz-Target": f"AWSCognitoIdentityProviderService.{action}",
                "Content-Type": "application/x-amz-json-1.1",
            },
        )
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


# ---------------------------------------------------------------------------- secret hash


def test_unsigned_request_is_routed_and_errors_are_cognito_shaped(ep, upool):
    status, headers, body = raw(ep, "SignUp", {"ClientId": upool.cid, "Username": "nohash", "Password": PASSWORD})
    assert status == 400
    assert headers["x-amzn-errortype"].split(":")[0] == "NotAuthorizedException"
    assert headers["content-type"] == "application/x-amz-json-1.1"
    assert json.loads(body) == {
        "__type": "NotAuthorizedException",
        "message": f"Client {upool.cid} {MISSING}",
    }
    good = {"ClientId": upool.cid, "Username": "withhash", "Password": PASSWORD, "SecretHash": upool.hash("withhash")}
    status, _, body = raw(ep, "SignUp", good)
    assert status == 200, body
    assert json.loads(body)["UserConfirmed"] is False


def test_sign_up(upool):
    username = upool.name()
    out = assert_hash_enforced(
        upool.c.sign_up,
        {"ClientId": upool.cid, "Username": username, "Password": PASSWORD},
        top, upool.hash(username), upool.cid,
    )
    assert out["UserConfirmed"] is False
    assert upool.c.admin_get_user(UserPoolId=upool.id, Username=username)["UserStatus"] == "UNCONFIRMED"


def test_confirm_sign_up(upool):
    username = upool.name()
    upool.sign_up(username)
    kwargs = {"ClientId": upool.cid, "Username": username, "ConfirmationCode": upool.code(username, "SIGN_UP")}
    assert_hash_enforced(upool.c.confirm_sign_up, kwargs, top, upool.hash(username), upool.cid)
    assert upool.c.admin_get_user(UserPoolId=upool.id, Username=username)["UserStatus"] == "CONFIRMED"


def test_resend_confirmation_code(upool):
    username = upool.name()
    upool.sign_up(username)
    first = upool.code(username, "SIGN_UP")
    kwargs = {"ClientId": upool.cid, "Username": username}
    out = assert_hash_enforced(upool.c.resend_confirmation_code, kwargs, top, upool.hash(username), upool.cid)
    assert out["CodeDeliveryDetails"]["DeliveryMedium"] == "EMAIL"
    second = upool.code(username, "RESEND")
    confirm = {"ClientId": upool.cid, "Username": username, "SecretHash": upool.hash(username)}
    if first != second:  # the replaced code no longer works (1 in 900000 they collide)
        assert error_of(upool.c.confirm_sign_up, **confirm, ConfirmationCode=first)[0] == "CodeMismatchException"
    upool.c.confirm_sign_up(**confirm, ConfirmationCode=second)
    code, _ = error_of(upool.c.resend_confirmation_code, **kwargs, SecretHash=upool.hash(username))
    assert code == "InvalidParameterException"  # already confirmed


def test_forgot_and_confirm_forgot_password(upool):
    username = upool.confirmed_user()
    kwargs = {"ClientId": upool.cid, "Username": username}
    out = assert_hash_enforced(upool.c.forgot_password, kwargs, top, upool.hash(username), upool.cid)
    assert "CodeDeliveryDetails" in out
    code = upool.code(username, "FORGOT_PASSWORD")
    assert len(code) == 6 and code.isdigit()
    confirm = {**kwargs, "Password": "N3w-Passw0rd!"}
    wrong_code = f"{(int(code) + 1) % 1_000_000:06d}"
    assert error_of(upool.c.confirm_forgot_password, **confirm, ConfirmationCode=wrong_code,
                    SecretHash=upool.hash(username))[0] == "CodeMismatchException"
    assert_hash_enforced(upool.c.confirm_forgot_password, {**confirm, "ConfirmationCode": code},
                         top, upool.hash(username), upool.cid)
    assert error_of(upool.login, username=username)[0] == "NotAuthorizedException"
    assert "AccessToken" in upool.login(username, "N3w-Passw0rd!")


def test_user_password_auth(upool, epool):
    for pool in (upool, epool):
        username = pool.confirmed_user()
        kwargs = {"ClientId": pool.cid, "AuthFlow": "USER_PASSWORD_AUTH",
                  "AuthParameters": {"USERNAME": username, "PASSWORD": PASSWORD}}
        # USER_PASSWORD_AUTH hashes the USERNAME as sent (the email in an email pool)
        out = assert_hash_enforced(pool.c.initiate_auth, kwargs, in_auth, pool.hash(username), pool.cid)
        assert "AccessToken" in out["AuthenticationResult"]


def test_client_without_secret_needs_no_hash(upool):
    public = upool.c.create_user_pool_client(UserPoolId=upool.id, ClientName="public",
                                             ExplicitAuthFlows=stack.AUTH_FLOWS)["UserPoolClient"]
    assert "ClientSecret" not in public
    username = upool.name()
    upool.c.sign_up(ClientId=public["ClientId"], Username=username, Password=PASSWORD)
    upool.c.confirm_sign_up(ClientId=public["ClientId"], Username=username,
                            ConfirmationCode=upool.code(username, "SIGN_UP"))
    out = upool.c.initiate_auth(ClientId=public["ClientId"], AuthFlow="USER_PASSWORD_AUTH",
                                AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD})
    assert claims(out["AuthenticationResult"]["AccessToken"])["username"] == username


def test_email_pool_internal_username_and_refresh_hash(epool):
    email = epool.confirmed_user()
    tokens = epool.login(email)
    internal = claims(tokens["AccessToken"])["username"]
    assert internal != email
    assert str(uuid.UUID(internal)) == internal
    assert epool.c.admin_get_user(UserPoolId=epool.id, Username=email)["Username"] == internal
    assert claims(tokens["IdToken"])["email"] == email
    assert claims(tokens["IdToken"])["cognito:username"] == internal

    kwargs = {"ClientId": epool.cid, "AuthFlow": "REFRESH_TOKEN_AUTH",
              "AuthParameters": {"REFRESH_TOKEN": tokens["RefreshToken"]}}
    code, msg = error_of(epool.c.initiate_auth, **in_auth(kwargs, epool.hash(email)))
    assert (code, msg) == ("NotAuthorizedException", f"{WRONG} {epool.cid}")
    out = assert_hash_enforced(epool.c.initiate_auth, kwargs, in_auth, epool.hash(internal), epool.cid)
    assert claims(out["AuthenticationResult"]["AccessToken"])["username"] == internal


def test_refresh_in_username_pool_and_foreign_client(upool):
    username = upool.confirmed_user()
    tokens = upool.login(username)
    kwargs = {"ClientId": upool.cid, "AuthFlow": "REFRESH_TOKEN_AUTH",
              "AuthParameters": {"REFRESH_TOKEN": tokens["RefreshToken"]}}
    assert_hash_enforced(upool.c.initiate_auth, kwargs, in_auth, upool.hash(username), upool.cid)
    other = upool.c.create_user_pool_client(UserPoolId=upool.id, ClientName="other",
                                            ExplicitAuthFlows=stack.AUTH_FLOWS)["UserPoolClient"]
    code, _ = error_of(upool.c.initiate_auth, **{**kwargs, "ClientId": other["ClientId"]})
    assert code == "NotAuthorizedException"  # a refresh token belongs to its client


def srp_challenge(pool, username: str) -> tuple[int, dict]:
    a, srp_a = srp.start()
    out = pool.c.initiate_auth(ClientId=pool.cid, AuthFlow="USER_SRP_AUTH",
                               AuthParameters={"USERNAME": username, "SRP_A": srp_a, "SECRET_HASH": pool.hash(username)})
    assert out["ChallengeName"] == "PASSWORD_VERIFIER"
    return a, out["ChallengeParameters"]


def test_srp_secret_hash_over_user_id_for_srp(epool):
    email = epool.confirmed_user()
    a, srp_a = srp.start()
    start = {"ClientId": epool.cid, "AuthFlow": "USER_SRP_AUTH",
             "AuthParameters": {"USERNAME": email, "SRP_A": srp_a}}
    challenge = assert_hash_enforced(epool.c.initiate_auth, start, in_auth, epool.hash(email), epool.cid)
    assert challenge["ChallengeName"] == "PASSWORD_VERIFIER"
    params = challenge["ChallengeParameters"]
    user_id = params["USER_ID_FOR_SRP"]
    assert user_id != email
    assert user_id == epool.c.admin_get_user(UserPoolId=epool.id, Username=email)["Username"]
    answer = {
        "ClientId": epool.cid, "ChallengeName": "PASSWORD_VERIFIER",
        "ChallengeResponses": {"USERNAME": user_id, **srp.claim(epool.id, PASSWORD, a, params)},
    }
    code, msg = error_of(epool.c.respond_to_auth_challenge, **in_answers(answer, epool.hash(email)))
    assert (code, msg) == ("NotAuthorizedException", f"{WRONG} {epool.cid}")
    out = assert_hash_enforced(epool.c.respond_to_auth_challenge, answer, in_answers,
                               epool.hash(user_id), epool.cid)
    assert claims(out["AuthenticationResult"]["AccessToken"])["username"] == user_id


def test_srp_secret_block_is_standard_base64(epool):
    """Node's Buffer reads '-'/'_' as base64url while Python drops them: a block that is not
    strict standard base64 would make the real JS clients sign other bytes than we check."""
    user = epool.confirmed_user()
    _, srp_a = srp.start()
    params = epool.c.initiate_auth(ClientId=epool.cid, AuthFlow="USER_SRP_AUTH", AuthParameters={
        "USERNAME": user, "SRP_A": srp_a, "SECRET_HASH": epool.hash(user)})["ChallengeParameters"]
    block = params["SECRET_BLOCK"]
    assert base64.b64encode(base64.b64decode(block, validate=True)).decode() == block


def test_srp_proof_is_verified_wrong_password_or_pool_name_fail(upool):
    username = upool.confirmed_user()

    def answer(params, pool_id, password, **over):
        responses = {"USERNAME": params["USER_ID_FOR_SRP"], "SECRET_HASH": upool.hash(params["USER_ID_FOR_SRP"]),
                     **srp.claim(pool_id, password, a, params), **over}
        return upool.c.respond_to_auth_challenge(ClientId=upool.cid, ChallengeName="PASSWORD_VERIFIER", ChallengeResponses=responses)

    for pool_id, password in [(upool.id, "Wrong-Passw0rd!"), (upool.id.split("_")[0] + "_OtherPool", PASSWORD)]:
        a, params = srp_challenge(upool, username)
        code, msg = error_of(lambda: answer(params, pool_id, password))
        assert (code, msg) == ("NotAuthorizedException", "Incorrect username or password."), pool_id
    # A tampered timestamp breaks the signature; a proof is good for one use only.
    a, params = srp_challenge(upool, username)
    good = srp.claim(upool.id, PASSWORD, a, params)
    assert error_of(lambda: answer(params, upool.id, PASSWORD, TIMESTAMP=good["TIMESTAMP"] + " "))[0] == "NotAuthorizedException"
    a, params = srp_challenge(upool, username)
    assert "AccessToken" in answer(params, upool.id, PASSWORD)["AuthenticationResult"]
    assert error_of(lambda: answer(params, upool.id, PASSWORD))[0] == "NotAuthorizedException", "a replayed proof"


def test_srp_server_agrees_with_an_independent_client(ep):
    """pycognito's AWSSRP (its own implementation of the client side) signs in, and fails with
    a wrong password: the emulator's server side is Cognito's math, not a mirror of ours."""
    from pycognito.aws_srp import AWSSRP

    pool = Pool(ep, "username")
    username = pool.confirmed_user()
    tokens = AWSSRP(username, PASSWORD, pool.id, pool.cid, client=pool.c, client_secret=pool.secret).authenticate_user()
    assert claims(tokens["AuthenticationResult"]["AccessToken"])["username"] == username
    with pytest.raises(ClientError) as e:
        AWSSRP(username, "Wrong-Passw0rd!", pool.id, pool.cid, client=pool.c, client_secret=pool.secret).authenticate_user()
    assert e.value.response["Error"]["Code"] == "NotAuthorizedException"


def test_invitation_and_new_password_challenge(upool):
    username = upool.name()
    upool.c.admin_create_user(UserPoolId=upool.id, Username=username,
                              UserAttributes=[{"Name": "email", "Value": "inv@example.com"}])
    invite = [m for m in stack.mailbox(upool.ep, upool.id, username) if m["kind"] == "INVITATION"]
    assert len(invite) == 1 and invite[0]["destination"] == "inv@example.com"
    challenge = upool.c.initiate_auth(
        ClientId=upool.cid, AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": invite[0]["code"], "SECRET_HASH": upool.hash(username)},
    )
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    answer = {"ClientId": upool.cid, "ChallengeName": "NEW_PASSWORD_REQUIRED", "Session": challenge["Session"],
              "ChallengeResponses": {"USERNAME": username, "NEW_PASSWORD": "Chosen-Passw0rd!"}}
    out = assert_hash_enforced(upool.c.respond_to_auth_challenge, answer, in_answers, upool.hash(username), upool.cid)
    assert "AccessToken" in out["AuthenticationResult"]
    # a suppressed invitation sends nothing
    quiet = upool.name()
    upool.c.admin_create_user(UserPoolId=upool.id, Username=quiet, MessageAction="SUPPRESS",
                              TemporaryPassword="Tmp-Passw0rd!")
    assert stack.mailbox(upool.ep, upool.id, quiet) == []


# ---------------------------------------------------------------------------- codes & mailbox


def test_confirmation_codes_and_mailbox(ep, epool):
    email = epool.name()
    out = epool.sign_up(email)
    assert out["CodeDeliveryDetails"] == {"Destination": f"{email[0]}***@e***", "DeliveryMedium": "EMAIL",
                                          "AttributeName": "email"}
    mail = stack.mailbox(ep, epool.id, email)
    assert [(m["kind"], m["destination"], m["username"]) for m in mail] == [("SIGN_UP", email, out["UserSub"])]
    code = mail[0]["code"]
    confirm = {"ClientId": epool.cid, "Username": email, "SecretHash": epool.hash(email)}
    for bad in ("000000", "moto-confirmation-code:123456", f"{(int(code) + 1) % 1_000_000:06d}"):
        assert error_of(epool.c.confirm_sign_up, **confirm, ConfirmationCode=bad)[0] == "CodeMismatchException"
    epool.c.confirm_sign_up(**confirm, ConfirmationCode=code)
    attrs = {a["Name"]: a["Value"] for a in epool.c.admin_get_user(UserPoolId=epool.id, Username=email)["UserAttributes"]}
    assert attrs["email_verified"] == "true"
    # the code is used up
    assert error_of(epool.c.confirm_sign_up, **confirm, ConfirmationCode=code)[0] == "NotAuthorizedException"
    # filters: by pool, by internal username
    assert stack.mailbox(ep, epool.id, out["UserSub"]) == mail
    assert all(m["pool_id"] == epool.id for m in stack.mailbox(ep, epool.id))
    stack.strict_post(ep, "mailbox", method="DELETE")
    assert stack.mailbox(ep) == []


def test_admin_reset_password_code(upool):
    username = upool.confirmed_user()
    upool.c.admin_update_user_attributes(UserPoolId=upool.id, Username=username,
                                         UserAttributes=[{"Name": "email_verified", "Value": "true"}])
    upool.c.admin_reset_user_password(UserPoolId=upool.id, Username=username)
    code = upool.code(username, "ADMIN_RESET")
    upool.c.confirm_forgot_password(ClientId=upool.cid, Username=username, SecretHash=upool.hash(username),
                                    ConfirmationCode=code, Password="Res3t-Passw0rd!")
    assert upool.c.admin_get_user(UserPoolId=upool.id, Username=username)["UserStatus"] == "CONFIRMED"
    assert "AccessToken" in upool.login(username, "Res3t-Passw0rd!")


def test_verify_user_attribute(upool):
    username = upool.confirmed_user()
    access = upool.login(username)["AccessToken"]
    out = upool.c.get_user_attribute_verification_code(AccessToken=access, AttributeName="email")
    assert out["CodeDeliveryDetails"]["AttributeName"] == "email"
    code = upool.code(username, "VERIFY_ATTRIBUTE")
    wrong = f"{(int(code) + 7) % 1_000_000:06d}"
    assert error_of(upool.c.verify_user_attribute, AccessToken=access, AttributeName="email",
                    Code=wrong)[0] == "CodeMismatchException"
    upool.c.verify_user_attribute(AccessToken=access, AttributeName="email", Code=code)
    attrs = {a["Name"]: a["Value"] for a in upool.c.get_user(AccessToken=access)["UserAttributes"]}
    assert attrs["email_verified"] == "true"


# ---------------------------------------------------------------------------- missing actions


def test_revoke_token_and_get_tokens_from_refresh_token(upool):
    username = upool.confirmed_user()
    tokens = upool.login(username)
    refreshed = upool.c.get_tokens_from_refresh_token(
        RefreshToken=tokens["RefreshToken"], ClientId=upool.cid, ClientSecret=upool.secret)
    assert claims(refreshed["AuthenticationResult"]["AccessToken"])["username"] == username
    base = {"Token": tokens["RefreshToken"], "ClientId": upool.cid}
    assert error_of(upool.c.revoke_token, **base)[1] == f"Client {upool.cid} {MISSING}"
    assert error_of(upool.c.revoke_token, **base, ClientSecret=upool.secret[::-1])[1] == f"{WRONG} {upool.cid}"
    upool.c.get_user(AccessToken=tokens["AccessToken"])  # still valid before revocation
    upool.c.revoke_token(**base, ClientSecret=upool.secret)
    code, _ = error_of(upool.c.initiate_auth, ClientId=upool.cid, AuthFlow="REFRESH_TOKEN_AUTH",
                       AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"], "SECRET_HASH": upool.hash(username)})
    assert code == "NotAuthorizedException"
    assert error_of(upool.c.get_user, AccessToken=tokens["AccessToken"])[0] == "NotAuthorizedException"
    assert "AccessToken" in upool.login(username)  # the user can still sign in


def test_delete_user_attributes_and_delete_user(epool):
    email = epool.confirmed_user()
    access = epool.login(email)["AccessToken"]
    epool.c.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "name", "Value": "Ann"}])
    names = lambda: {a["Name"] for a in epool.c.get_user(AccessToken=access)["UserAttributes"]}  # noqa: E731
    assert "name" in names()
    epool.c.delete_user_attributes(AccessToken=access, UserAttributeNames=["name"])
    assert "name" not in names()
    epool.c.delete_user(AccessToken=access)
    assert error_of(epool.c.admin_get_user, UserPoolId=epool.id, Username=email)[0] == "UserNotFoundException"
    assert error_of(epool.c.get_user, AccessToken=access)[0] == "NotAuthorizedException"


def test_global_sign_out_unsigned_outside_us_east_1(ep, upool):
    username = upool.confirmed_user()
    tokens = upool.login(username)
    status, _, body = raw(ep, "GlobalSignOut", {"AccessToken": tokens["AccessToken"]})
    assert status == 200, body
    status, _, body = raw(ep, "GetUser", {"AccessToken": tokens["AccessToken"]})
    assert status == 400 and json.loads(body)["__type"] == "NotAuthorizedException"


def test_unknown_custom_attribute_rejected(upool):
    upool.c.add_custom_attributes(UserPoolId=upool.id,
                                  CustomAttributes=[{"Name": "origin_sub", "AttributeDataType": "String"}])
    ok = upool.name()
    upool.sign_up(ok, attrs=[{"Name": "custom:origin_sub", "Value": "abc"}])
    bad = upool.name()
    code, _ = error_of(upool.sign_up, username=bad, attrs=[{"Name": "custom:nope", "Value": "x"}])
    assert code == "InvalidParameterException"


# ---------------------------------------------------------------------------- faults


def test_fault_injection_and_call_counts(ep, upool):
    sqs = boto3.client("sqs", endpoint_url=ep, region_name=REGION, config=NO_RETRY, **stack.DUMMY_CREDENTIALS)
    body = {"ClientId": upool.cid, "Username": "nobody", "SecretHash": upool.hash("nobody")}
    stack.strict_post(ep, "calls", method="DELETE")

    state = stack.strict_post(ep, "faults", {"throttle": 2, "error500": 1, "drop": 1})
    assert {k: state[k] for k in ("throttle", "error500", "drop")} == {"throttle": 2, "error500": 1, "drop": 1}
    sqs.list_queues()  # not Cognito: not affected
    for _ in range(2):
        status, headers, payload = raw(ep, "ForgotPassword", body)
        assert status == 400 and headers["x-amzn-errortype"].startswith("TooManyRequestsException")
        assert json.loads(payload)["__type"] == "TooManyRequestsException"
    remaining = stack.strict_get(ep, "faults")
    assert (remaining["throttle"], remaining["error500"], remaining["drop"]) == (0, 1, 1)
    status, headers, payload = raw(ep, "ForgotPassword", body)
    assert status == 500 and json.loads(payload)["__type"] == "InternalErrorException"
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        raw(ep, "ForgotPassword", body)
    status, _, payload = raw(ep, "ForgotPassword", body)  # faults used up: the real answer
    assert status == 400 and json.loads(payload)["__type"] == "UserNotFoundException"
    assert stack.strict_get(ep, "calls").get("ForgotPassword") == 5

    stack.strict_post(ep, "down", {"down": True})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        raw(ep, "ForgotPassword", body)
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:6]}")["QueueUrl"]  # SQS still answers
    assert url in sqs.list_queues()["QueueUrls"]
    with pytest.raises(Exception):
        upool.c.describe_user_pool(UserPoolId=upool.id)
    stack.strict_post(ep, "down", {"down": False})
    assert upool.c.describe_user_pool(UserPoolId=upool.id)["UserPool"]["Id"] == upool.id

    stack.strict_post(ep, "faults", {"error500": 3})
    assert stack.strict_get(ep, "faults")["error500"] == 3
    stack.strict_post(ep, "reset")
    assert stack.strict_get(ep, "faults") == {"throttle": 0, "error500": 0, "drop": 0, "slow": 0, "down": False}
    assert raw(ep, "ForgotPassword", body)[0] == 400


# ---------------------------------------------------------------------------- provisioning


@pytest.mark.parametrize("kind,regions", [("email", ("eu-west-1", "eu-central-1")),
                                          ("username", ("us-west-2", "ap-southeast-1"))])
def test_provision_pair(servers, kind, regions):
    ep_a, ep_b = servers
    a, b = stack.provision_pair(ep_a, regions[0], ep_b, regions[1], kind)
    assert a["public_client_id"] == b["public_client_id"]
    assert a["username_attributes"] == ("email" if kind == "email" else "")
    username = "p@example.com" if kind == "email" else "p-user"
    public_clients = []
    for side in (a, b):
        ep, region = side["endpoint"], side["region"]
        c = idp(ep, region)
        sm = boto3.client("secretsmanager", endpoint_url=ep, region_name=region, **stack.DUMMY_CREDENTIALS)
        sqs = boto3.client("sqs", endpoint_url=ep, region_name=region, **stack.DUMMY_CREDENTIALS)
        ssm = boto3.client("ssm", endpoint_url=ep, region_name=region, **stack.DUMMY_CREDENTIALS)

        pool = c.describe_user_pool(UserPoolId=side["pool_id"])["UserPool"]
        assert pool.get("UsernameAttributes", []) == (["email"] if kind == "email" else [])
        assert {"custom:origin_sub", "email", "name", "phone_number"} <= {s["Name"] for s in pool["SchemaAttributes"]}
        clients = {cl["ClientName"]: cl["ClientId"]
                   for cl in c.list_user_pool_clients(UserPoolId=side["pool_id"])["UserPoolClients"]}
        public_clients.append(clients.get("public"))
        relay = c.describe_user_pool_client(UserPoolId=side["pool_id"], ClientId=side["relay_client_id"])
        relay = relay["UserPoolClient"]
        assert relay["ClientSecret"] == side["relay_client_secret"]
        assert set(stack.AUTH_FLOWS) <= set(relay["ExplicitAuthFlows"])

        mapping = json.loads(sm.get_secret_value(SecretId=side["clients_secret_id"])["SecretString"])
        assert mapping == {"clients": [{"public_client_id": a["public_client_id"],
                                        "client_id": side["relay_client_id"],
                                        "client_secret": side["relay_client_secret"]}]}
        key = json.loads(sm.get_secret_value(SecretId=side["replication_key_secret_id"])["SecretString"])
        assert len(base64.b64decode(key["keys"][key["current"]])) == 32
        side["_key"] = key

        inbound = sqs.get_queue_attributes(QueueUrl=side["inbound_queue_url"], AttributeNames=["All"])["Attributes"]
        dlq = sqs.get_queue_attributes(QueueUrl=side["dlq_url"], AttributeNames=["All"])["Attributes"]
        fallback = sqs.get_queue_attributes(QueueUrl=side["fallback_queue_url"], AttributeNames=["All"])["Attributes"]
        assert inbound["FifoQueue"] == dlq["FifoQueue"] == fallback["FifoQueue"] == "true"
        assert inbound["ContentBasedDeduplication"] == "false"
        assert inbound["VisibilityTimeout"] == "5"
        redrive = json.loads(inbound["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == dlq["QueueArn"] and int(redrive["maxReceiveCount"]) == 50  # above the replicator's own cap (RELAY_MAX_DELIVERIES=40)
        assert ssm.get_parameter(Name=side["drain_parameter"])["Parameter"]["Value"] == "false"

        # the relay client works with its secret, and is strict without it
        code, _ = error_of(c.sign_up, ClientId=side["relay_client_id"], Username=username, Password=PASSWORD)
        assert code == "NotAuthorizedException"
        c.sign_up(ClientId=side["relay_client_id"], Username=username, Password=PASSWORD,
                  SecretHash=h(side["relay_client_secret"], username, side["relay_client_id"]),
                  UserAttributes=[{"Name": "email", "Value": "p@example.com"},
                                  {"Name": "custom:origin_sub", "Value": "x"}])
    assert public_clients == [a["public_client_id"], None]
    assert a["_key"] == b["_key"]
    with pytest.raises(RuntimeError, match="already exists"):
        stack.provision_pair(ep_a, regions[0], ep_b, regions[1], kind)


def test_email_change_unverifies_and_user_settings(epool):
    email = epool.confirmed_user()
    access = epool.login(email)["AccessToken"]
    new = f"n{uuid.uuid4().hex[:6]}@example.com"
    out = epool.c.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "email", "Value": new}])
    assert [d["AttributeName"] for d in out["CodeDeliveryDetailsList"]] == ["email"]
    attrs = {a["Name"]: a["Value"] for a in epool.c.get_user(AccessToken=access)["UserAttributes"]}
    assert (attrs["email"], attrs["email_verified"]) == (new, "false")
    sent = [m for m in stack.mailbox(epool.ep, epool.id, new) if m["kind"] == "VERIFY_ATTRIBUTE"]
    assert len(sent) == 1
    epool.c.verify_user_attribute(AccessToken=access, AttributeName="email", Code=sent[0]["code"])
    attrs = {a["Name"]: a["Value"] for a in epool.c.get_user(AccessToken=access)["UserAttributes"]}
    assert attrs["email_verified"] == "true"

    options = [{"DeliveryMedium": "EMAIL", "AttributeName": "email"}]
    epool.c.set_user_settings(AccessToken=access, MFAOptions=options)
    assert epool.c.admin_get_user(UserPoolId=epool.id, Username=new)["MFAOptions"] == options
    epool.c.admin_set_user_settings(UserPoolId=epool.id, Username=new, MFAOptions=[])
    assert epool.c.admin_get_user(UserPoolId=epool.id, Username=new).get("MFAOptions", []) == []


def test_sqs_send_fault_refuses_one_group_after_skipping(ep):
    sqs = boto3.client("sqs", endpoint_url=ep, region_name=REGION, config=NO_RETRY, **stack.DUMMY_CREDENTIALS)
    url = sqs.create_queue(QueueName=f"f{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]

    def send(group, n):
        sqs.send_message(QueueUrl=url, MessageBody=f"{group}-{n}", MessageGroupId=group, MessageDeduplicationId=f"{group}-{n}")

    stack.strict_post(ep, "sqs_faults", {"group": "g2", "skip": 1, "count": 1})
    send("g2", 1)  # skipped
    with pytest.raises(ClientError) as e:
        send("g2", 2)
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    send("g2", 3)  # fault used up
    send("g1", 1)  # other groups untouched
    assert stack.strict_get(ep, "sqs_faults")["failed"] == {"g2": 1}
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    assert bodies == ["g2-1", "g2-3", "g1-1"]
    stack.strict_post(ep, "sqs_faults", method="DELETE")
    assert stack.strict_get(ep, "sqs_faults") == {"faults": {}, "failed": {}}


# ---------------------------------------------------------------------------- CUSTOM_AUTH


@pytest.fixture(scope="module")
def toy(ep, tmp_path_factory):
    """The toy custom-auth trigger (toy_trigger.py) under the fake Lambda runtime, registered."""
    from tests.harness.lambda_host import LambdaHost, python_command

    tmp = tmp_path_factory.mktemp("toy")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["TOY_TRIGGER_EVENTS"] = str(tmp / "events.jsonl")
    host = LambdaHost(python_command("toy_trigger.py"), env, str(tmp / "toy.log"), REGION, "toy-auth")
    host.register(ep)
    host.events_path = env["TOY_TRIGGER_EVENTS"]
    try:
        yield host
    finally:
        host.stop()


def toy_events(toy, since: int = 0) -> list[dict]:
    try:
        with open(toy.events_path) as f:
            return [json.loads(line) for line in f.read().splitlines()[since:]]
    except FileNotFoundError:
        return []


class CustomPool(Pool):
    """A pool whose relay client also allows CUSTOM_AUTH, with the toy trigger attached."""

    def __init__(self, ep: str, kind: str, toy):
        from tests.harness.lambda_host import set_auth_triggers

        super().__init__(ep, kind)
        self.c.update_user_pool_client(UserPoolId=self.id, ClientId=self.cid,
                                       ExplicitAuthFlows=stack.AUTH_FLOWS + ["ALLOW_CUSTOM_AUTH"])
        set_auth_triggers(self.c, self.id, toy.arn)

    def start(self, username: str, **extra) -> dict:
        return self.c.initiate_auth(
            ClientId=self.cid, AuthFlow="CUSTOM_AUTH",
            AuthParameters={"USERNAME": username, "SECRET_HASH": self.hash(username)}, **extra)

    def answer(self, username: str, session: str, answer: str, **extra) -> dict:
        return self.c.respond_to_auth_challenge(
            ClientId=self.cid, ChallengeName="CUSTOM_CHALLENGE", Session=session,
            ChallengeResponses={"USERNAME": username, "ANSWER": answer, "SECRET_HASH": self.hash(username)},
            **extra)


def test_custom_auth_loop_runs_the_triggers_with_cognito_events(ep, toy):
    pool = CustomPool(ep, "email", toy)
    email = pool.confirmed_user()
    internal = pool.c.admin_get_user(UserPoolId=pool.id, Username=email)["Username"]
    seen = len(toy_events(toy))

    started = pool.start(email, ClientMetadata={"app": "demo"})
    assert started["ChallengeName"] == "CUSTOM_CHALLENGE"
    params = started["ChallengeParameters"]
    assert set(params) == {"word", "USERNAME"} and params["USERNAME"] == internal
    done = pool.answer(email, started["Session"], params["word"])
    tokens = done["AuthenticationResult"]
    assert claims(tokens["AccessToken"])["username"] == internal
    assert claims(tokens["IdToken"])["email"] == email
    assert pool.c.get_user(AccessToken=tokens["AccessToken"])["Username"] == internal
    # the refresh token works like any other
    refreshed = pool.c.initiate_auth(ClientId=pool.cid, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={
        "REFRESH_TOKEN": tokens["RefreshToken"], "SECRET_HASH": pool.hash(internal)})
    assert "AccessToken" in refreshed["AuthenticationResult"]

    events = toy_events(toy, seen)
    assert [e["triggerSource"] for e in events] == [
        "DefineAuthChallenge_Authentication", "CreateAuthChallenge_Authentication",
        "VerifyAuthChallengeResponse_Authentication", "DefineAuthChallenge_Authentication"]
    for e in events:
        assert e["version"] == "1" and e["region"] == REGION and e["userPoolId"] == pool.id
        assert e["userName"] == internal
        assert e["callerContext"] == {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": pool.cid}
        attrs = e["request"]["userAttributes"]
        assert attrs["sub"] == internal and attrs["email"] == email
        assert attrs["cognito:user_status"] == "CONFIRMED" and attrs["email_verified"] == "true"
        assert e["request"]["userNotFound"] is False
    define1, create, verify, define2 = events
    assert define1["request"]["session"] == [] and define1["request"]["clientMetadata"] == {"app": "demo"}
    assert define1["response"] == {"challengeName": None, "issueTokens": None, "failAuthentication": None}
    assert create["request"]["challengeName"] == "CUSTOM_CHALLENGE" and create["request"]["session"] == []
    assert create["response"] == {"publicChallengeParameters": None, "privateChallengeParameters": None,
                                  "challengeMetadata": None}
    assert verify["request"]["privateChallengeParameters"] == {"answer": params["word"]}
    assert verify["request"]["challengeAnswer"] == params["word"]
    assert verify["response"] == {"answerCorrect": None}
    assert define2["request"]["session"] == [
        {"challengeName": "CUSTOM_CHALLENGE", "challengeResult": True, "challengeMetadata": "round-1"}]


def test_custom_auth_wrong_answers_fail_and_sessions_are_single_use(ep, toy):
    pool = CustomPool(ep, "username", toy)
    alice, bob = pool.confirmed_user(), pool.confirmed_user()

    first = pool.start(alice)
    second = pool.answer(alice, first["Session"], "wrong")  # Define asks again
    assert second["ChallengeName"] == "CUSTOM_CHALLENGE" and second["Session"] != first["Session"]
    # the answered session is used up: replaying it (even with the right word) is refused
    assert error_of(pool.answer, username=alice, session=first["Session"],
                    answer=first["ChallengeParameters"]["word"]) == (
        "NotAuthorizedException", "Invalid session for the user.")
    # the replay did not burn the live session... but a session is bound to its user
    assert error_of(pool.answer, username=bob, session=second["Session"],
                    answer=second["ChallengeParameters"]["word"]) == (
        "NotAuthorizedException", "Invalid session for the user.")
    # ... and any attempt uses it up
    assert error_of(pool.answer, username=alice, session=second["Session"],
                    answer=second["ChallengeParameters"]["word"])[0] == "NotAuthorizedException"
    # three wrong answers: Define fails the authentication with Cognito's message
    s = pool.start(alice)["Session"]
    s = pool.answer(alice, s, "no")["Session"]
    s = pool.answer(alice, s, "no")["Session"]
    assert error_of(pool.answer, username=alice, session=s, answer="no") == (
        "NotAuthorizedException", "Incorrect username or password.")
    # a made-up session
    assert error_of(pool.answer, username=alice, session=base64.b64encode(b"x" * 48).decode(), answer="x") == (
        "NotAuthorizedException", "Invalid session for the user.")
    # the session is bound to the client too
    other = pool.c.create_user_pool_client(UserPoolId=pool.id, ClientName="other", GenerateSecret=False,
                                           ExplicitAuthFlows=["ALLOW_CUSTOM_AUTH"])["UserPoolClient"]["ClientId"]
    s = pool.start(alice)
    assert error_of(pool.c.respond_to_auth_challenge, ClientId=other, ChallengeName="CUSTOM_CHALLENGE",
                    Session=s["Session"], ChallengeResponses={"USERNAME": alice, "ANSWER": s["ChallengeParameters"]["word"]}) == (
        "NotAuthorizedException", "Invalid session for the user.")


def test_custom_auth_secret_hash_flow_and_trigger_configuration(ep, toy):
    pool = CustomPool(ep, "username", toy)
    user = pool.confirmed_user()
    kwargs = {"ClientId": pool.cid, "AuthFlow": "CUSTOM_AUTH", "AuthParameters": {"USERNAME": user}}
    started = assert_hash_enforced(pool.c.initiate_auth, kwargs, in_auth, pool.hash(user), pool.cid)
    answer = {"ClientId": pool.cid, "ChallengeName": "CUSTOM_CHALLENGE", "Session": started["Session"],
              "ChallengeResponses": {"USERNAME": user, "ANSWER": started["ChallengeParameters"]["word"]}}
    code, _ = error_of(pool.c.respond_to_auth_challenge, **answer)
    assert code == "NotAuthorizedException"
    # (a refused hash does not use the session up)
    assert "AuthenticationResult" in pool.c.respond_to_auth_challenge(**in_answers(answer, pool.hash(user)))
    # Admin flavour
    s = pool.c.admin_initiate_auth(UserPoolId=pool.id, ClientId=pool.cid, AuthFlow="CUSTOM_AUTH",
                                   AuthParameters={"USERNAME": user, "SECRET_HASH": pool.hash(user)})
    done = pool.c.admin_respond_to_auth_challenge(
        UserPoolId=pool.id, ClientId=pool.cid, ChallengeName="CUSTOM_CHALLENGE", Session=s["Session"],
        ChallengeResponses={"USERNAME": user, "ANSWER": s["ChallengeParameters"]["word"],
                            "SECRET_HASH": pool.hash(user)})
    assert "AccessToken" in done["AuthenticationResult"]
    # a client without ALLOW_CUSTOM_AUTH
    plain = Pool(ep, "username")
    plain_user = plain.confirmed_user()
    assert error_of(plain.c.initiate_auth, ClientId=plain.cid, AuthFlow="CUSTOM_AUTH", AuthParameters={
        "USERNAME": plain_user, "SECRET_HASH": plain.hash(plain_user)}) == (
        "InvalidParameterException", "CUSTOM_AUTH flow not enabled for this client")
    # a pool without the triggers
    plain.c.update_user_pool_client(UserPoolId=plain.id, ClientId=plain.cid,
                                    ExplicitAuthFlows=stack.AUTH_FLOWS + ["ALLOW_CUSTOM_AUTH"])
    assert error_of(plain.c.initiate_auth, ClientId=plain.cid, AuthFlow="CUSTOM_AUTH", AuthParameters={
        "USERNAME": plain_user, "SECRET_HASH": plain.hash(plain_user)}) == (
        "InvalidParameterException", "Custom auth lambda trigger is not configured for the user pool.")
    # unknown, disabled and unconfirmed users
    assert error_of(pool.start, username="nobody")[0] == "UserNotFoundException"
    pending = pool.name()
    pool.sign_up(pending)
    assert error_of(pool.start, username=pending) == ("UserNotConfirmedException", "User is not confirmed.")
    pool.c.admin_disable_user(UserPoolId=pool.id, Username=user)
    assert error_of(pool.start, username=user) == ("NotAuthorizedException", "User is disabled.")


def test_custom_auth_trigger_failures_are_cognito_errors(ep, toy):
    pool = CustomPool(ep, "username", toy)
    user = pool.confirmed_user()
    assert error_of(pool.start, username=user, ClientMetadata={"mode": "crash"}) == (
        "UserLambdaValidationException", "DefineAuthChallenge failed with error toy trigger crashed on purpose.")
    assert error_of(pool.start, username=user, ClientMetadata={"mode": "garbage"}) == (
        "InvalidLambdaResponseException", "Invalid lambda function output : Invalid JSON")
    # a trigger that does not answer within the timeout
    toy.register(ep, timeout=0.5)
    try:
        assert error_of(pool.start, username=user, ClientMetadata={"mode": "hang", "seconds": "2"}) == (
            "UnexpectedLambdaException",
            "DefineAuthChallenge invocation failed due to error Socket timeout while invoking Lambda function.")
    finally:
        toy.register(ep)
    # a trigger ARN the emulator cannot invoke
    from tests.harness.lambda_host import set_auth_triggers
    set_auth_triggers(pool.c, pool.id, "arn:aws:lambda:eu-west-1:123456789012:function:missing")
    assert error_of(pool.start, username=user)[0] == "UnexpectedLambdaException"
    # and the toy still works afterwards (the hung call has finished by now or queues first)
    set_auth_triggers(pool.c, pool.id, toy.arn)
    s = pool.start(user)
    assert "AuthenticationResult" in pool.answer(user, s["Session"], s["ChallengeParameters"]["word"])


def test_update_user_pool_keeps_username_attributes(epool):
    from tests.harness.lambda_host import set_auth_triggers

    set_auth_triggers(epool.c, epool.id, "arn:aws:lambda:eu-west-1:123456789012:function:f")
    described = epool.c.describe_user_pool(UserPoolId=epool.id)["UserPool"]
    assert described["UsernameAttributes"] == ["email"]
    assert described["AutoVerifiedAttributes"] == ["email"]
    assert described["LambdaConfig"]["DefineAuthChallenge"].endswith(":function:f")
    # and a plain UpdateUserPool resets what it is not given, like Cognito
    epool.c.update_user_pool(UserPoolId=epool.id)
    assert not epool.c.describe_user_pool(UserPoolId=epool.id)["UserPool"].get("LambdaConfig")
