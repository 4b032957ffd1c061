"""Start strict moto servers and provision two emulated regions for cognito-relay.

    from tests.harness.stack import free_port, start_strict_moto, stop_strict_moto, provision_pair

    pa, pb = free_port(), free_port()
    sa, sb = start_strict_moto(pa), start_strict_moto(pb)
    a, b = provision_pair(f"http://127.0.0.1:{pa}", "eu-west-1",
                          f"http://127.0.0.1:{pb}", "eu-central-1", "email")
    ...
    stop_strict_moto(sa); stop_strict_moto(sb)
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any, NamedTuple

import boto3

HERE = os.path.dirname(os.path.abspath(__file__))
STRICT_MOTO = os.path.join(HERE, "strict_moto.py")

POOL_NAME = "cognito-relay"
RELAY_CLIENT_NAME = "relay"
PUBLIC_CLIENT_NAME = "public"
CLIENTS_SECRET_ID = "cognito-relay/clients"
REPLICATION_KEY_SECRET_ID = "cognito-relay/replication-key"
REFRESH_KEY_SECRET_ID = "cognito-relay/refresh-key"
BRIDGE_KEY_SECRET_ID = "cognito-relay/bridge-key"
STATE_TABLE = "cognito-relay-state"
LIMITS_TABLE = "cognito-relay-limits"
INBOUND_QUEUE = "cognito-relay-inbound.fifo"
DLQ_QUEUE = "cognito-relay-inbound-dlq.fifo"
FALLBACK_QUEUE = "cognito-relay-fallback.fifo"
DRAIN_PARAMETER = "/cognito-relay/drain"
ORIGIN_SUB_ATTRIBUTE = "custom:origin_sub"

AUTH_FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_AUTH"]
# The proxy's own (secret) client also mints bridged sign-ins through CUSTOM_AUTH.
RELAY_AUTH_FLOWS = AUTH_FLOWS + ["ALLOW_CUSTOM_AUTH"]

DUMMY_CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "aws_session_token": "testing",
}


class Pair(NamedTuple):
    """What provision_pair returns: one dict per region; unpacks as `a, b = pair`."""

    a: dict[str, Any]
    b: dict[str, Any]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(service: str, endpoint: str, region: str):
    return boto3.client(service, endpoint_url=endpoint, region_name=region, **DUMMY_CREDENTIALS)


def app_client(url: str, region: str):
    """A cognito-idp client as an app uses it against a proxy, without botocore's retries, so
    a caller sees exactly what the server answered."""
    from botocore.config import Config

    return boto3.client("cognito-idp", endpoint_url=url, region_name=region, **DUMMY_CREDENTIALS,
                        config=Config(retries={"total_max_attempts": 1}, read_timeout=15, connect_timeout=3))


def start_strict_moto(
    port: int, host: str = "127.0.0.1", timeout: float = 30.0, log_path: str | None = None
) -> subprocess.Popen:
    """Start strict_moto.py on host:port and wait until /_strict/health answers.

    stdout/stderr go to `log_path` (default: a temp file, kept as `proc.log_path`)."""
    if log_path is None:
        fd, log_path = tempfile.mkstemp(prefix=f"strict-moto-{port}-", suffix=".log")
        os.close(fd)
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, STRICT_MOTO, "--host", host, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    proc.log_path = log_path  # type: ignore[attr-defined]
    proc.endpoint = f"http://{host}:{port}"  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    url = f"http://{host}:{port}/_strict/health"
    while True:
        if proc.poll() is not None:
            with open(log_path, "rb") as f:
                tail = f.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"strict_moto exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200 and r.read() == b"ok":
                    return proc
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise TimeoutError(f"strict_moto on port {port} not healthy after {timeout}s")
        time.sleep(0.1)


def stop_strict_moto(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _schema() -> list[dict[str, Any]]:
    def standard(name: str) -> dict[str, Any]:
        return {"Name": name, "AttributeDataType": "String", "Mutable": True, "Required": False}

    return [
        standard("email"),
        standard("name"),
        standard("phone_number"),
        {
            "Name": ORIGIN_SUB_ATTRIBUTE.split(":", 1)[1],
            "AttributeDataType": "String",
            "Mutable": True,
            "StringAttributeConstraints": {"MinLength": "0", "MaxLength": "256"},
        },
    ]


def _create_pool(idp, kind: str) -> str:
    existing = idp.list_user_pools(MaxResults=60)["UserPools"]
    if any(p["Name"] == POOL_NAME for p in existing):
        raise RuntimeError(
            f"a user pool named {POOL_NAME!r} already exists on this server/region: "
            "provision_pair expects fresh servers (start new ones per test run and kind)"
        )
    kwargs: dict[str, Any] = {"PoolName": POOL_NAME, "Schema": _schema()}
    if kind == "email":
        kwargs["UsernameAttributes"] = ["email"]
        kwargs["AutoVerifiedAttributes"] = ["email"]
    return idp.create_user_pool(**kwargs)["UserPool"]["Id"]


def _create_client(idp, pool_id: str, name: str, with_secret: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "UserPoolId": pool_id,
        "ClientName": name,
        "GenerateSecret": with_secret,
        "ExplicitAuthFlows": RELAY_AUTH_FLOWS if with_secret else AUTH_FLOWS,
        "EnableTokenRevocation": True,
    }
    if with_secret:
        kwargs["EnablePropagateAdditionalUserContextData"] = True
    return idp.create_user_pool_client(**kwargs)["UserPoolClient"]


def _create_queues(sqs) -> tuple[str, str, str]:
    fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "false"}
    dlq_url = sqs.create_queue(QueueName=DLQ_QUEUE, Attributes=fifo)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    inbound_url = sqs.create_queue(
        QueueName=INBOUND_QUEUE,
        Attributes={
            **fifo,
            "VisibilityTimeout": "5",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 50}),
        },
    )["QueueUrl"]
    fallback_url = sqs.create_queue(QueueName=FALLBACK_QUEUE, Attributes=fifo)["QueueUrl"]
    return inbound_url, dlq_url, fallback_url


def provision_pair(
    endpoint_a: str, region_a: str, endpoint_b: str, region_b: str, kind: str
) -> Pair:
    """Create pools, app clients, secrets, queues and the drain switch in two regions.

    kind: "username" (plain usernames) or "email" (UsernameAttributes=["email"]).
    Returns Pair(a, b); each a dict with endpoint, region, pool_id, relay_client_id,
    relay_client_secret, public_client_id (region A's public client, same in both),
    clients_secret_id, replication_key_secret_id, inbound_queue_url, dlq_url,
    fallback_queue_url, drain_parameter, username_attributes ("" or "email"), plus kind,
    pool_name, origin_sub_attribute, replication_key_b64, refresh_key_secret_id,
    refresh_key_b64, bridge_key_secret_id, bridge_key_b64 (the bridge keyring, same key in
    both regions, `{"current":"b1","keys":{"b1":...}}`), state_table and limits_table
    (DynamoDB, per region), peer_pool_id and app_pool_id (A's pool: what apps are built with). The relay clients also allow CUSTOM_AUTH; the
    auth triggers are attached by `relay.start_auth_triggers` (they need the binary).
    Raises RuntimeError if a pool named "cognito-relay" already exists in a region."""
    if kind not in ("username", "email"):
        raise ValueError(f"kind must be 'username' or 'email', not {kind!r}")
    regions = [(endpoint_a, region_a), (endpoint_b, region_b)]
    idps = [client("cognito-idp", ep, rg) for ep, rg in regions]

    pools = [_create_pool(idp, kind) for idp in idps]
    relays = [_create_client(idp, pool, RELAY_CLIENT_NAME, True) for idp, pool in zip(idps, pools)]
    public = _create_client(idps[0], pools[0], PUBLIC_CLIENT_NAME, False)
    public_id = public["ClientId"]
    replication_key = base64.b64encode(secrets.token_bytes(32)).decode()
    refresh_key = base64.b64encode(secrets.token_bytes(32)).decode()
    bridge_key = base64.b64encode(secrets.token_bytes(32)).decode()

    out = []
    for (endpoint, region), pool_id, relay in zip(regions, pools, relays):
        sm = client("secretsmanager", endpoint, region)
        sm.create_secret(
            Name=CLIENTS_SECRET_ID,
            SecretString=json.dumps(
                {
                    "clients": [
                        {
                            "public_client_id": public_id,
                            "client_id": relay["ClientId"],
                            "client_secret": relay["ClientSecret"],
                        }
                    ]
                }
            ),
        )
        sm.create_secret(
            Name=REPLICATION_KEY_SECRET_ID,
            SecretString=json.dumps({"current": "k1", "keys": {"k1": replication_key}}),
        )
        sm.create_secret(
            Name=REFRESH_KEY_SECRET_ID,
            SecretString=json.dumps({"current": "r1", "keys": {"r1": refresh_key}}),
        )
        sm.create_secret(
            Name=BRIDGE_KEY_SECRET_ID,
            SecretString=json.dumps({"current": "b1", "keys": {"b1": bridge_key}}),
        )
        client("dynamodb", endpoint, region).create_table(
            TableName=STATE_TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client("dynamodb", endpoint, region).create_table(
            TableName=LIMITS_TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        inbound_url, dlq_url, fallback_url = _create_queues(client("sqs", endpoint, region))
        client("ssm", endpoint, region).put_parameter(
            Name=DRAIN_PARAMETER, Value="false", Type="String"
        )
        out.append(
            {
                "endpoint": endpoint,
                "region": region,
                "kind": kind,
                "pool_name": POOL_NAME,
                "pool_id": pool_id,
                "relay_client_id": relay["ClientId"],
                "relay_client_secret": relay["ClientSecret"],
                "public_client_id": public_id,
                "clients_secret_id": CLIENTS_SECRET_ID,
                "replication_key_secret_id": REPLICATION_KEY_SECRET_ID,
                "replication_key_b64": replication_key,
                "refresh_key_secret_id": REFRESH_KEY_SECRET_ID,
                "refresh_key_b64": refresh_key,
                "bridge_key_secret_id": BRIDGE_KEY_SECRET_ID,
                "bridge_key_b64": bridge_key,
                "state_table": STATE_TABLE,
                "limits_table": LIMITS_TABLE,
                "inbound_queue_url": inbound_url,
                "dlq_url": dlq_url,
                "fallback_queue_url": fallback_url,
                "drain_parameter": DRAIN_PARAMETER,
                "username_attributes": "email" if kind == "email" else "",
                "origin_sub_attribute": ORIGIN_SUB_ATTRIBUTE,
            }
        )
    out[0]["peer_pool_id"], out[1]["peer_pool_id"] = pools[1], pools[0]
    # The apps are built with region A's pool id: B's proxy bridges SRP sign-ins and sessions.
    out[0]["app_pool_id"] = out[1]["app_pool_id"] = pools[0]
    return Pair(out[0], out[1])


# -- small helpers for tests talking to a strict_moto server ----------------------------


def strict_get(endpoint: str, path: str) -> Any:
    with urllib.request.urlopen(f"{endpoint}/_strict/{path}", timeout=5) as r:
        return json.loads(r.read() or b"null")


def strict_post(endpoint: str, path: str, payload: Any = None, method: str = "POST") -> Any:
    data = json.dumps(payload if payload is not None else {}).encode()
    req = urllib.request.Request(
        f"{endpoint}/_strict/{path}", data=data, method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read() or b"null")


def mailbox(endpoint: str, pool_id: str | None = None, username: str | None = None) -> list[dict]:
    from urllib.parse import urlencode

    query = urlencode({k: v for k, v in (("pool_id", pool_id), ("username", username)) if v})
    return strict_get(endpoint, "mailbox" + (f"?{query}" if query else ""))


def latest_code(endpoint: str, pool_id: str, username: str, kind: str | None = None) -> str:
    """The newest code (or temporary password) sent to `username` (internal name or address)."""
    items = [m for m in mailbox(endpoint, pool_id, username) if kind is None or m["kind"] == kind]
    if not items:
        raise LookupError(f"no message for {username!r} in {pool_id} (kind={kind})")
    return items[-1]["code"]


def route53_health_check(endpoint: str, health_url: str) -> str:
    """Creates a Route 53 health check (in the emulator at `endpoint`) on a proxy's
    `/health`, like the global stack's, and returns its id. strict_moto answers
    GetHealthCheckStatus by probing that URL (see strict_moto.route53_get_health_check_status)."""
    from urllib.parse import urlsplit

    u = urlsplit(health_url)
    r53 = client("route53", endpoint, "us-east-1")
    hc = r53.create_health_check(
        CallerReference=f"relay-{secrets.token_hex(6)}",
        HealthCheckConfig={"IPAddress": u.hostname, "Port": u.port or 80, "Type": u.scheme.upper(),
                           "ResourcePath": u.path or "/", "RequestInterval": 10, "FailureThreshold": 3},
    )
    return hc["HealthCheck"]["Id"]
