"""Replication integrity end to end (issue "Replication integrity"): what a user, an attacker
with access to a queue, and an SRE would check.

- newest state wins: a stale duplicate (redelivered or redriven) never brings back an older
  password, and is counted `stale`;
- only events sealed by the peer, for this pool, are applied: forged, unsealed, retargeted and
  foreign events go to the DLQ with their reason and change nothing;
- no silent loss: a client that hangs up mid-request does not stop the replication; a token
  mutation whose user cannot be resolved is refused before anything changes;
- replays never invent state: the standby's verified flags equal the origin's;
- rotating the replication key (runbooks/secret-rotation.md section B) signs nobody out.

Real binaries against two strict moto servers (the `regions` fixture, both pool kinds)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import secrets as pysecrets
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.harness.chaos import fifo_order
from tests.harness.events import group_of, header_of, metric, open_event, seal_event
from tests.harness.relay import binary, start_proxy, start_replicator
from tests.harness.stack import client, free_port, latest_code, strict_get, strict_post

from .conftest import Regions, eventually
from .test_proxy import PASSWORD, error_code, new_user, password_auth, sign_up_and_confirm

P2, P3 = "Sec0nd-Passw0rd!2", "Th1rd-Passw0rd!3"


# -- helpers ---------------------------------------------------------------------------


def sqs(side):
    return client("sqs", side["endpoint"], side["region"])


def get_metrics(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        return r.read().decode()


def restart_replicator_b(regions, **extra: str) -> None:
    """(Re)starts B's replicator with its Prometheus endpoint on (`regions.rep_b_metrics`)."""
    if regions.rep_b.p.poll() is None:
        regions.rep_b.stop()
    port = free_port()
    regions.rep_b = start_replicator(regions.b, os.path.join(regions.workdir, f"replicator-b-{time.time():.3f}.log"),
                                     RELAY_METRICS_LISTEN=f"127.0.0.1:{port}", **extra)
    regions.rep_b_metrics = f"http://127.0.0.1:{port}"
    eventually(lambda: get_metrics(regions.rep_b_metrics) is not None, timeout=20)


def rep_b_count(regions, outcome: str, action: str | None = None) -> float:
    labels = {"outcome": outcome, **({"action": action} if action else {})}
    return metric(get_metrics(regions.rep_b_metrics), "relay_replication_events_total", **labels)


def can_sign_in(regions, proxy, region, username, password) -> bool:
    try:
        password_auth(regions, regions.client(proxy.url, region), username, password)
        return True
    except ClientError as e:
        if error_code(e) not in ("NotAuthorizedException", "UserNotFoundException", "UserNotConfirmedException"):
            raise  # only "no" means no: a throttled or failed call is not an answer
        return False


def on_b(regions, username, password) -> bool:
    return can_sign_in(regions, regions.proxy_b, regions.b["region"], username, password)


def user_on(regions, side, key) -> dict | None:
    try:
        u = regions.admin(side).admin_get_user(UserPoolId=side["pool_id"], Username=key)
    except ClientError as e:
        if error_code(e) == "UserNotFoundException":
            return None
        raise
    return {"Enabled": u["Enabled"], "UserStatus": u["UserStatus"], **{a["Name"]: a["Value"] for a in u["UserAttributes"]}}


def verified(u: dict | None) -> dict:
    return {k: v for k, v in (u or {}).items() if k.endswith("_verified")}


def confirmed_user(regions, password=PASSWORD):
    """A user signed up and confirmed through A's proxy, able to sign in on B; with A's access token."""
    idp = regions.client(regions.proxy_a.url)
    username, attrs = new_user(regions)
    sign_up_and_confirm(regions, idp, username, attrs, password=password)
    assert eventually(lambda: on_b(regions, username, password), timeout=30, interval=0.5)
    access = password_auth(regions, idp, username, password)["AuthenticationResult"]["AccessToken"]
    return idp, username, access


def change_password(idp, access, old, new) -> None:
    idp.change_password(AccessToken=access, PreviousPassword=old, ProposedPassword=new)


