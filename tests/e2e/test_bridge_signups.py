"""Half-finished sign-ups finish in the other region (issue 10 point 5), with the real binaries
against two strict emulators, both pool kinds.

A user who signs up in one region and is replicated before confirming is a disabled
placeholder in the other (made without a message). Through that region's proxy it must behave
as Cognito's unconfirmed user: sign-in (USER_PASSWORD_AUTH, SRP through the bridge or straight
at the app pool) answers UserNotConfirmedException; resending the code, or signing up again
(same address and password: a sign-up belongs to whoever started it), gets a code from *this* pool, ConfirmSignUp with it
confirms, and the confirmed user with the password replicates back to the origin. Replication
itself never messages anyone, and neither trick takes over a user the origin has confirmed."""

from __future__ import annotations

import os
import tempfile
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.harness import srp as srp_client
from tests.harness.relay import start_auth_triggers, start_proxy, start_replicator
from tests.harness.stack import (app_client, client, free_port, latest_code, mailbox, provision_pair,
                                 start_strict_moto, stop_strict_moto)
from tests.harness.wait import eventually

A, B = "eu-west-1", "eu-central-1"
PASSWORD = "Pending-Pass1!"
NEW_PASSWORD = "Pending-Newer2!"
WRONG = "Pending-Wrong1!"


class Stack:
    def __init__(self, kind: str, workdir: str):
        self.kind = kind
        self.moto_a = start_strict_moto(free_port(), log_path=os.path.join(workdir, "moto-a.log"))
        self.moto_b = start_strict_moto(free_port(), log_path=os.path.join(workdir, "moto-b.log"))
        self.a, self.b = provision_pair(self.moto_a.endpoint, A, self.moto_b.endpoint, B, kind)
        self.triggers = start_auth_triggers((self.a, self.b), workdir)
        self.proxy_a = start_proxy(self.a, self.b, os.path.join(workdir, "proxy-a.log"))
        self.proxy_b = start_proxy(self.b, self.a, os.path.join(workdir, "proxy-b.log"))
        self.rep_a = start_replicator(self.a, os.path.join(workdir, "replicator-a.log"))
        self.rep_b = start_replicator(self.b, os.path.join(workdir, "replicator-b.log"))
        self.client_id = self.a["public_client_id"]
        self.app_pool = self.a["pool_id"]

    def close(self) -> None:
        for p in (self.proxy_a, self.proxy_b, self.rep_a, self.rep_b, *self.triggers):
            p.stop()
        stop_strict_moto(self.moto_a)
        stop_strict_moto(self.moto_b)

    def side(self, region: str) -> tuple[dict, str]:
        return (self.a, self.proxy_a.url) if region == A else (self.b, self.proxy_b.url)

    def names(self) -> tuple[str, str]:
        n = uuid.uuid4().hex[:10]
        email = f"p{n}@example.com"
        return (email if self.kind == "email" else f"pending{n}"), email

    def app(self, region: str):
        return app_client(self.side(region)[1], region)

    def sign_up(self, region: str, name: str, email: str, password: str = PASSWORD) -> dict:
        return self.app(region).sign_up(ClientId=self.client_id, Username=name, Password=password,
                                        UserAttributes=[{"Name": "email", "Value": email}])

    def user(self, region: str, name: str) -> dict | None:
        side = self.side(region)[0]
        try:
            return client("cognito-idp", side["endpoint"], region).admin_get_user(
                UserPoolId=side["pool_id"], Username=name)
        except ClientError:
            return None

    def messages(self, region: str, email: str) -> list[dict]:
        side = self.side(region)[0]
        return mailbox(side["endpoint"], side["pool_id"], email)

    def code(self, region: str, email: str) -> str:
        side = self.side(region)[0]
        return latest_code(side["endpoint"], side["pool_id"], email)

    def password_sign_in(self, region: str, name: str, password: str) -> dict:
        return self.app(region).initiate_auth(ClientId=self.client_id, AuthFlow="USER_PASSWORD_AUTH",
                                              AuthParameters={"USERNAME": name, "PASSWORD": password})

    def srp_sign_in(self, region: str, name: str, password: str) -> dict:
        """The default sign-in of an app built for pool A (the bridge answers it at B)."""
        a, srp_a = srp_client.start()
        idp = self.app(region)
        first = idp.initiate_auth(ClientId=self.client_id, AuthFlow="USER_SRP_AUTH",
                                  AuthParameters={"USERNAME": name, "SRP_A": srp_a})
        params = first["ChallengeParameters"]
        return idp.respond_to_auth_challenge(
            ClientId=self.client_id, ChallengeName="PASSWORD_VERIFIER",
            ChallengeResponses={"USERNAME": params["USER_ID_FOR_SRP"],
                                **srp_client.claim(self.app_pool, password, a, params)})


