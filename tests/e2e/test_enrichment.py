"""The enrichment layer end to end: the sign-up policy and the event stream.

A real boto3 client → the proxy binary → strict emulated Cognito, with the proxy's events
published to an EventBridge bus on the emulator, where a rule targets an SQS queue that the
tests read (as a downstream system would).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import tempfile
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.harness.fake_lambda import FakeRuntime, rest_event
from tests.harness.relay import binary, proxy_env, start_proxy
from tests.harness.stack import app_client, client, free_port, latest_code, provision_pair, start_strict_moto, stop_strict_moto

from .conftest import eventually

PASSWORD = "Corr3ct-Horse!1"
NEW_PASSWORD = "Batt3ry-Staple!2"
BUS = "relay-events"
SOURCE = "cognito-relay.proxy"


class Stack:
    def __init__(self, workdir: str):
        self.workdir = workdir
        self.moto_a = start_strict_moto(free_port(), log_path=os.path.join(workdir, "moto-a.log"))
        self.moto_b = start_strict_moto(free_port(), log_path=os.path.join(workdir, "moto-b.log"))
        self.a, self.b = provision_pair(self.moto_a.endpoint, "eu-west-1", self.moto_b.endpoint, "eu-central-1", "username")
        # The downstream side: a bus, a rule on the proxy's events, an SQS queue as its target.
        events = client("events", self.a["endpoint"], self.a["region"])
        sqs = client("sqs", self.a["endpoint"], self.a["region"])
        events.create_event_bus(Name=BUS)
        self.sink_url = sqs.create_queue(QueueName="relay-events-sink")["QueueUrl"]
        sink_arn = sqs.get_queue_attributes(QueueUrl=self.sink_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="all-relay-requests", EventBusName=BUS, EventPattern=json.dumps({"source": [SOURCE]}))
        events.put_targets(Rule="all-relay-requests", EventBusName=BUS, Targets=[{"Id": "sink", "Arn": sink_arn}])
        self.sqs = sqs
        self.received: list[str] = []
        # The policy, in a file the proxy re-reads.
        self.policy_path = os.path.join(workdir, "policy.json")
        self.write_policy({"blocked_email_domains": ["blocked.example"]})
        self.disposable_path = os.path.join(workdir, "disposable.txt")
        with open(self.disposable_path, "w") as f:
            f.write("# disposable e-mail providers\nmailinator.com\nyopmail.com\n")
        self.proxy = start_proxy(
            self.a, self.b, os.path.join(workdir, "proxy-a.log"),
            RELAY_POLICY=f"file:{self.policy_path}",
            RELAY_POLICY_DISPOSABLE_DOMAINS=f"file:{self.disposable_path}",
            RELAY_POLICY_RELOAD_MS="200",
            RELAY_EVENTS_BUS=BUS,
        )
        self.idp = app_client(self.proxy.url, "eu-west-1")

    def write_policy(self, doc: dict) -> None:
        tmp = self.policy_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, self.policy_path)

    def drain_sink(self) -> list[str]:
        """Every raw SQS body received so far (EventBridge events as JSON text)."""
        while True:
            msgs = self.sqs.receive_message(QueueUrl=self.sink_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not msgs:
                return self.received
            for m in msgs:
                self.received.append(m["Body"])
                self.sqs.delete_message(QueueUrl=self.sink_url, ReceiptHandle=m["ReceiptHandle"])

    def details(self) -> list[dict]:
        return [json.loads(b)["detail"] for b in self.drain_sink()]

    def close(self) -> None:
        self.proxy.stop()
        stop_strict_moto(self.moto_a)
        stop_strict_moto(self.moto_b)


@pytest.fixture(scope="module")
def stack():
    s = Stack(tempfile.mkdtemp(prefix="relay-enrichment-"))
    yield s
    s.close()


def metrics(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        return r.read().decode()


def sign_up(stack, username: str, email: str):
    return stack.idp.sign_up(ClientId=stack.a["public_client_id"], Username=username, Password=PASSWORD,
                             UserAttributes=[{"Name": "email", "Value": email}, {"Name": "name", "Value": "Ada"}])


def user_exists(stack, username: str) -> bool:
    admin = client("cognito-idp", stack.a["endpoint"], stack.a["region"])
    try:
        admin.admin_get_user(UserPoolId=stack.a["pool_id"], Username=username)
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] != "UserNotFoundException":
            raise
        return False


def keyed_hash(stack, value: str) -> str:
    """The documented keyed hash of a user (docs/event-stream.md): HMAC-SHA256 under
    HMAC-SHA256(replication key, "event-stream-user"), base64url, prefixed by the key id."""
    master = base64.b64decode(stack.a["replication_key_b64"])
    sub = hmac.new(master, b"event-stream-user", hashlib.sha256).digest()
    mac = hmac.new(sub, value.encode(), hashlib.sha256).digest()
    return "k1:" + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def test_a_disposable_domain_sign_up_is_refused_like_a_pre_sign_up_trigger(stack):
    username = f"u{uuid.uuid4().hex[:10]}"
    with pytest.raises(ClientError) as e:
        sign_up(stack, username, f"{username}@mailinator.com")
    err = e.value.response["Error"]
    assert err["Code"] == "UserLambdaValidationException"
    assert err["Message"] == "PreSignUp failed with error This e-mail domain cannot be used to sign up."
    assert not user_exists(stack, username), "nothing reached Cognito"
    assert 'relay_policy_refusals_total{rule="disposable_email_domain",mode="enforce"} 1' in metrics(stack.proxy.url)
    logs = stack.proxy.logs()
    assert "mailinator.com" in logs and f"{username}@mailinator.com" not in logs, "the domain is logged, never the address"
    # A sign-up from an ordinary domain goes through.
    ok = f"u{uuid.uuid4().hex[:10]}"
    assert sign_up(stack, ok, f"{ok}@example.com")["UserSub"]
    # A change of the sign-in e-mail to a blocked domain is refused the same way.
    code = latest_code(stack.a["endpoint"], stack.a["pool_id"], ok, "SIGN_UP")
    stack.idp.confirm_sign_up(ClientId=stack.a["public_client_id"], Username=ok, ConfirmationCode=code)
    tokens = stack.idp.initiate_auth(ClientId=stack.a["public_client_id"], AuthFlow="USER_PASSWORD_AUTH",
                                     AuthParameters={"USERNAME": ok, "PASSWORD": PASSWORD})["AuthenticationResult"]
    with pytest.raises(ClientError) as e:
        stack.idp.update_user_attributes(AccessToken=tokens["AccessToken"], UserAttributes=[{"Name": "email", "Value": "x@blocked.example"}])
    assert e.value.response["Error"]["Code"] == "UserLambdaValidationException"


def test_a_reloaded_rule_takes_effect_without_a_restart(stack):
    first = f"u{uuid.uuid4().hex[:10]}"
    assert sign_up(stack, first, f"{first}@newly-bad.example")["UserSub"]
    pid = stack.proxy.p.pid
    stack.write_policy({"blocked_email_domains": ["blocked.example", "newly-bad.example"],
                        "messages": {"blocked_email_domain": "Please use another e-mail address."}})

    def refused():
        u = f"u{uuid.uuid4().hex[:10]}"
        try:
            sign_up(stack, u, f"{u}@newly-bad.example")
        except ClientError as e:
            return e.response["Error"]
        return None

    err = eventually(refused, timeout=15)
    assert err["Code"] == "UserLambdaValidationException"
    assert err["Message"] == "PreSignUp failed with error Please use another e-mail address."
    assert stack.proxy.p.pid == pid and stack.proxy.p.poll() is None, "same process"

    # A reload that does not validate keeps the rules in force (and is counted).
    stack.write_policy({"username_pattern": "(["})

    def reload_refused():
        assert refused() is not None, "the rules in force still refuse"
        return "relay_policy_reload_failures_total 0" not in metrics(stack.proxy.url)

    eventually(reload_refused, timeout=15)
    assert refused() is not None
    stack.write_policy({"blocked_email_domains": ["blocked.example"]})


def test_the_events_of_a_user_journey_reach_a_queue_without_secrets(stack):
    stack.drain_sink()
    username = f"journey{uuid.uuid4().hex[:8]}"
    idp, cid = stack.idp, stack.a["public_client_id"]
    sign_up(stack, username, f"{username}@example.com")
    code = latest_code(stack.a["endpoint"], stack.a["pool_id"], username, "SIGN_UP")
    idp.confirm_sign_up(ClientId=cid, Username=username, ConfirmationCode=code)
    tokens = idp.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD})["AuthenticationResult"]
    idp.update_user_attributes(AccessToken=tokens["AccessToken"], UserAttributes=[{"Name": "name", "Value": "Grace"}])
    idp.change_password(AccessToken=tokens["AccessToken"], PreviousPassword=PASSWORD, ProposedPassword=NEW_PASSWORD)
    with pytest.raises(ClientError) as e:
        idp.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": "Wr0ng-Password!"})
    assert e.value.response["Error"]["Code"] == "NotAuthorizedException"
    idp.global_sign_out(AccessToken=tokens["AccessToken"])

    who = keyed_hash(stack, username)
    journey = ["SignUp", "ConfirmSignUp", "InitiateAuth", "UpdateUserAttributes", "ChangePassword", "InitiateAuth", "GlobalSignOut"]

    def mine():
        evs = sorted((d for d in stack.details() if d.get("user") == who), key=lambda d: d["time_ms"])
        return evs if len(evs) >= len(journey) else None

    evs = eventually(mine, timeout=20)
    assert sorted(e["action"] for e in evs) == sorted(journey)
    assert evs[0]["action"] == "SignUp" and evs[-1]["action"] == "GlobalSignOut"
    for e in evs:
        assert e["v"] == 1 and e["region"] == "eu-west-1" and e["pool"] == stack.a["pool_id"]
        assert e["user_hashed"] is True and e["caller_ip"] == "127.0.0.1" and e["latency_ms"] > 0
    ok = [e for e in evs if e["outcome"] == "success"]
    assert all(e["status"] == 200 for e in ok) and len(ok) == 6
    assert {e["action"]: e["replication"] for e in ok if e["action"] != "InitiateAuth"} == {
        "SignUp": "peer", "ConfirmSignUp": "peer", "UpdateUserAttributes": "peer", "ChangePassword": "peer", "GlobalSignOut": "peer"}
    failed = [e for e in evs if e["outcome"] != "success"]
    assert [(e["outcome"], e["status"], e["error_type"]) for e in failed] == [("cognito_error", 400, "NotAuthorizedException")]

    # No password, token, code or secret in any event (raw bodies, as downstream gets them).
    secrets = [PASSWORD, NEW_PASSWORD, "Wr0ng-Password!", f'"{code}"', tokens["AccessToken"], tokens["IdToken"], tokens["RefreshToken"],
               stack.a["relay_client_secret"], stack.a["replication_key_b64"], stack.a["refresh_key_b64"], username]
    for raw in stack.received:
        for s in secrets:
            assert s not in raw, "a secret (or, in hash mode, the username) leaked into an event"
        for word in ("SecretHash", "SECRET_HASH", "PASSWORD", "AccessToken", "RefreshToken", "ConfirmationCode"):
            assert word not in raw


def test_policy_refusals_are_events_too(stack):
    stack.drain_sink()
    username = f"u{uuid.uuid4().hex[:10]}"
    with pytest.raises(ClientError) as e:
        sign_up(stack, username, f"{username}@yopmail.com")
    assert e.value.response["Error"]["Code"] == "UserLambdaValidationException"
    who = keyed_hash(stack, username)
    ev = eventually(lambda: [d for d in stack.details() if d.get("user") == who], timeout=20)[0]
    assert (ev["action"], ev["outcome"], ev["status"], ev["error_type"], ev["policy_rule"]) == (
        "SignUp", "relay_refused", 400, "UserLambdaValidationException", "disposable_email_domain")
    assert "yopmail" not in json.dumps(ev), "the address is not in the event"


def test_an_unreachable_bus_never_fails_a_request_and_drops_are_counted(stack):
    dead = f"http://127.0.0.1:{free_port()}"
    proxy = start_proxy(stack.a, stack.b, os.path.join(stack.workdir, "proxy-deadbus.log"), RELAY_EVENTS_BUS=BUS, RELAY_EVENTS_ENDPOINT=dead)
    try:
        idp, cid = app_client(proxy.url, "eu-west-1"), stack.a["public_client_id"]
        for _ in range(5):
            u = f"u{uuid.uuid4().hex[:10]}"
            idp.sign_up(ClientId=cid, Username=u, Password=PASSWORD, UserAttributes=[{"Name": "email", "Value": f"{u}@example.com"}])
            code = latest_code(stack.a["endpoint"], stack.a["pool_id"], u, "SIGN_UP")
            idp.confirm_sign_up(ClientId=cid, Username=u, ConfirmationCode=code)
            assert idp.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": u, "PASSWORD": PASSWORD})["AuthenticationResult"]

        def dropped():
            for line in metrics(proxy.url).splitlines():
                if line.startswith('relay_events_dropped_total{reason="publish_failed"}'):
                    return int(line.split()[-1])
            return 0

        assert eventually(lambda: dropped() >= 15, timeout=20)
        assert "event stream" in proxy.logs() and "events dropped" in proxy.logs()
    finally:
        proxy.stop()


def test_a_bad_rule_stops_the_proxy_at_startup_naming_it(stack, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"attribute_patterns": {"phone_number": "+44("}}))
    env = proxy_env(stack.a, None, free_port(), RELAY_POLICY=f"file:{bad}")
    out = subprocess.run([binary("proxy")], env=env, capture_output=True, timeout=30)
    assert out.returncode == 2
    assert b"attribute_patterns.phone_number" in out.stderr + out.stdout


def test_under_lambda_the_event_is_published_before_the_instance_freezes(stack, tmp_path):
    """The function answers only after its event reached the bus: freezing it (SIGSTOP) right
    after the answer loses nothing."""
    stack.drain_sink()
    rt = FakeRuntime()
    env = proxy_env(stack.a, stack.b, 0, AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH="true", RELAY_EVENTS_BUS=BUS, RELAY_EVENTS_FLUSH_MS="5000")
    env.pop("RELAY_LISTEN")
    env.update(rt.env("proxy"))
    proc = subprocess.Popen([binary("proxy")], env=env, stdout=open(tmp_path / "proxy-lambda.log", "wb"), stderr=subprocess.STDOUT)
    try:
        user = f"lam{uuid.uuid4().hex[:8]}"
        body = json.dumps({"ClientId": stack.a["public_client_id"], "Username": user, "Password": PASSWORD, "UserAttributes": [{"Name": "email", "Value": f"{user}@example.com"}]})
        kind, resp = rt.invoke(rest_event("POST", "/", {"content-type": "application/x-amz-json-1.1", "x-amz-target": "AWSCognitoIdentityProviderService.SignUp"}, body, "198.51.100.7"))
        assert kind == "response" and resp["statusCode"] == 200, resp
        proc.send_signal(signal.SIGSTOP)  # the instance freezes once it has answered
        who = keyed_hash(stack, user)
        ev = eventually(lambda: [d for d in stack.details() if d.get("user") == who], timeout=10)[0]
        assert (ev["action"], ev["status"], ev["caller_ip"], ev["replication"]) == ("SignUp", 200, "198.51.100.7", "peer")
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait()
        rt.close()


def test_junk_sign_ups_do_not_use_up_a_domains_sign_up_budget(stack):
    """Issue 19 point 8: sign-ups the relay refuses as malformed (here: an unknown ClientId) are
    refused before the policy counts them, so an attacker cannot block a whole e-mail domain by
    spraying junk for it."""
    marker = f"marker-{uuid.uuid4().hex[:6]}.example"
    domain = f"target-{uuid.uuid4().hex[:6]}.example"
    stack.write_policy({"blocked_email_domains": ["blocked.example", marker],
                        "signups_per_email_domain_per_minute": 2})

    def active():
        u = f"u{uuid.uuid4().hex[:10]}"
        try:
            sign_up(stack, u, f"{u}@{marker}")
        except ClientError:
            return True
        return False

    eventually(active, timeout=15, what="the new policy is in force")
    for _ in range(5):
        u = f"j{uuid.uuid4().hex[:10]}"
        with pytest.raises(ClientError) as e:
            stack.idp.sign_up(ClientId="no-such-client", Username=u, Password=PASSWORD,
                              UserAttributes=[{"Name": "email", "Value": f"{u}@{domain}"}])
        assert e.value.response["Error"]["Code"] != "UserLambdaValidationException", "junk is not a policy refusal"
    real = f"r{uuid.uuid4().hex[:10]}"
    assert sign_up(stack, real, f"{real}@{domain}")["UserSub"], "the domain's budget is intact"
    stack.write_policy({"blocked_email_domains": ["blocked.example"]})