def take_group(regions, side, group: str, want: int, visibility: int = 1) -> list[dict]:
    """Receives (without deleting) `want` messages of one FIFO group from `side`'s inbound
    queue; others are made visible again at once. The taken ones come back after `visibility` s."""
    q = sqs(side)
    seen: dict[str, dict] = {}
    deadline = time.time() + 20
    while len(seen) < want and time.time() < deadline:
        for m in q.receive_message(QueueUrl=side["inbound_queue_url"], MaxNumberOfMessages=10, VisibilityTimeout=visibility,
                                   WaitTimeSeconds=1, AttributeNames=["All"]).get("Messages", []):
            if m["Attributes"]["MessageGroupId"] == group:
                seen[m["MessageId"]] = m
            else:
                q.change_message_visibility(QueueUrl=side["inbound_queue_url"], ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    assert len(seen) == want, f"expected {want} events of the user on the queue, saw {len(seen)}"
    return sorted(seen.values(), key=lambda m: (header_of(m["Body"])["origin_time_ms"], header_of(m["Body"])["id"]))


def captured_password_changes(regions, passwords: list[str]):
    """With B's replicator stopped, changes a confirmed user's password through A's proxy
    along `passwords` (the first is the current one) and copies the sealed bodies off B's
    queue (in order). B's replicator is restarted (metrics on) and B converges on the last."""
    idp, username, access = confirmed_user(regions, passwords[0])
    regions.rep_b.stop()
    try:
        for old, new in zip(passwords, passwords[1:]):
            change_password(idp, access, old, new)
        msgs = take_group(regions, regions.b, group_of(username), len(passwords) - 1)
    finally:
        restart_replicator_b(regions)
    assert all(header_of(m["Body"])["action"] == "ChangePassword" for m in msgs)
    assert eventually(lambda: on_b(regions, username, passwords[-1]), timeout=30, interval=0.5)
    return username, [m["Body"] for m in msgs]


def send_b(regions, body: str, group: str, dedup: str | None = None) -> None:
    sqs(regions.b).send_message(QueueUrl=regions.b["inbound_queue_url"], MessageBody=body, MessageGroupId=group,
                                MessageDeduplicationId=dedup or uuid.uuid4().hex)


def dlq_all(regions) -> list[dict]:
    """Every message on B's DLQ (read, then made visible again at once)."""
    q, url = sqs(regions.b), regions.b["dlq_url"]
    seen: dict[str, dict] = {}
    while True:
        got = q.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=10, MessageAttributeNames=["All"],
                                WaitTimeSeconds=0).get("Messages", [])
        if not got:
            break
        for m in got:
            seen[m["MessageId"]] = m
    for m in seen.values():
        q.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    return list(seen.values())


def dlq_find(regions, body: str) -> dict | None:
    """The DLQ message with this exact body (left on the DLQ), or None."""
    return next((m for m in dlq_all(regions) if m["Body"] == body), None)


def dlq_reason(regions, body: str) -> str:
    m = eventually(lambda: dlq_find(regions, body), timeout=30)
    return m["MessageAttributes"]["reason"]["StringValue"]


@pytest.fixture(scope="module", params=["username", "email"])
def regions(request):
    """The shared two-region fixture (conftest), on emulators that keep SQS FIFO group order
    when a replicator leaves a group's events for redelivery (tests/harness/fifo_moto.py): these
    tests do that on purpose."""
    with fifo_order():
        r = Regions(request.param, tempfile.mkdtemp(prefix=f"relay-integrity-{request.param}-"))
    yield r
    r.close()


@pytest.fixture(scope="module")
def metrics_on(regions):
    """B's replicator with its Prometheus endpoint (the shared fixture starts it without)."""
    if not getattr(regions, "rep_b_metrics", None):
        restart_replicator_b(regions)
    return regions


# -- newest state wins -----------------------------------------------------------------


def test_a_stale_duplicate_never_brings_an_old_password_back(metrics_on):
    regions = metrics_on
    username, (body_p2, body_p3) = captured_password_changes(regions, [PASSWORD, P2, P3])
    assert not on_b(regions, username, P2)
    stale_before = rep_b_count(regions, "stale")

    # The P2 event is delivered again (same body, new dedup id, same group), after P3 applied.
    send_b(regions, body_p2, group_of(username))
    eventually(lambda: rep_b_count(regions, "stale") >= stale_before + 1, timeout=30)
    assert on_b(regions, username, P3), "the newest password still opens on B"
    assert not on_b(regions, username, P2), "a stale duplicate brought an older password back"
    # The P3 body again: at its own mark, so also stale (not re-applied).
    send_b(regions, body_p3, group_of(username))
    eventually(lambda: rep_b_count(regions, "stale") >= stale_before + 2, timeout=30)
    assert on_b(regions, username, P3)
    assert dlq_find(regions, body_p2) is None and dlq_find(regions, body_p3) is None


