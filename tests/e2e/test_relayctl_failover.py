"""`relayctl failover` / `failback` on the local stack (real proxies and replicators over two
strict moto regions, Route 53 health checks answered by probing the proxies' /health), each
failing step with its own exit code; and `relayctl status` reading the Lambda deployment's
EMF metrics back from CloudWatch (GetMetricData).

Run with `-s` to see the failover/failback transcripts."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import tempfile
import uuid

import pytest

from tests.e2e.test_failover import A, B, Stack, health, until
from tests.harness.relay import binary, start_replicator
from tests.harness.stack import client, latest_code

TRANSCRIPT = os.environ.get("RELAYCTL_TRANSCRIPT")


@pytest.fixture(scope="module")
def stack():
    s = Stack(tempfile.mkdtemp(prefix="relay-relayctl-"))
    yield s
    s.close()


def relayctl(s: Stack, *args: str, config: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([binary("relayctl"), "--config", config or s.config, *args], capture_output=True, text=True, timeout=300)


def show(title: str, out: subprocess.CompletedProcess) -> None:
    text = f"$ relayctl {title}\n{out.stdout}{out.stderr}(exit {out.returncode})\n"
    print("\n" + text)
    if TRANSCRIPT:
        with open(TRANSCRIPT, "a") as f:
            f.write(text + "\n")


def drain_value(s: Stack, side: dict) -> str:
    ssm = client("ssm", side["endpoint"], side["region"])
    try:
        return ssm.get_parameter(Name=side["drain_parameter"])["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return "absent"


def route53_status(s: Stack, hc_id: str) -> str:
    r53 = client("route53", s.route53, "us-east-1")
    return r53.get_health_check_status(HealthCheckId=hc_id)["HealthCheckObservations"][0]["StatusReport"]["Status"]


def hc(s: Stack, i: int) -> str:
    return s.deployment["regions"][i]["health_check_id"]


def clean(s: Stack) -> None:
    relayctl(s, "undrain", A)
    relayctl(s, "undrain", B)
    until(lambda: relayctl(s, "status").returncode == 0, timeout=60, interval=1)


def test_failover_then_failback_moves_traffic_and_route53_follows(stack: Stack):
    s = stack
    clean(s)
    before = drain_value(s, s.a)
    out = relayctl(s, "failover", "--dry-run")
    show("failover --dry-run", out)
    assert out.returncode == 0, out.stdout
    assert "DRY RUN" in out.stdout and "not run (dry run)" in out.stdout
    assert drain_value(s, s.a) == before and health(s.proxy_a) == 200, "a dry run changed something"

    out = relayctl(s, "failover")
    show("failover", out)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[7/7]" in out.stdout and f"failover done: {B} serves" in out.stdout
    assert drain_value(s, s.a) == "true"
    assert health(s.proxy_a) == 503 and health(s.proxy_b) == 200
    assert route53_status(s, hc(s, 0)).startswith("Failure") and route53_status(s, hc(s, 1)).startswith("Success")
    st = relayctl(s, "status")
    show("status", st)
    assert st.returncode == 3  # the primary is drained on purpose

    # A write on the standby while it serves reaches the primary before the failback.
    idp_b = s.idp(s.proxy_b, B)
    u = f"fb-{uuid.uuid4().hex[:8]}@example.com"
    idp_b.sign_up(ClientId=s.a["public_client_id"], Username=u, Password="Standby-Pass3!", UserAttributes=[{"Name": "email", "Value": u}])
    idp_b.confirm_sign_up(ClientId=s.a["public_client_id"], Username=u, ConfirmationCode=latest_code(s.moto_b.endpoint, s.b["pool_id"], u, "SIGN_UP"))

    out = relayctl(s, "failback", "--dry-run")
    show("failback --dry-run", out)
    assert out.returncode in (0, 11), out.stdout  # 11 while the sign-up is still on its way to A
    out = relayctl(s, "failback")
    show("failback", out)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"failback done: {A} serves" in out.stdout
    assert drain_value(s, s.a) == "false" and health(s.proxy_a) == 200
    assert route53_status(s, hc(s, 0)).startswith("Success")
    adm_a = client("cognito-idp", s.a["endpoint"], A)
    assert adm_a.list_users(UserPoolId=s.a["pool_id"], Filter=f'email = "{u}"')["Users"], "the standby's sign-up is not on the primary"
    until(lambda: relayctl(s, "status").returncode == 0, timeout=30, interval=1)
    show("status", relayctl(s, "status"))

    js = json.loads(relayctl(s, "--json", "failover", "--dry-run").stdout)
    assert js["exit_code"] == 0 and [st["outcome"] for st in js["steps"]] == ["ok"] * 4 + ["planned"] * 3


def test_failover_refuses_an_unhealthy_standby_and_changes_nothing(stack: Stack):
    s = stack
    clean(s)
    relayctl(s, "drain", B)
    until(lambda: health(s.proxy_b) == 503, timeout=20)
    try:
        out = relayctl(s, "failover")
        show("failover  (standby drained)", out)
        assert out.returncode == 10, out.stdout
        assert "[1/7]" in out.stdout and "[2/7]" not in out.stdout
        assert drain_value(s, s.a) != "true" and health(s.proxy_a) == 200
        assert relayctl(s, "failover", "--dry-run").returncode == 10
    finally:
        relayctl(s, "undrain", B)


def test_failover_refuses_a_backlog_unless_acknowledged(stack: Stack):
    s = stack
    clean(s)
    s.rep_b.stop()  # nothing applies B's inbound queue now
    sqs = client("sqs", s.b["endpoint"], B)
    try:
        sqs.send_message(QueueUrl=s.b["inbound_queue_url"], MessageBody="{}", MessageGroupId="g", MessageDeduplicationId=uuid.uuid4().hex)
        out = relayctl(s, "failover", "--catch-up", "2")
        show("failover --catch-up 2  (standby backlog)", out)
        assert out.returncode == 11, out.stdout
        assert "1 event(s) waiting" in out.stdout
        assert drain_value(s, s.a) != "true"
        out = relayctl(s, "failover", "--dry-run", "--allow-backlog")
        assert out.returncode == 0 and "ACKNOWLEDGED" in out.stdout, out.stdout
    finally:
        sqs.purge_queue(QueueUrl=s.b["inbound_queue_url"])
        s.rep_b = start_replicator(s.b, os.path.join(s.workdir, f"replicator-b-{uuid.uuid4().hex[:4]}.log"))


def test_failover_refuses_a_dlq_unless_acknowledged(stack: Stack):
    s = stack
    clean(s)
    sqs = client("sqs", s.b["endpoint"], B)
    sqs.send_message(QueueUrl=s.b["dlq_url"], MessageBody="{}", MessageGroupId="g", MessageDeduplicationId=uuid.uuid4().hex)
    try:
        out = relayctl(s, "failover", "--dry-run")
        show("failover --dry-run  (standby DLQ)", out)
        assert out.returncode == 12, out.stdout
        assert relayctl(s, "failover", "--dry-run", "--allow-dlq").returncode == 0
    finally:
        sqs.purge_queue(QueueUrl=s.b["dlq_url"])


def test_failover_stops_when_the_switch_cannot_be_set(stack: Stack):
    s = stack
    clean(s)
    # SSM refuses writes under /aws/ (AccessDenied), like a role without PutParameter.
    cfg = s.variant("no-ssm", drain_parameter="/aws/cognito-relay/drain")
    out = relayctl(s, "failover", config=cfg)
    show("failover  (SSM refuses the switch)", out)
    assert out.returncode == 14, out.stdout
    assert health(s.proxy_a) == 200


def test_failover_stops_when_the_proxies_do_not_take_the_switch(stack: Stack):
    s = stack
    clean(s)
    # The proxies read another parameter than the one relayctl sets.
    cfg = s.variant("other-param", drain_parameter="/relay-test/not-read-by-the-proxies")
    out = relayctl(s, "failover", "--timeout", "3", config=cfg)
    show("failover --timeout 3  (proxies read another parameter)", out)
    assert out.returncode == 15, out.stdout
    assert health(s.proxy_a) == 200


def test_failover_stops_when_route53_does_not_flip(stack: Stack):
    s = stack
    clean(s)
    # The primary's entry names the standby's health check: Route 53 keeps seeing it healthy.
    cfg = s.variant("wrong-check", health_check_id=hc(s, 1))
    try:
        out = relayctl(s, "failover", "--timeout", "3", config=cfg)
        show("failover --timeout 3  (Route 53 does not flip)", out)
        assert out.returncode == 16, out.stdout
        assert health(s.proxy_a) == 503  # the switch stays set, as --help says
    finally:
        relayctl(s, "undrain", A)


def emf(cw, name: str, unit: str, action: str, values: list[float]) -> None:
    """Datapoints as one EMF line per value would produce them: dimension sets [Action] and []."""
    now = datetime.datetime.now(datetime.timezone.utc)
    for dims in ([{"Name": "Action", "Value": action}], []):
        for i in range(0, len(values), 150):
            cw.put_metric_data(Namespace="CognitoRelay", MetricData=[
                {"MetricName": name, "Dimensions": dims, "Value": float(v), "Unit": unit, "Timestamp": now} for v in values[i:i + 150]])


def test_status_reads_the_lambda_metrics_from_cloudwatch(stack: Stack):
    """Runs last in this module: the datapoints stay in B's CloudWatch for the window."""
    s = stack
    clean(s)
    cw = client("cloudwatch", s.b["endpoint"], B)
    emf(cw, "ReplicationLagMs", "Milliseconds", "SignUp", [10.0 * i for i in range(1, 101)])  # p99 = 990
    emf(cw, "ReplicationApplied", "Count", "SignUp", [1] * 100)
    emf(cw, "ReplicationFailed", "Count", "SignUp", [0] * 99 + [1])
    emf(cw, "ReplicationLost", "Count", "SignUp", [1, 0, 1, 0, 0])
    emf(cw, "ReplicationFallback", "Count", "SignUp", [1, 1, 1, 0, 0])
    emf(cw, "CognitoThrottled", "Count", "InitiateAuth", [1] * 5 + [0] * 20)
    emf(cw, "ApplyRetries", "Count", "AdminCreateUser", [1] * 7)
    emf(cw, "BridgeSrpSignIns", "Count", "InitiateAuth", [1] * 4)
    emf(cw, "BridgeRefusals", "Count", "InitiateAuth", [1])
    emf(cw, "BridgeRefreshes", "Count", "GetTokensFromRefreshToken", [1] * 3)

    out = relayctl(s, "--json", "status")
    assert out.returncode == 3, out.stdout  # 2 lost events need attention
    by = {r["region"]: r for r in json.loads(out.stdout)["regions"]}
    m = by[B]["cloudwatch"]
    assert by[B]["metrics_source"] == "cloudwatch"
    assert m["lag_p99_ms"] == 990 and by[B]["lag_p99_ms"] == 990
    assert (m["lost"], by[B]["lost"]) == (2, 2)  # each EMF line counted once, not per dimension set
    assert m["fallback_sent"] == 3 and m["throttled"] == 5 and m["apply_retries"] == 7 and m["apply_failed"] == 1
    assert m["bridge_srp_sign_ins"] == 4 and m["bridge_refusals"] == 1 and m["bridge_refreshes"] == 3
    assert m["fallback_forwarded"] is None  # no fallback event was forwarded in this window
    assert by[A]["cloudwatch"]["lost"] is None and by[A]["cloudwatch"]["lag_p99_ms"] is None

    text = relayctl(s, "status")
    show("status  (Lambda deployment: CloudWatch)", text)
    assert "CloudWatch (namespace CognitoRelay, last 15 min" in text.stdout
    assert f"{B} bridge: 4 SRP sign-in(s), 3 session(s) continued, 1 refusal(s)" in text.stdout
    cw_table = text.stdout.split("CloudWatch (namespace", 1)[1]
    row = next(l for l in cw_table.splitlines() if l.startswith(B))
    assert row.split()[1:5] == ["990", "2", "3", "-"]

    # The failover preflight reads the same lag: over the threshold it stops (exit 13).
    out = relayctl(s, "failover", "--dry-run", "--max-lag-ms", "500")
    show("failover --dry-run --max-lag-ms 500  (lag from CloudWatch)", out)
    assert out.returncode == 13 and "lag p99 990 ms > 500 ms (CloudWatch, last 15 min)" in out.stdout, out.stdout
    assert relayctl(s, "failover", "--dry-run", "--max-lag-ms", "1000").returncode == 0
