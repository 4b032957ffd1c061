"""The real Lambda binaries end to end, through a fake Lambda Runtime API: the proxy answering
API Gateway REST events (stage in the path), and the replicator answering SQS batches with
partial batch failures. Also checks on the wire what the proxy sends upstream."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import tempfile
import uuid

import pytest

from tests.harness.capture import Capture
from tests.harness.events import open_event, seal_event
from tests.harness.fake_lambda import FakeRuntime, rest_event
from tests.harness.relay import binary, proxy_env, replicator_env, start_proxy
from tests.harness.stack import app_client, client, free_port, latest_code, provision_pair, start_strict_moto, stop_strict_moto, strict_get, strict_post

T = "AWSCognitoIdentityProviderService."
HEADERS = {"content-type": "application/x-amz-json-1.1"}


@pytest.fixture(scope="module")
def pair():
    a_srv, b_srv = start_strict_moto(free_port()), start_strict_moto(free_port())
    a, b = provision_pair(a_srv.endpoint, "eu-west-1", b_srv.endpoint, "eu-central-1", "username")
    yield a, b
    stop_strict_moto(a_srv)
    stop_strict_moto(b_srv)


def run_lambda(name: str, env: dict, runtime: FakeRuntime, log_path: str) -> subprocess.Popen:
    env = {**env, **runtime.env(name)}
    return subprocess.Popen([binary(name)], env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)


def test_proxy_lambda_serves_api_gateway_events(pair, tmp_path):
    a, b = pair
    rt = FakeRuntime()
    env = proxy_env(a, b, 0, AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH="true")
    env.pop("RELAY_LISTEN")
    proc = run_lambda("proxy", env, rt, str(tmp_path / "proxy-lambda.log"))
    try:
        user = f"lam{uuid.uuid4().hex[:8]}"
        body = json.dumps({"ClientId": a["public_client_id"], "Username": user, "Password": "Lambda-Pass1!", "UserAttributes": [{"Name": "email", "Value": f"{user}@example.com"}]})
        kind, resp = rt.invoke(rest_event("POST", "/", {**HEADERS, "x-amz-target": T + "SignUp"}, body, "198.51.100.7"))
        assert kind == "response", resp
        assert resp["statusCode"] == 200, resp
        assert json.loads(resp["body"])["UserSub"]
        # The strict emulator accepted the hash: the user exists, with a real code sent.
        assert latest_code(a["endpoint"], a["pool_id"], user, "SIGN_UP")
        # The mutation was enqueued for region B before the answer.
        msgs = client("sqs", b["endpoint"], b["region"]).receive_message(QueueUrl=b["inbound_queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        assert any(json.loads(m["Body"])["action"] == "SignUp" for m in msgs)

        kind, resp = rt.invoke(rest_event("POST", "/", {**HEADERS, "x-amz-target": T + "AdminDeleteUser"}, "{}", "198.51.100.7"))
        assert resp["statusCode"] == 400
        headers = {**{k.lower(): v[0] for k, v in (resp.get("multiValueHeaders") or {}).items()}, **{k.lower(): v for k, v in (resp.get("headers") or {}).items()}}
        assert headers["x-amzn-errortype"] == "NotAuthorizedException"

        kind, resp = rt.invoke(rest_event("GET", "/health", {}, None, "198.51.100.7"))
        assert resp["statusCode"] == 200 and json.loads(resp["body"])["healthy"] is True
        logs = open(tmp_path / "proxy-lambda.log").read()
        assert '"_aws"' in logs and '"CloudWatchMetrics"' in logs, "EMF metric lines"
        assert "Lambda-Pass1!" not in logs
    finally:
        proc.kill()
        rt.close()


def test_caller_ip_and_hash_on_the_wire(pair, tmp_path):
    """Lambda: the API Gateway source IP; standalone: the trusted X-Forwarded-For hop. The
    client's own SecretHash is replaced and the ClientId mapped."""
    a, _ = pair
    cap = Capture()
    rt = FakeRuntime()
    env = proxy_env(a, None, 0, RELAY_COGNITO_ENDPOINT=cap.url, AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH="true")
    env.pop("RELAY_LISTEN")
    proc = run_lambda("proxy", env, rt, str(tmp_path / "lambda.log"))
    standalone = start_proxy(a, None, str(tmp_path / "sa.log"), RELAY_COGNITO_ENDPOINT=cap.url, RELAY_TRUSTED_PROXIES="127.0.0.1/32")
    untrusting = start_proxy(a, None, str(tmp_path / "sa2.log"), RELAY_COGNITO_ENDPOINT=cap.url)
    try:
        body = json.dumps({"ClientId": a["public_client_id"], "Username": "ip-user", "SecretHash": "forged", "UserContextData": {"EncodedData": "fingerprint", "IpAddress": "6.6.6.6"}})
        kind, resp = rt.invoke(rest_event("POST", "/", {**HEADERS, "x-amz-target": T + "ForgotPassword"}, body, "198.51.100.7"))
        assert resp["statusCode"] == 200
        import urllib.request
        req = urllib.request.Request(standalone.url + "/", data=body.encode(), method="POST", headers={**HEADERS, "X-Amz-Target": T + "ForgotPassword", "X-Forwarded-For": "203.0.113.50, 10.0.0.9"})
        urllib.request.urlopen(req, timeout=10).read()
        # A proxy that trusts no one ignores the header: the socket peer is the caller.
        req = urllib.request.Request(untrusting.url + "/", data=body.encode(), method="POST", headers={**HEADERS, "X-Amz-Target": T + "ForgotPassword", "X-Forwarded-For": "203.0.113.50"})
        urllib.request.urlopen(req, timeout=10).read()
        sent = [r["body"] for r in cap.requests if r["target"] == T + "ForgotPassword"]
        assert [s["UserContextData"]["IpAddress"] for s in sent] == ["198.51.100.7", "10.0.0.9", "127.0.0.1"], "never the client-sent 6.6.6.6"
        import hmac, hashlib
        want = base64.b64encode(hmac.new(a["relay_client_secret"].encode(), ("ip-user" + a["relay_client_id"]).encode(), hashlib.sha256).digest()).decode()
        for s in sent:
            assert s["ClientId"] == a["relay_client_id"]
            assert s["SecretHash"] == want
            assert s["UserContextData"]["EncodedData"] == "fingerprint"
    finally:
        proc.kill()
        standalone.stop()
        untrusting.stop()
        rt.close()
        cap.close()