def test_a_late_event_from_the_peer_cannot_undo_a_newer_local_write(metrics_on):
    """Both regions take writes (a failover, two devices): P2 is set through B's proxy while A's
    replicator is down, then P3 through A's proxy. When B's P2 event finally reaches A it is
    older than the write A's proxy marked in A's state table: skipped. Both pools end on P3."""
    regions = metrics_on
    idp_a, username, access_a = confirmed_user(regions)
    idp_b = regions.client(regions.proxy_b.url, regions.b["region"])
    regions.rep_a.stop()
    try:
        access_b = password_auth(regions, idp_b, username, PASSWORD)["AuthenticationResult"]["AccessToken"]
        change_password(idp_b, access_b, PASSWORD, P2)  # B now; its event waits on A's queue
        change_password(idp_a, access_a, PASSWORD, P3)  # A later; replicates to B
        assert eventually(lambda: on_b(regions, username, P3), timeout=30, interval=0.5)
    finally:
        port = free_port()
        regions.rep_a = start_replicator(regions.a, os.path.join(regions.workdir, f"replicator-a-{time.time():.3f}.log"),
                                         RELAY_METRICS_LISTEN=f"127.0.0.1:{port}")
    rep_a_metrics = f"http://127.0.0.1:{port}"
    eventually(lambda: metric(get_metrics(rep_a_metrics), "relay_replication_events_total", action="ChangePassword", outcome="stale") >= 1, timeout=30)
    on_a = lambda pw: can_sign_in(regions, regions.proxy_a, regions.a["region"], username, pw)  # noqa: E731
    assert on_a(P3) and not on_a(P2), "an older write from the peer undid a newer local one"
    assert on_b(regions, username, P3) and not on_b(regions, username, P2)


