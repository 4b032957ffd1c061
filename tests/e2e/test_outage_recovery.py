"""Self-healing under outage, with the real binaries.

1. Every process started while its region is cut off (the outage relay is down) keeps running,
   says what it waits for (/health, /metrics, relayctl status), and works again within seconds of
   the network's return, with no restart: the standalone proxy and replicator, and both Lambdas.
2. The fallback forwarder keeps each user's order when one send fails in the middle of a
   multi-user batch, and releases the rest of the batch at once.
"""

from __future__ import annotations

from tests.harness.wait import eventually

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.harness.fake_lambda import FakeRuntime, rest_event
from tests.harness.relay import ROOT, binary, proxy_env, replicator_env, start_proxy, start_replicator, wait_http
from tests.harness.stack import app_client, client, free_port, latest_code, provision_pair, start_strict_moto, stop_strict_moto, strict_get, strict_post

A, B = "eu-west-1", "eu-central-1"
OUTAGE = os.path.join(ROOT, "tests", "harness", "outage.py")
PASSWORD = "Outage-Pass1!"
T = "AWSCognitoIdentityProviderService."


class Net:
    """A region's network: the outage relay in front of one emulator."""

    def __init__(self, target_endpoint: str):
        self.port = free_port()
        self.target = target_endpoint.rsplit(":", 1)[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.p = None

    def up(self) -> None:
        self.p = subprocess.Popen([sys.executable, OUTAGE, str(self.port), self.target])
        wait_http(self.url + "/_strict/health", ok=(200,))

    def down(self) -> None:
        if self.p and self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def until(fn, timeout: float, interval: float = 0.1):
    return eventually(fn, timeout, interval)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def user_exists(side: dict, username: str) -> bool:
    try:
        client("cognito-idp", side["direct"], side["region"]).admin_get_user(UserPoolId=side["pool_id"], Username=username)
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] != "UserNotFoundException":
            raise
        return False