def test_replicator_lambda_reports_partial_batch_failures(pair, tmp_path):
    a, b = pair
    # A real event: sign up through A's proxy (standalone) and take the event off B's queue.
    proxy = start_proxy(a, b, str(tmp_path / "proxy.log"))
    sqs_b = client("sqs", b["endpoint"], b["region"])
    # Empty B's inbound queue of earlier tests' events.
    while sqs_b.receive_message(QueueUrl=b["inbound_queue_url"], MaxNumberOfMessages=10).get("Messages"):
        sqs_b.purge_queue(QueueUrl=b["inbound_queue_url"])
    idp = app_client(proxy.url, "eu-west-1")
    user = f"rep{uuid.uuid4().hex[:8]}"
    idp.sign_up(ClientId=a["public_client_id"], Username=user, Password="Replic-Pass1!", UserAttributes=[{"Name": "email", "Value": f"{user}@example.com"}])
    proxy.stop()
    msgs = sqs_b.receive_message(QueueUrl=b["inbound_queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]).get("Messages", [])
    signup = next(m for m in msgs if open_event(m["Body"], a["replication_key_b64"])["user_key"] == user)
    # A genuine (sealed) confirmation of a user B does not have: retryable.
    orphan = open_event(signup["Body"], a["replication_key_b64"])
    orphan.update(id=str(uuid.uuid4()), user_key="nobody-" + user, action="ConfirmSignUp", change={"op": "confirm"})

    def record(mid, body, group):
        return {"messageId": mid, "receiptHandle": "rh", "body": body, "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": group, "SentTimestamp": "0"},
                "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:cognito-relay-inbound.fifo", "awsRegion": "eu-central-1"}

    rt = FakeRuntime()
    env = replicator_env(b)
    env.pop("RELAY_INBOUND_QUEUE_URL")
    proc = run_lambda("replicator", env, rt, str(tmp_path / "replicator-lambda.log"))
    try:
        batch = {"Records": [record("m-ok", signup["Body"], "g1"), record("m-poison", "garbage", "g2"), record("m-orphan", seal_event(orphan, a["replication_key_b64"]), "g3")]}
        kind, resp = rt.invoke(batch)
        assert kind == "response", resp
        failed = [f["itemIdentifier"] for f in resp["batchItemFailures"]]
        assert failed == ["m-orphan"], "only the retryable event is reported; poison went to the DLQ"
        u = client("cognito-idp", b["endpoint"], b["region"]).admin_get_user(UserPoolId=b["pool_id"], Username=user)
        assert u["Enabled"] is False
        dlq = sqs_b.receive_message(QueueUrl=b["dlq_url"], MessageAttributeNames=["All"], WaitTimeSeconds=1).get("Messages", [])
        assert dlq and dlq[0]["Body"] == "garbage" and dlq[0]["MessageAttributes"]["reason"]["StringValue"]
        logs = open(tmp_path / "replicator-lambda.log").read()
        assert "ReplicationLagMs" in logs and "Replic-Pass1!" not in logs
    finally:
        proc.kill()
        rt.close()


def test_replicator_lambda_forwards_the_fallback_queue_to_the_peer(pair, tmp_path):
    """Under Lambda the fallback queue is a second event source of the replicator, which moves
    its events to the peer's inbound queue (in order per user; failures are retried by SQS)."""
    a, b = pair
    sqs_a = client("sqs", a["endpoint"], a["region"])
    while sqs_a.receive_message(QueueUrl=a["inbound_queue_url"], MaxNumberOfMessages=10).get("Messages"):
        sqs_a.purge_queue(QueueUrl=a["inbound_queue_url"])
    # A real event from B's proxy for A: take it off A's queue as if it had gone to B's fallback queue.
    proxy = start_proxy(b, a, str(tmp_path / "proxy-b.log"))
    idp = app_client(proxy.url, "eu-central-1")
    user = f"fb{uuid.uuid4().hex[:8]}"
    idp.sign_up(ClientId=a["public_client_id"], Username=user, Password="Fallbk-Pass1!", UserAttributes=[{"Name": "email", "Value": f"{user}@example.com"}])
    proxy.stop()
    msg = sqs_a.receive_message(QueueUrl=a["inbound_queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"])["Messages"][0]
    sqs_a.delete_message(QueueUrl=a["inbound_queue_url"], ReceiptHandle=msg["ReceiptHandle"])
    event_id = json.loads(msg["Body"])["id"]

    def rec(mid, body):
        return {"messageId": mid, "receiptHandle": "rh", "body": body, "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": "g", "SentTimestamp": "0"},
                "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:cognito-relay-fallback.fifo", "awsRegion": "eu-central-1"}

    def lambda_env(peer_endpoint):
        env = replicator_env(b, RELAY_FALLBACK_QUEUE_URL=b["fallback_queue_url"], RELAY_PEER_REGION=a["region"],
                             RELAY_PEER_QUEUE_URL=a["inbound_queue_url"], RELAY_PEER_AWS_ENDPOINT=peer_endpoint)
        env.pop("RELAY_INBOUND_QUEUE_URL")
        return env

    # Peer unreachable: both records of the user's group are reported failed (SQS keeps them).
    rt = FakeRuntime()
    proc = run_lambda("replicator", lambda_env(f"http://127.0.0.1:{free_port()}"), rt, str(tmp_path / "fwd-down.log"))
    try:
        kind, resp = rt.invoke({"Records": [rec("m1", msg["Body"]), rec("m2", msg["Body"])]})
        assert sorted(f["itemIdentifier"] for f in resp["batchItemFailures"]) == ["m1", "m2"]
    finally:
        proc.kill()
        rt.close()
    # Peer reachable: forwarded with the event id as dedup id.
    rt = FakeRuntime()
    proc = run_lambda("replicator", lambda_env(a["endpoint"]), rt, str(tmp_path / "fwd-up.log"))
    try:
        kind, resp = rt.invoke({"Records": [rec("m1", msg["Body"])]})
        assert resp["batchItemFailures"] == []
        got = sqs_a.receive_message(QueueUrl=a["inbound_queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]).get("Messages", [])
        assert [json.loads(m["Body"])["id"] for m in got] == [event_id]
        assert got[0]["Attributes"]["MessageDeduplicationId"] == event_id
        sqs_a.delete_message(QueueUrl=a["inbound_queue_url"], ReceiptHandle=got[0]["ReceiptHandle"])

        # A send fails in the middle of a two-user batch: that record and the later ones of its
        # user are reported (SQS delivers them again, in order); the other user's all go through.
        def event(user, n):
            e = open_event(msg["Body"], a["replication_key_b64"])
            e.update(id=f"{user}-{n}-{uuid.uuid4().hex[:6]}", user_key=user, origin_time_ms=e["origin_time_ms"] + n)
            return e
        u1, u2 = f"lo1{uuid.uuid4().hex[:6]}", f"lo2{uuid.uuid4().hex[:6]}"
        events = [event(u, n) for n in (1, 2, 3) for u in (u1, u2)]  # u1 u2 u1 u2 u1 u2
        g2 = hashlib.sha256(u2.encode()).hexdigest()[:32]  # u2's FIFO group on the peer queue
        strict_post(a["endpoint"], "sqs_faults", {"group": g2, "skip": 1, "count": 1})
        records = []
        for e in events:
            r = rec(e["id"], seal_event(e, a["replication_key_b64"]))
            r["attributes"]["MessageGroupId"] = e["user_key"]
            records.append(r)
        kind, resp = rt.invoke({"Records": records})
        assert sorted(f["itemIdentifier"] for f in resp["batchItemFailures"]) == sorted([events[3]["id"], events[5]["id"]])
        assert strict_get(a["endpoint"], "sqs_faults")["failed"] == {g2: 1}
        got = sqs_a.receive_message(QueueUrl=a["inbound_queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        ids = [json.loads(m["Body"])["id"] for m in got]
        assert [i for i in ids if i.startswith(u1)] == [events[0]["id"], events[2]["id"], events[4]["id"]], "u1 complete and in order"
        assert [i for i in ids if i.startswith(u2)] == [events[1]["id"]], "nothing of u2 after its failed send"
        strict_post(a["endpoint"], "sqs_faults", method="DELETE")
    finally:
        proc.kill()
        rt.close()