def test_a_stale_event_redriven_from_the_dlq_is_skipped(metrics_on, tmp_path):
    """An old event that sat in the DLQ is put back by `relayctl dlq redrive` after newer
    changes applied: the replicator skips it (`stale`), the newest password stays."""
    regions = metrics_on
    username, (body_p2, _body_p3) = captured_password_changes(regions, [PASSWORD, P2, P3])
    group = group_of(username)
    sqs(regions.b).send_message(QueueUrl=regions.b["dlq_url"], MessageBody=body_p2, MessageGroupId=group,
                                MessageDeduplicationId=uuid.uuid4().hex,
                                MessageAttributes={"reason": {"DataType": "String", "StringValue": "gave up after 5 attempts: TooManyRequestsException"}})
    stale_before = rep_b_count(regions, "stale", "ChangePassword")
    cfg = tmp_path / "relay.json"
    cfg.write_text(json.dumps({"regions": [
        {"name": s["region"], "health_url": p.url + "/health", "user_pool_id": s["pool_id"], "username_attributes": s["username_attributes"],
         "inbound_queue_url": s["inbound_queue_url"], "dlq_url": s["dlq_url"], "fallback_queue_url": s["fallback_queue_url"],
         "drain_parameter": s["drain_parameter"], "aws_endpoint": s["endpoint"]}
        for s, p in ((regions.a, regions.proxy_a), (regions.b, regions.proxy_b))]}))
    out = subprocess.run([binary("relayctl"), "--config", str(cfg), "--json", "dlq", "redrive", regions.b["region"]],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["redriven"] >= 1, out.stdout
    eventually(lambda: rep_b_count(regions, "stale", "ChangePassword") >= stale_before + 1, timeout=30)
    assert on_b(regions, username, P3)
    assert not on_b(regions, username, P2), "a redriven stale event brought an older password back"
    assert dlq_find(regions, body_p2) is None, "the stale event is skipped, not dead-lettered again"


# -- only the peer's sealed events ------------------------------------------------------


def test_forged_retargeted_and_foreign_events_are_refused(metrics_on):
    regions = metrics_on
    victim_idp, victim, _ = confirmed_user(regions)
    victim_before = user_on(regions, regions.b, victim)
    unauth_before = rep_b_count(regions, "unauthenticated")
    wrong_before = rep_b_count(regions, "wrong_pool")

    # (a) A genuine, correctly sealed password change of the attacker's own account, retargeted
    # at the victim by changing the routing `group` (and sent in the victim's FIFO group).
    attacker, (old_body, body) = captured_password_changes(regions, [PASSWORD, P2, P3])
    retargeted = json.dumps({**json.loads(body), "group": group_of(victim)})
    send_b(regions, retargeted, group_of(victim))
    assert dlq_reason(regions, retargeted).startswith("unauthenticated"), "a retargeted event must not verify"

    # (b) An unsealed event in the v1 shape: delete the victim.
    v1 = json.dumps({"v": 1, "id": str(uuid.uuid4()), "origin_region": regions.a["region"], "action": "DeleteUser",
                     "user_key": victim, "origin_time_ms": int(time.time() * 1000) + 60_000, "change": {"op": "delete"}})
    send_b(regions, v1, group_of(victim))
    # (b') The same, in the v2 envelope's shape but with no seal.
    hdr = header_of(retargeted)
    unsealed = json.dumps({**hdr, "id": str(uuid.uuid4()), "action": "DeleteUser", "origin_time_ms": int(time.time() * 1000) + 60_000,
                           "user_key": victim, "change": {"op": "delete"}})
    send_b(regions, unsealed, group_of(victim))
    assert dlq_reason(regions, unsealed).startswith("unauthenticated")

    # (b'') The attacker's own older password event replayed with a newer order key (to win
    # over the newest password): the order key is under the seal.
    aged = json.dumps({**json.loads(old_body), "origin_time_ms": int(time.time() * 1000) + 3_600_000})
    send_b(regions, aged, group_of(attacker))
    assert dlq_reason(regions, aged).startswith("unauthenticated"), "an event's order key must not be changeable"

    # (c) Correctly sealed (by a holder of the key) but from a pool that is not B's peer, and
    # for a pool that is not B's own.
    genuine = open_event(body, regions.a["replication_key_b64"])
    assert genuine["user_key"].lower() == attacker.lower() and genuine["change"]["op"] == "set_password"
    foreign = seal_event({**genuine, "id": str(uuid.uuid4()), "origin_pool": regions.a["region"] + "_Elsewhere1",
                          "origin_time_ms": int(time.time() * 1000)}, regions.a["replication_key_b64"])
    elsewhere = seal_event({**genuine, "id": str(uuid.uuid4()), "target_pool": regions.b["region"] + "_Elsewhere2",
                            "origin_time_ms": int(time.time() * 1000)}, regions.a["replication_key_b64"])
    for forged in (foreign, elsewhere):
        send_b(regions, forged, group_of(attacker))
        assert dlq_reason(regions, forged).startswith("wrong-pool")

    # None of it was applied: the victim is still there, unchanged, with their own password;
    # the attacker's account kept its last genuine password.
    assert user_on(regions, regions.b, victim) == victim_before
    assert on_b(regions, victim, PASSWORD) and not on_b(regions, victim, P3)
    assert on_b(regions, attacker, P3) and not on_b(regions, attacker, P2)
    assert rep_b_count(regions, "wrong_pool") >= wrong_before + 2
    assert rep_b_count(regions, "unauthenticated") >= unauth_before + 3

    dlq_reason(regions, v1)  # dead-lettered, not applied (its reason: the next test)


def test_an_unsealed_v1_event_is_refused_as_unauthenticated(metrics_on):
    """docs/replication-events.md: "an unsealed v1 event" is dead-lettered `unauthenticated`."""
    regions = metrics_on
    _idp, victim, _ = confirmed_user(regions)
    v1 = json.dumps({"v": 1, "id": str(uuid.uuid4()), "origin_region": regions.a["region"], "action": "DeleteUser",
                     "user_key": victim, "origin_time_ms": int(time.time() * 1000) + 60_000, "change": {"op": "delete"}})
    send_b(regions, v1, group_of(victim))
    reason = dlq_reason(regions, v1)
    assert user_on(regions, regions.b, victim) is not None
    assert reason.startswith("unauthenticated"), reason


def test_a_permanent_failure_does_not_hold_back_the_users_later_events(metrics_on):
    """An event that can never apply (sealed by the peer, but its password does not open) goes
    to the DLQ at once; the user's next change, queued behind it in the same FIFO group,
    applies without waiting for the failed event's retries."""
    regions = metrics_on
    idp, username, access = confirmed_user(regions)
    bad = seal_event({"v": 2, "id": str(uuid.uuid4()), "origin_region": regions.a["region"], "origin_pool": regions.a["pool_id"],
                      "target_pool": regions.b["pool_id"], "action": "ChangePassword", "user_key": username,
                      "origin_time_ms": int(time.time() * 1000),
                      "change": {"op": "set_password", "sealed_password": "v1.k1." + "A" * 40}}, regions.a["replication_key_b64"])
    send_b(regions, bad, group_of(username))
    change_password(idp, access, PASSWORD, P2)
    t0 = time.time()
    assert eventually(lambda: on_b(regions, username, P2), timeout=30, interval=0.5)
    assert time.time() - t0 < 5 * 5, "the later event waited for the failed event's retries"
    reason = dlq_reason(regions, bad)
    assert not reason.startswith(("unauthenticated", "wrong-pool", "gave up")), reason


def test_only_the_event_that_failed_its_own_attempts_is_dead_lettered(metrics_on):
    """A user's head event keeps failing (retryable: its user does not exist on B) and goes to
    the DLQ after its own RELAY_MAX_RECEIVES (5) attempts; the user's next event waited behind it
    in the FIFO group all along (as many deliveries) and still applies afterwards."""
    regions = metrics_on
    if regions.kind != "username":
        pytest.skip("the attempt counting does not depend on the pool kind (and takes ~30 s)")
    key = f"ghost{uuid.uuid4().hex[:10]}"
    now = int(time.time() * 1000)
    base = {"v": 2, "origin_region": regions.a["region"], "origin_pool": regions.a["pool_id"], "target_pool": regions.b["pool_id"], "user_key": key}
    head = seal_event({**base, "id": str(uuid.uuid4()), "action": "UpdateUserAttributes", "origin_time_ms": now,
                       "change": {"op": "update_attributes", "attributes": [{"Name": "name", "Value": "Ghost"}]}}, regions.a["replication_key_b64"])
    later = seal_event({**base, "id": str(uuid.uuid4()), "action": "SignUp", "origin_time_ms": now + 1,
                        "change": {"op": "create_user", "attributes": [{"Name": "email", "Value": f"{key}@example.com"}]}}, regions.a["replication_key_b64"])
    send_b(regions, head, group_of(key))
    send_b(regions, later, group_of(key))
    reason = dlq_reason(regions, head) if eventually(lambda: dlq_find(regions, head), timeout=60, interval=1) else ""
    assert reason.startswith("gave up after 5 attempts"), reason
    u = eventually(lambda: user_on(regions, regions.b, key), timeout=30)
    assert u["email"] == f"{key}@example.com" and u["Enabled"] is False, u
    assert dlq_find(regions, later) is None, "the waiting event was dead-lettered for deliveries it spent waiting"


# -- no silent loss ----------------------------------------------------------------------


def test_a_client_that_hangs_up_mid_request_still_replicates(regions):
    idp, username, access = confirmed_user(regions)
    enq_before = metric(get_metrics(regions.proxy_a.url), "relay_replication_enqueued_total")
    lost_before = metric(get_metrics(regions.proxy_a.url), "relay_replication_lost_total")
    # Cognito calls of one ChangePassword through the proxy: the user's e-mail is resolved first
    # (GetUser) in e-mail pools. Hold each 1.5 s; hang up while ChangePassword is held.
    calls = 2 if regions.kind == "email" else 1
    strict_post(regions.a["endpoint"], "faults", {"slow": calls})
    body = json.dumps({"AccessToken": access, "PreviousPassword": PASSWORD, "ProposedPassword": P2})
    host, port = regions.proxy_a.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=1.5 * (calls - 1) + 0.7)
    try:
        conn.request("POST", "/", body=body, headers={"Content-Type": "application/x-amz-json-1.1",
                                                      "X-Amz-Target": "AWSCognitoIdentityProviderService.ChangePassword"})
        with pytest.raises((socket.timeout, TimeoutError)):
            conn.getresponse()
    finally:
        conn.close()
    # Cognito made the change; the proxy still sent the event: B gets the new password.
    assert eventually(lambda: can_sign_in(regions, regions.proxy_a, regions.a["region"], username, P2), timeout=15)
    assert eventually(lambda: on_b(regions, username, P2), timeout=30, interval=0.5)
    assert not on_b(regions, username, PASSWORD)
    m = get_metrics(regions.proxy_a.url)
    assert metric(m, "relay_replication_enqueued_total") >= enq_before + 1
    assert metric(m, "relay_replication_lost_total") == lost_before