def test_processes_started_during_an_outage_wait_and_recover_without_a_restart(tmp_path):
    moto_a, moto_b = start_strict_moto(free_port()), start_strict_moto(free_port())
    net_a = Net(moto_a.endpoint)
    net_a.up()
    a, b = provision_pair(net_a.url, A, moto_b.endpoint, B, "username")
    a["direct"], b["direct"] = moto_a.endpoint, moto_b.endpoint
    procs: list = []
    runtimes: list = []
    try:
        # B is healthy; its peer (A's inbound queue) sits behind A's network.
        proxy_b = start_proxy(b, a, str(tmp_path / "proxy-b.log"))
        procs.append(proxy_b)

        # Region A is cut off. Everything of A starts now.
        net_a.down()
        metrics = f"127.0.0.1:{free_port()}"
        rep_a = start_replicator(a, str(tmp_path / "replicator-a.log"), RELAY_METRICS_LISTEN=metrics)
        procs.append(rep_a)
        proxy_a = start_proxy(a, b, str(tmp_path / "proxy-a.log"))
        procs.append(proxy_a)
        # The Lambdas: init must not fail (that would cost a cold start per invocation).
        rt_rep, rt_proxy = FakeRuntime(), FakeRuntime()
        runtimes += [rt_rep, rt_proxy]
        env = {**replicator_env(a), **rt_rep.env("replicator")}
        env.pop("RELAY_INBOUND_QUEUE_URL")
        started = time.monotonic()
        lam_rep = subprocess.Popen([binary("replicator")], env=env, stdout=open(tmp_path / "replicator-lambda.log", "wb"), stderr=subprocess.STDOUT)
        env = {**proxy_env(a, b, 0, AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH="true"), **rt_proxy.env("proxy")}
        env.pop("RELAY_LISTEN")
        lam_proxy = subprocess.Popen([binary("proxy")], env=env, stdout=open(tmp_path / "proxy-lambda.log", "wb"), stderr=subprocess.STDOUT)
        until(lambda: rt_rep.first_poll_at and rt_proxy.first_poll_at, timeout=15)
        print(f"\nLambda init during the outage: replicator {rt_rep.first_poll_at - started:.2f} s, proxy {rt_proxy.first_poll_at - started:.2f} s (to the first /next)")
        assert rt_rep.init_error is None and rt_proxy.init_error is None

        # The standalone replicator waits, and says so on /metrics.
        waiting_key = 'relay_waiting_since_seconds{dependency="replication key (Secrets Manager)"}'
        until(lambda: waiting_key in get(f"http://{metrics}/metrics")[1], timeout=10)
        # The proxy answers Cognito-shaped 503s, and /health says why.
        status, body = get(proxy_a.url + "/health")
        health = json.loads(body)
        assert status == 503 and "waiting for secrets (Secrets Manager) since" in health["reason"], health
        assert "secrets (Secrets Manager)" in [w["dependency"] for w in health["waiting"]]
        with pytest.raises(ClientError) as e:
            app_client(proxy_a.url, A).sign_up(ClientId=a["public_client_id"], Username="nobody", Password=PASSWORD)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert e.value.response["Error"]["Code"] == "ServiceUnavailableException"
        assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ServiceUnavailableException"
        kind, resp = rt_proxy.invoke(rest_event("GET", "/health", {}, None, "198.51.100.7"))
        assert resp["statusCode"] == 503 and "waiting for secrets" in json.loads(resp["body"])["reason"]
        # relayctl tells a recovering process from a dead one.
        cfg = tmp_path / "relay.json"
        cfg.write_text(json.dumps({"regions": [{"name": A, "role": "primary", "health_url": proxy_a.url + "/health", "user_pool_id": a["pool_id"],
                                                 "inbound_queue_url": a["inbound_queue_url"], "dlq_url": a["dlq_url"], "drain_parameter": a["drain_parameter"],
                                                 "aws_endpoint": a["endpoint"], "replicator_metrics_url": f"http://{metrics}/metrics"}]}))
        out = subprocess.run([binary("relayctl"), "--config", str(cfg), "status"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 3, out.stderr
        assert f"{A} proxy: waiting for secrets (Secrets Manager) since " in out.stdout, out.stdout
        assert f"{A} replicator: waiting for replication key (Secrets Manager) since " in out.stdout, out.stdout

        # Meanwhile B takes a sign-up; its event for A waits in B's fallback queue.
        u1 = f"out{uuid.uuid4().hex[:8]}"
        app_client(proxy_b.url, B).sign_up(ClientId=a["public_client_id"], Username=u1, Password=PASSWORD, UserAttributes=[{"Name": "email", "Value": f"{u1}@example.com"}])
        for p in (rep_a, proxy_a):
            assert p.p.poll() is None, f"{p.name} exited with {p.p.returncode} during the outage:\n{p.logs()[-2000:]}"
        assert lam_rep.poll() is None and lam_proxy.poll() is None

        # The network returns.
        net_a.up()
        t0 = time.monotonic()
        until(lambda: get(proxy_a.url + "/health")[0] == 200, timeout=15)
        t_proxy = time.monotonic() - t0
        u2 = f"out{uuid.uuid4().hex[:8]}"
        app_client(proxy_a.url, A).sign_up(ClientId=a["public_client_id"], Username=u2, Password=PASSWORD, UserAttributes=[{"Name": "email", "Value": f"{u2}@example.com"}])
        until(lambda: user_exists(a, u1), timeout=20, interval=0.2)
        t_rep = time.monotonic() - t0
        until(lambda: "relay_waiting_dependencies 0" in get(f"http://{metrics}/metrics")[1], timeout=10)
        # The Lambdas recover on their next invocations.
        body = json.dumps({"ClientId": a["public_client_id"], "Username": f"lam{uuid.uuid4().hex[:8]}", "Password": PASSWORD})
        kind, resp = rt_proxy.invoke(rest_event("POST", "/", {"content-type": "application/x-amz-json-1.1", "x-amz-target": T + "SignUp"}, body, "198.51.100.7"))
        assert resp["statusCode"] == 200, resp
        t_lambda_proxy = time.monotonic() - t0
        record = {"messageId": "poison", "receiptHandle": "rh", "body": "not an event", "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": "g", "SentTimestamp": "0"},
                  "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": f"arn:aws:sqs:{A}:123456789012:cognito-relay-inbound.fifo", "awsRegion": A}
        kind, resp = rt_rep.invoke({"Records": [record]})
        assert kind == "response" and resp["batchItemFailures"] == [], resp
        t_lambda_rep = time.monotonic() - t0
        print(f"after the network returned: proxy /health 200 in {t_proxy:.2f} s; B's fallback event applied on A by the "
              f"replicator in {t_rep:.2f} s; proxy Lambda served at {t_lambda_proxy:.2f} s, replicator Lambda at {t_lambda_rep:.2f} s")
        assert t_proxy < 5, "the proxy retries its secrets at most 2 s apart"
        assert t_rep < 12, "B's forwarder retries at most 5 s apart, A's replicator its key and queue at most 2 s apart"
        # Nobody restarted anything.
        for p in (rep_a, proxy_a):
            assert p.p.poll() is None, f"{p.name} exited"
        assert lam_rep.poll() is None and lam_proxy.poll() is None
        for lam in (lam_rep, lam_proxy):
            lam.kill()
    finally:
        for p in procs:
            p.stop()
        for rt in runtimes:
            rt.close()
        net_a.down()
        stop_strict_moto(moto_a)
        stop_strict_moto(moto_b)


def group_of(user_key: str) -> str:
    """The FIFO group of a user's events (replication::event::group_id_for)."""
    return hashlib.sha256(user_key.lower().encode()).hexdigest()[:32]


def test_fallback_forwarding_keeps_each_users_order_past_a_failed_send(tmp_path):
    moto_a, moto_b = start_strict_moto(free_port()), start_strict_moto(free_port())
    a, b = provision_pair(moto_a.endpoint, A, moto_b.endpoint, B, "username")
    net_b = Net(moto_b.endpoint)  # A's proxy reaches B's queue through this; down for now
    proxy = None
    try:
        proxy = start_proxy(a, b, str(tmp_path / "proxy-a.log"), RELAY_PEER_AWS_ENDPOINT=net_b.url)
        idp = app_client(proxy.url, A)
        users = [f"ord{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
        # Four events per user, interleaved across users: the fallback queue holds
        # u0 u1 u2 u0 u1 u2 ... so one receive of 10 holds every user's events.
        for u in users:
            idp.sign_up(ClientId=a["public_client_id"], Username=u, Password=PASSWORD, UserAttributes=[{"Name": "email", "Value": f"{u}@example.com"}])
        for u in users:
            idp.confirm_sign_up(ClientId=a["public_client_id"], Username=u, ConfirmationCode=latest_code(a["endpoint"], a["pool_id"], u, "SIGN_UP"))
        tokens = {u: idp.initiate_auth(ClientId=a["public_client_id"], AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": u, "PASSWORD": PASSWORD})["AuthenticationResult"]["AccessToken"] for u in users}
        for v in ("v1", "v2"):
            for u in users:
                idp.update_user_attributes(AccessToken=tokens[u], UserAttributes=[{"Name": "name", "Value": v}])
        assert "relay_replication_fallback_total 12" in get(proxy.url + "/metrics")[1]

        # The second send of u1's group fails once (after its first went through).
        strict_post(moto_b.endpoint, "sqs_faults", {"group": group_of(users[1]), "skip": 1, "count": 1})
        net_b.up()
        t0 = time.monotonic()
        sqs_a = client("sqs", a["endpoint"], A)

        def fallback_empty():
            attrs = sqs_a.get_queue_attributes(QueueUrl=a["fallback_queue_url"], AttributeNames=["All"])["Attributes"]
            return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 0
        until(fallback_empty, timeout=25, interval=0.2)
        drained = time.monotonic() - t0
        print(f"\nfallback queue drained {drained:.2f} s after the peer returned (one send refused on the way)")
        assert strict_get(moto_b.endpoint, "sqs_faults")["failed"] == {group_of(users[1]): 1}, "the injected failure happened"
        # Released at once, not after the 30 s visibility timeout of the receive.
        assert drained < 20

        # B's inbound queue: every user's events, each user's in the order they happened.
        sqs_b = client("sqs", b["endpoint"], B)
        got: dict[str, list[dict]] = {}
        while True:
            msgs = sqs_b.receive_message(QueueUrl=b["inbound_queue_url"], MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
            if not msgs:
                break
            for m in msgs:
                got.setdefault(m["Attributes"]["MessageGroupId"], []).append(json.loads(m["Body"]))
                sqs_b.delete_message(QueueUrl=b["inbound_queue_url"], ReceiptHandle=m["ReceiptHandle"])
        assert set(got) == {group_of(u) for u in users}
        for u in users:
            events = got[group_of(u)]
            assert [e["action"] for e in events] == ["SignUp", "ConfirmSignUp", "UpdateUserAttributes", "UpdateUserAttributes"], (u, [e["action"] for e in events])
            times = [e["origin_time_ms"] for e in events]
            assert times == sorted(times) and len(set(e["id"] for e in events)) == 4, u
    finally:
        if proxy:
            proxy.stop()
        net_b.down()
        stop_strict_moto(moto_a)
        stop_strict_moto(moto_b)