@pytest.fixture(scope="module", params=["username", "email"])
def stack(request):
    workdir = tempfile.mkdtemp(prefix=f"relay-signups-{request.param}-")
    s = Stack(request.param, workdir)
    yield s
    s.close()


def error_of(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def replicated_unconfirmed(s: Stack, origin: str, name: str, email: str) -> str:
    """Signs up at `origin` (not confirmed) and waits until the other region answers its
    sign-in as Cognito answers an unconfirmed user's. Returns the other region."""
    other = B if origin == A else A
    s.sign_up(origin, name, email)
    eventually(lambda: s.user(other, name) is not None, timeout=30, what="the sign-up is replicated")

    def unconfirmed():
        return error_of(lambda: s.password_sign_in(other, name, PASSWORD))[0] == "UserNotConfirmedException"

    eventually(unconfirmed, timeout=30, interval=0.5, what="the replica answers as an unconfirmed user")
    return other


def confirmed_everywhere(s: Stack, name: str) -> None:
    for region in (A, B):
        eventually(lambda region=region: (u := s.user(region, name)) is not None
                   and (u["UserStatus"], u["Enabled"]) == ("CONFIRMED", True),
                   timeout=30, what=f"the user is confirmed and enabled in {region}")


def test_a_replicated_unconfirmed_user_answers_as_cognito_answers_unconfirmed_users(stack: Stack):
    s = stack
    name, email = s.names()
    other = replicated_unconfirmed(s, A, name, email)
    assert not s.messages(other, email), "replication sent a message"
    assert len(s.messages(A, email)) == 1
    # USER_PASSWORD_AUTH: the right password says "not confirmed", a wrong one is just wrong.
    assert error_of(lambda: s.password_sign_in(B, name, PASSWORD)) == (
        "UserNotConfirmedException", "User is not confirmed.")
    assert error_of(lambda: s.password_sign_in(B, name, WRONG)) == (
        "NotAuthorizedException", "Incorrect username or password.")
    # SRP through the bridge: after a proof with the right password, "not confirmed".
    eventually(lambda: error_of(lambda: s.srp_sign_in(B, name, PASSWORD))[0] == "UserNotConfirmedException",
               timeout=30, what="SRP at B answers UserNotConfirmedException")
    assert error_of(lambda: s.srp_sign_in(B, name, WRONG)) == (
        "NotAuthorizedException", "Incorrect username or password.")
    # The code A sent does not confirm at B: a code mismatch, so the app offers to resend.
    code, _ = error_of(lambda: s.app(B).confirm_sign_up(ClientId=s.client_id, Username=name,
                                                        ConfirmationCode=s.code(A, email)))
    assert code == "CodeMismatchException"
    assert not s.messages(B, email), "nothing was sent from B"


def test_resend_on_the_standby_sends_its_code_and_the_confirmed_user_replicates_back(stack: Stack):
    s = stack
    name, email = s.names()
    replicated_unconfirmed(s, A, name, email)
    out = s.app(B).resend_confirmation_code(ClientId=s.client_id, Username=name)
    assert out["CodeDeliveryDetails"]["AttributeName"] == "email", out
    assert set(out) - {"ResponseMetadata"} == {"CodeDeliveryDetails"}, "Resend's shape"
    assert len(s.messages(B, email)) == 1, "exactly one code, from B"
    s.app(B).confirm_sign_up(ClientId=s.client_id, Username=name, ConfirmationCode=s.code(B, email))
    assert "AuthenticationResult" in s.password_sign_in(B, name, PASSWORD)
    assert "AuthenticationResult" in s.srp_sign_in(B, name, PASSWORD)
    confirmed_everywhere(s, name)
    assert "AuthenticationResult" in s.password_sign_in(A, name, PASSWORD)
    assert "AuthenticationResult" in s.srp_sign_in(A, name, PASSWORD)
    u = s.user(A, name)
    attrs = {x["Name"]: x["Value"] for x in u["UserAttributes"]}
    assert attrs.get("email_verified") == "true", "confirming at B verified the address at A too"
    assert len(s.messages(A, email)) == 1, "A sent only its own sign-up code"


def test_signing_up_again_with_the_same_password_completes_and_a_new_password_is_refused(stack: Stack):
    """A sign-up belongs to whoever started it (issue 19 point 2): signing up again finishes
    the pending sign-up only with its password; another password is Cognito's
    UsernameExistsException (and counts as a failed sign-in)."""
    s = stack
    name, email = s.names()
    replicated_unconfirmed(s, A, name, email)
    assert error_of(lambda: s.sign_up(B, name, email, password=NEW_PASSWORD))[0] == "UsernameExistsException"
    out = s.sign_up(B, name, email, password=PASSWORD)
    assert out["UserConfirmed"] is False and out["CodeDeliveryDetails"]["AttributeName"] == "email", out
    s.app(B).confirm_sign_up(ClientId=s.client_id, Username=name, ConfirmationCode=s.code(B, email))
    assert "AuthenticationResult" in s.srp_sign_in(B, name, PASSWORD)
    confirmed_everywhere(s, name)
    assert "AuthenticationResult" in s.password_sign_in(A, name, PASSWORD)
    assert error_of(lambda: s.password_sign_in(A, name, NEW_PASSWORD)) == (
        "NotAuthorizedException", "Incorrect username or password.")


def test_a_sign_up_from_the_standby_finishes_on_the_primary(stack: Stack):
    """Failback: signed up at B, replicated to A (the app pool) unconfirmed, finished at A."""
    s = stack
    name, email = s.names()
    replicated_unconfirmed(s, B, name, email)
    assert not s.messages(A, email), "replication sent a message"
    # Straight at the app pool, SRP cannot be proven before the challenge: Cognito's answer.
    a, srp_a = srp_client.start()
    code, _ = error_of(lambda: s.app(A).initiate_auth(ClientId=s.client_id, AuthFlow="USER_SRP_AUTH",
                                                      AuthParameters={"USERNAME": name, "SRP_A": srp_a}))
    assert code == "UserNotConfirmedException"
    s.app(A).resend_confirmation_code(ClientId=s.client_id, Username=name)
    s.app(A).confirm_sign_up(ClientId=s.client_id, Username=name, ConfirmationCode=s.code(A, email))
    assert "AuthenticationResult" in s.srp_sign_in(A, name, PASSWORD)
    confirmed_everywhere(s, name)
    eventually(lambda: "AuthenticationResult" in s.srp_sign_in(B, name, PASSWORD), timeout=30,
               what="SRP through the bridge at B")


def test_signing_up_again_with_another_address_is_refused(stack: Stack):
    s = stack
    name, email = s.names()
    replicated_unconfirmed(s, A, name, email)
    code, _ = error_of(lambda: s.sign_up(B, name, f"evil-{uuid.uuid4().hex[:6]}@example.com"))
    assert code == "UsernameExistsException"
    assert error_of(lambda: s.password_sign_in(B, name, PASSWORD))[0] == "UserNotConfirmedException", \
        "the placeholder is untouched"


def test_resend_and_sign_up_again_cannot_take_over_a_confirmed_replicated_user(stack: Stack):
    s = stack
    name, email = s.names()
    s.sign_up(A, name, email)
    s.app(A).confirm_sign_up(ClientId=s.client_id, Username=name, ConfirmationCode=s.code(A, email))
    confirmed_everywhere(s, name)
    idp = s.app(B)
    assert error_of(lambda: idp.resend_confirmation_code(ClientId=s.client_id, Username=name)) == (
        "InvalidParameterException", "User is already confirmed.")
    assert error_of(lambda: s.sign_up(B, name, email, password=NEW_PASSWORD))[0] == "UsernameExistsException"
    assert error_of(lambda: s.password_sign_in(B, name, NEW_PASSWORD)) == (
        "NotAuthorizedException", "Incorrect username or password.")
    assert "AuthenticationResult" in s.password_sign_in(B, name, PASSWORD)
    assert not s.messages(B, email), "nothing was sent from B"