def test_a_token_mutation_whose_user_cannot_be_resolved_is_refused_before_forwarding(regions):
    if regions.kind != "email":
        pytest.skip("the user is resolved with GetUser only in pools that sign in by e-mail")
    idp, username, access = confirmed_user(regions)
    strict_post(regions.a["endpoint"], "faults", {"throttle": 1})  # the GetUser that resolves the user
    with pytest.raises(ClientError) as e:
        change_password(idp, access, PASSWORD, P2)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert error_code(e.value) == "ServiceUnavailableException"
    # Nothing changed at the origin (it was not forwarded), so nothing to replicate.
    assert can_sign_in(regions, regions.proxy_a, regions.a["region"], username, PASSWORD)
    assert not can_sign_in(regions, regions.proxy_a, regions.a["region"], username, P2)
    assert on_b(regions, username, PASSWORD)


# -- replays never invent state ----------------------------------------------------------


def test_verified_flags_on_the_standby_equal_the_origins(regions, request):
    idp = regions.client(regions.proxy_a.url)
    username, attrs = new_user(regions)

    def same_flags(key, marker=lambda b: True):
        """Waits until B shows the step (`marker`), then until B's verified flags equal A's."""
        eventually(lambda: (b := user_on(regions, regions.b, key)) is not None and marker(b), timeout=30)

        def check():
            a, b = user_on(regions, regions.a, key), user_on(regions, regions.b, key)
            return verified(a) == verified(b) and (a, b)
        try:
            a, _b = eventually(check, timeout=5)
        except AssertionError:
            raise AssertionError(f"verified flags differ: A {verified(user_on(regions, regions.a, key))} B {verified(user_on(regions, regions.b, key))}") from None
        return verified(a)

    idp.sign_up(ClientId=regions.public_client_id, Username=username, Password=PASSWORD, UserAttributes=attrs)
    flags = same_flags(username, marker=lambda b: b["UserStatus"] == "CONFIRMED")  # the sign-up's last replay step
    assert flags.get("email_verified") != "true", "nothing is verified before the confirmation"

    code = latest_code(regions.a["endpoint"], regions.a["pool_id"], username, "SIGN_UP")
    idp.confirm_sign_up(ClientId=regions.public_client_id, Username=username, ConfirmationCode=code)
    flags = same_flags(username, marker=lambda b: b["Enabled"])
    if regions.kind == "email":
        assert flags.get("email_verified") == "true", "the e-mail pool auto-verifies the address it sent the code to"

    access = password_auth(regions, idp, username, PASSWORD)["AuthenticationResult"]["AccessToken"]
    new_email = f"moved-{uuid.uuid4().hex[:8]}@example.com"
    idp.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "email", "Value": new_email}])
    key = new_email if regions.kind == "email" else username
    flags = same_flags(key, marker=lambda b: b.get("email") == new_email)
    if regions.kind == "email":
        assert flags.get("email_verified") == "false", "a changed e-mail is unverified at the origin"

    idp.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "phone_number", "Value": "+15550142"}])
    flags = same_flags(key, marker=lambda b: b.get("phone_number") == "+15550142")
    # The pool does not auto-verify phones: no phone_number_verified="true" is invented on B.
    assert flags.get("phone_number_verified") != "true"

    idp.get_user_attribute_verification_code(AccessToken=access, AttributeName="email")
    code = latest_code(regions.a["endpoint"], regions.a["pool_id"], new_email, "VERIFY_ATTRIBUTE")
    idp.verify_user_attribute(AccessToken=access, AttributeName="email", Code=code)
    flags = same_flags(key, marker=lambda b: b.get("email_verified") == "true")
    assert flags["email_verified"] == "true"
    # And nothing else drifted: once B has applied everything queued for it, the flags agree.
    eventually(lambda: all(int(v) == 0 for v in sqs(regions.b).get_queue_attributes(
        QueueUrl=regions.b["inbound_queue_url"], AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"].values()))
    assert verified(user_on(regions, regions.a, key)) == verified(user_on(regions, regions.b, key))


# -- key rotation ------------------------------------------------------------------------


def proxy_a_reread_its_secrets(regions, idp) -> None:
    """Waits until region A's proxy has read its secrets again since now (a request makes it
    re-read once its copy is older than RELAY_SECRET_TTL_MS), as A's emulator counts reads."""
    key_id = regions.a["replication_key_secret_id"]
    before = strict_get(regions.a["endpoint"], "secret_reads").get(key_id, 0)

    def reread() -> bool:
        try:
            password_auth(regions, idp, f"nobody-{uuid.uuid4().hex[:8]}", "x")
        except ClientError:
            pass  # any answer: the request only makes the proxy look at its secrets
        return strict_get(regions.a["endpoint"], "secret_reads").get(key_id, 0) > before

    eventually(reread, timeout=15, interval=0.25, what="proxy A re-read its secrets")


def test_sessions_survive_replication_key_rotation(metrics_on):
    """runbooks/secret-rotation.md section B in both regions (add k2, make it current, remove
    k1) with proxies that re-read secrets every 0.5 s: a session issued before the rotation
    still refreshes, and a password change after it still replicates."""
    regions = metrics_on
    old_a = regions.proxy_a
    regions.proxy_a = start_proxy(regions.a, regions.b, os.path.join(regions.workdir, "proxy-a-ttl.log"), RELAY_SECRET_TTL_MS="500")
    old_a.stop()
    idp, username, access = confirmed_user(regions)
    tokens = password_auth(regions, idp, username, PASSWORD)["AuthenticationResult"]

    k1, k2 = regions.a["replication_key_b64"], base64.b64encode(pysecrets.token_bytes(32)).decode()
    steps = [{"current": "k1", "keys": {"k1": k1, "k2": k2}},  # 1. add k2
             {"current": "k2", "keys": {"k1": k1, "k2": k2}},  # 3. make k2 current
             {"current": "k2", "keys": {"k2": k2}}]            # 5. remove k1
    for i, doc in enumerate(steps):
        for side in (regions.a, regions.b):
            client("secretsmanager", side["endpoint"], side["region"]).put_secret_value(
                SecretId=side["replication_key_secret_id"], SecretString=json.dumps(doc))
        if i == 1:
            # 4. events now go out under k2 (B's replicator re-reads its keyring for it) and the
            # queues hold no k1 event any more.
            proxy_a_reread_its_secrets(regions, idp)  # it seals under k2 from now on
            change_password(idp, access, PASSWORD, P2)
            assert eventually(lambda: on_b(regions, username, P2), timeout=40, interval=0.5)
            eventually(lambda: int(sqs(regions.b).get_queue_attributes(QueueUrl=regions.b["inbound_queue_url"], AttributeNames=["All"])["Attributes"]["ApproximateNumberOfMessages"]) == 0)
    proxy_a_reread_its_secrets(regions, idp)  # the proxy only has k2 now

    refreshed = idp.initiate_auth(ClientId=regions.public_client_id, AuthFlow="REFRESH_TOKEN_AUTH",
                                  AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]})
    assert refreshed["AuthenticationResult"]["AccessToken"], "a session issued before the rotation still refreshes"
    change_password(idp, refreshed["AuthenticationResult"]["AccessToken"], P2, P3)
    assert eventually(lambda: on_b(regions, username, P3), timeout=40, interval=0.5), "a password change after the rotation replicates"
    assert not on_b(regions, username, P2)
    assert "replication keyring re-read" in regions.rep_b.logs()
    regions.a["replication_key_b64"] = regions.b["replication_key_b64"] = k2
