"""Replication end to end: mutations through region A's proxy reach region B's pool, checked
with admin reads on B and by signing in on B through B's proxy with the expected password."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from botocore.exceptions import ClientError

from tests.harness.events import open_event
from tests.harness.stack import client, mailbox, strict_get, strict_post

from .conftest import eventually
from .test_proxy import NEW_PASSWORD, PASSWORD, RESET_PASSWORD, error_code, latest_code, new_user, password_auth, sign_up_and_confirm


def b_user(regions, key):
    """The user on B by its key (username, or e-mail in e-mail pools), or None."""
    adm = regions.admin(regions.b)
    try:
        u = adm.admin_get_user(UserPoolId=regions.b["pool_id"], Username=key)
        return {"enabled": u["Enabled"], "status": u["UserStatus"], **{a["Name"]: a["Value"] for a in u["UserAttributes"]}}
    except ClientError as e:
        if error_code(e) == "UserNotFoundException":
            return None
        raise


def can_sign_in_on_b(regions, username, password) -> bool:
    idp = regions.client(regions.proxy_b.url, "eu-central-1")
    try:
        password_auth(regions, idp, username, password)
        return True
    except ClientError as e:
        # Only "no such user / wrong password / not confirmed" means no; anything else is raised.
        if error_code(e) in ("NotAuthorizedException", "UserNotFoundException", "UserNotConfirmedException"):
            return False
        raise


def queue_counts(side, url_key: str = "inbound_queue_url") -> tuple[int, int]:
    """(visible, in flight) messages on one of a side's queues."""
    attrs = client("sqs", side["endpoint"], side["region"]).get_queue_attributes(
        QueueUrl=side[url_key], AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def b_inbound_drained(regions) -> bool:
    """B's replicator has taken and deleted every event on its inbound queue."""
    return queue_counts(regions.b) == (0, 0)


def replicator_fault_hits(side) -> dict[str, int]:
    """Faults the emulator served to the replicator's Cognito calls, by kind: its Admin* calls
    (only a replicator makes those) and the DescribeUserPool probe a standalone replicator makes
    after a failed batch (the proxy makes it only for /health, which these tests do not poll)."""
    out: dict[str, int] = {}
    for action, kinds in strict_get(side["endpoint"], "faults")["hits"].items():
        if action.startswith("Admin") or action == "DescribeUserPool":
            for kind, n in kinds.items():
                out[kind] = out.get(kind, 0) + n
    return out


def b_messages_to(regions, *addresses: str) -> list[dict]:
    """What B's pool sent to these users (by username or destination address)."""
    return [m for a in addresses for m in mailbox(regions.b["endpoint"], regions.b["pool_id"], a)]


def test_sign_up_replicates_but_cannot_sign_in_before_confirmation(regions):
    idp = regions.client(regions.proxy_a.url)
    username, attrs = new_user(regions)
    out = idp.sign_up(ClientId=regions.public_client_id, Username=username, Password=PASSWORD, UserAttributes=attrs)
    # Once B has the password (the last step of the sign-up replay), the user must be disabled.
    u = eventually(lambda: (x := b_user(regions, username)) and x["status"] == "CONFIRMED" and x)
    assert u["enabled"] is False, "an unconfirmed sign-up must not be able to sign in on B"
    assert u["custom:origin_sub"] == out["UserSub"]
    assert not can_sign_in_on_b(regions, username, PASSWORD)

    code = latest_code(regions.a["endpoint"], regions.a["pool_id"], username, "SIGN_UP")
    idp.confirm_sign_up(ClientId=regions.public_client_id, Username=username, ConfirmationCode=code)
    eventually(lambda: b_user(regions, username)["enabled"])
    assert eventually(lambda: can_sign_in_on_b(regions, username, PASSWORD))
    assert not can_sign_in_on_b(regions, username, "Wrong-Passw0rd!")
    # Replication never makes Cognito message the user from the other pool.
    assert b_messages_to(regions, username, attrs[0]["Value"]) == []


def test_passwords_attributes_and_deletion_replicate(regions):
    idp = regions.client(regions.proxy_a.url)
    username, attrs = new_user(regions)
    sign_up_and_confirm(regions, idp, username, attrs)
    eventually(lambda: can_sign_in_on_b(regions, username, PASSWORD))

    access = password_auth(regions, idp, username, PASSWORD)["AuthenticationResult"]["AccessToken"]
    idp.change_password(AccessToken=access, PreviousPassword=PASSWORD, ProposedPassword=NEW_PASSWORD)
    assert eventually(lambda: can_sign_in_on_b(regions, username, NEW_PASSWORD))
    assert not can_sign_in_on_b(regions, username, PASSWORD)

    idp.forgot_password(ClientId=regions.public_client_id, Username=username)
    code = latest_code(regions.a["endpoint"], regions.a["pool_id"], username, "FORGOT_PASSWORD")
    idp.confirm_forgot_password(ClientId=regions.public_client_id, Username=username, ConfirmationCode=code, Password=RESET_PASSWORD)
    assert eventually(lambda: can_sign_in_on_b(regions, username, RESET_PASSWORD))
    assert not can_sign_in_on_b(regions, username, NEW_PASSWORD)

    access = password_auth(regions, idp, username, RESET_PASSWORD)["AuthenticationResult"]["AccessToken"]
    idp.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "name", "Value": "Grace"}, {"Name": "phone_number", "Value": "+15550100"}])
    eventually(lambda: b_user(regions, username).get("name") == "Grace")
    idp.delete_user_attributes(AccessToken=access, UserAttributeNames=["phone_number"])
    eventually(lambda: "phone_number" not in b_user(regions, username))

    idp.delete_user(AccessToken=access)
    eventually(lambda: b_user(regions, username) is None)
    assert b_messages_to(regions, username, attrs[0]["Value"]) == []


def test_twenty_rapid_updates_end_with_the_last_value(regions):
    idp = regions.client(regions.proxy_a.url)
    username, attrs = new_user(regions)
    sign_up_and_confirm(regions, idp, username, attrs)
    access = password_auth(regions, idp, username, PASSWORD)["AuthenticationResult"]["AccessToken"]
    for i in range(20):
        idp.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "name", "Value": f"v{i}"}])
    eventually(lambda: (b_user(regions, username) or {}).get("name") == "v19", timeout=30)
    # Every event has been taken off B's queue and applied: no late one overwrote the last value.
    eventually(lambda: b_inbound_drained(regions), timeout=30, what="B's inbound queue drained")
    assert b_user(regions, username)["name"] == "v19"


def test_poison_goes_to_the_dlq_with_its_reason_and_the_rest_flow(regions):
    sqs_b = client("sqs", regions.b["endpoint"], regions.b["region"])
    idp = regions.client(regions.proxy_a.url)
    username, attrs = new_user(regions)
    sign_up_and_confirm(regions, idp, username, attrs)
    eventually(lambda: can_sign_in_on_b(regions, username, PASSWORD))
    before = eventually(lambda: (u := b_user(regions, username)) and u["enabled"] and u.get("email_verified") == "true" and u)

    poison = "this is not an event"
    sqs_b.send_message(QueueUrl=regions.b["inbound_queue_url"], MessageBody=poison, MessageGroupId="poison", MessageDeduplicationId="p1")
    got = eventually(lambda: sqs_b.receive_message(QueueUrl=regions.b["dlq_url"], MessageAttributeNames=["All"], WaitTimeSeconds=1).get("Messages"))
    assert got[0]["Body"] == poison
    assert "not JSON" in got[0]["MessageAttributes"]["reason"]["StringValue"]
    # The rest keep flowing.
    u2, attrs2 = new_user(regions)
    sign_up_and_confirm(regions, idp, u2, attrs2)
    eventually(lambda: can_sign_in_on_b(regions, u2, PASSWORD))
    assert b_user(regions, username) == before


def test_throttling_and_errors_on_b_lose_nothing(regions):
    """B's Cognito throttles, fails and drops the replicator's calls; every user still arrives,
    and the replicator is the one that met every injected fault."""
    idp = regions.client(regions.proxy_a.url)
    before = replicator_fault_hits(regions.b)
    strict_post(regions.b["endpoint"], "faults", {"throttle": 6, "error500": 4, "drop": 2})
    try:
        users = []
        for _ in range(3):
            username, attrs = new_user(regions)
            sign_up_and_confirm(regions, idp, username, attrs)
            users.append(username)
        # Wait on SQS only (not faulted): a sign-in check through B's proxy would eat the faults.
        eventually(lambda: b_inbound_drained(regions), timeout=60, what="B's inbound queue drained")
        left = strict_get(regions.b["endpoint"], "faults")
        assert (left["throttle"], left["error500"], left["drop"]) == (0, 0, 0), f"faults left unserved: {left}"
        hits = replicator_fault_hits(regions.b)
        met = {k: hits.get(k, 0) - before.get(k, 0) for k in ("throttle", "error500", "drop")}
        # Every fault was served (above), and every one of them to the replicator: its Admin
        # calls, and its pool probe after the failed batch.
        assert met == {"throttle": 6, "error500": 4, "drop": 2}, f"the replicator met {met}"
    finally:
        strict_post(regions.b["endpoint"], "reset")
    for username in users:
        assert can_sign_in_on_b(regions, username, PASSWORD), username


def test_replicator_killed_mid_batch_loses_nothing(regions):
    """B's replicator is SIGKILLed while it works through a batch slowed by throttling; a new
    one picks up what was not deleted, and every user arrives."""
    import os
    from tests.harness.relay import start_replicator

    idp = regions.client(regions.proxy_a.url)
    before = replicator_fault_hits(regions.b).get("throttle", 0)
    strict_post(regions.b["endpoint"], "faults", {"throttle": 40})
    users = []
    for _ in range(5):
        username, attrs = new_user(regions)
        sign_up_and_confirm(regions, idp, username, attrs)
        users.append(username)

    def mid_batch() -> bool:
        # The replicator holds received, undeleted events and its Admin calls are being throttled.
        _, in_flight = queue_counts(regions.b)
        return in_flight >= 1 and replicator_fault_hits(regions.b).get("throttle", 0) > before \
            and strict_get(regions.b["endpoint"], "faults")["throttle"] > 0

    eventually(mid_batch, timeout=30, interval=0.05, what="B's replicator working through a throttled batch")
    regions.rep_b.stop(sig_kill=True)
    _, in_flight = queue_counts(regions.b)
    assert in_flight >= 1, "the kill left received, undeleted events behind (a batch was in flight)"
    strict_post(regions.b["endpoint"], "reset")
    assert not all((u := b_user(regions, x)) and u["enabled"] for x in users), "some user was still to be applied"
    regions.rep_b = start_replicator(regions.b, os.path.join(regions.workdir, f"replicator-b-{time.time():.0f}.log"))
    for username in users:
        assert eventually(lambda: can_sign_in_on_b(regions, username, PASSWORD), timeout=40), username


def test_raw_queue_messages_hold_no_plaintext_password_and_duplicates_change_nothing(regions):
    """Reads the raw SQS messages of a sign-up while B's replicator is stopped, then delivers
    every one of them a second time after they were applied: B must not change."""
    import os
    from tests.harness.relay import start_replicator

    sqs_b = client("sqs", regions.b["endpoint"], regions.b["region"])
    regions.rep_b.stop()
    try:
        idp = regions.client(regions.proxy_a.url)
        username, attrs = new_user(regions)
        sign_up_and_confirm(regions, idp, username, attrs, password="Pl41ntext-Check!")
        seen: dict[str, dict] = {}
        for _ in range(20):
            for m in sqs_b.receive_message(QueueUrl=regions.b["inbound_queue_url"], MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=1, AttributeNames=["All"]).get("Messages", []):
                if m["Attributes"]["MessageGroupId"] == hashlib.sha256(username.lower().encode()).hexdigest()[:32]:
                    seen[m["MessageId"]] = m
                else:  # another test's user: leave it for the replicator
                    sqs_b.change_message_visibility(QueueUrl=regions.b["inbound_queue_url"], ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
            if len(seen) >= 2:
                break
        # (moto's SequenceNumber is not monotonic, so order them by what they are.)
        key = regions.a["replication_key_b64"]
        msgs = sorted(seen.values(), key=lambda m: open_event(m["Body"], key)["change"]["op"] != "create_user")
        bodies = [m["Body"] for m in msgs]
        assert len(bodies) == 2, "the sign-up and confirmation events are on B's inbound queue"
        assert all("Pl41ntext-Check!" not in b and username.lower() not in b.lower() for b in bodies), "no password or user key in the clear"
        docs = [open_event(b, key) for b in bodies]
        assert [d["change"]["op"] for d in docs] == ["create_user", "confirm"]
        assert docs[0]["change"]["sealed_password"].startswith("v1.k1.")
        # Put them back, in order, for the replicator.
        for i, m in enumerate(msgs):
            sqs_b.send_message(QueueUrl=regions.b["inbound_queue_url"], MessageBody=m["Body"], MessageGroupId=m["Attributes"]["MessageGroupId"], MessageDeduplicationId=f"back-{i}-{docs[i]['id']}")
            sqs_b.delete_message(QueueUrl=regions.b["inbound_queue_url"], ReceiptHandle=m["ReceiptHandle"])
    finally:
        regions.rep_b = start_replicator(regions.b, os.path.join(regions.workdir, "replicator-b2.log"))
    assert eventually(lambda: can_sign_in_on_b(regions, username, "Pl41ntext-Check!"))
    before = b_user(regions, username)
    group = msgs[0]["Attributes"]["MessageGroupId"]
    for i, body in enumerate(bodies):
        sqs_b.send_message(QueueUrl=regions.b["inbound_queue_url"], MessageBody=body, MessageGroupId=group, MessageDeduplicationId=f"dup-{i}-{username[:20]}")
    # A later change of the same user queues behind the duplicates (same FIFO group).
    access = password_auth(regions, idp, username, "Pl41ntext-Check!")["AuthenticationResult"]["AccessToken"]
    idp.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "name", "Value": "After"}])
    eventually(lambda: b_user(regions, username)["name"] == "After")
    after = b_user(regions, username)
    after.pop("name"), before.pop("name")
    assert after == before
    assert can_sign_in_on_b(regions, username, "Pl41ntext-Check!")


def test_replication_key_rotation_loses_nothing(regions, tmp_path):
    """A new key k2 becomes current in both regions; a proxy that reads it seals under k2; B's
    replicator, started with only k1, re-reads its keyring instead of dead-lettering."""
    import base64
    import os
    import secrets as pysecrets
    from tests.harness.relay import start_proxy

    dlq_before = sum(queue_counts(regions.b, "dlq_url"))
    k2 = base64.b64encode(pysecrets.token_bytes(32)).decode()
    doc = json.dumps({"current": "k2", "keys": {"k1": regions.a["replication_key_b64"], "k2": k2}})
    for side in (regions.a, regions.b):
        client("secretsmanager", side["endpoint"], side["region"]).put_secret_value(SecretId=side["replication_key_secret_id"], SecretString=doc)
    fresh = start_proxy(regions.a, regions.b, str(tmp_path / "proxy-a-k2.log"))
    try:
        idp = regions.client(fresh.url)
        username, attrs = new_user(regions)
        sign_up_and_confirm(regions, idp, username, attrs)
        assert eventually(lambda: can_sign_in_on_b(regions, username, PASSWORD), timeout=30)
        logs = regions.rep_b.logs()
        assert "replication keyring re-read" in logs
    finally:
        fresh.stop()
    assert sum(queue_counts(regions.b, "dlq_url")) == dlq_before, "nothing was dead-lettered"


def _attrs_on_b(regions, key):
    u = regions.admin(regions.b).admin_get_user(UserPoolId=regions.b["pool_id"], Username=key)
    return u


def test_mfa_settings_and_global_sign_out_replicate(regions):
    idp = regions.client(regions.proxy_a.url)
    username, attrs = new_user(regions)
    sign_up_and_confirm(regions, idp, username, attrs)
    access = password_auth(regions, idp, username, PASSWORD)["AuthenticationResult"]["AccessToken"]
    idp.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "phone_number", "Value": "+15550123"}])
    eventually(lambda: b_user(regions, username).get("phone_number") == "+15550123")

    idp.set_user_settings(AccessToken=access, MFAOptions=[{"DeliveryMedium": "SMS", "AttributeName": "phone_number"}])
    eventually(lambda: _attrs_on_b(regions, username).get("MFAOptions") == [{"DeliveryMedium": "SMS", "AttributeName": "phone_number"}])

    idp.set_user_mfa_preference(AccessToken=access, SMSMfaSettings={"Enabled": True, "PreferredMfa": True})
    eventually(lambda: _attrs_on_b(regions, username).get("PreferredMfaSetting") == "SMS_MFA")
    assert "SMS_MFA" in _attrs_on_b(regions, username).get("UserMFASettingList", [])

    # GlobalSignOut at the origin signs the user out on B too: B's refresh token stops working.
    idp.set_user_mfa_preference(AccessToken=access, SMSMfaSettings={"Enabled": False, "PreferredMfa": False})
    eventually(lambda: not _attrs_on_b(regions, username).get("UserMFASettingList"))
    idp_b = regions.client(regions.proxy_b.url, "eu-central-1")
    b_tokens = password_auth(regions, idp_b, username, PASSWORD)["AuthenticationResult"]

    def refresh_on_b_works():
        try:
            idp_b.initiate_auth(ClientId=regions.public_client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": b_tokens["RefreshToken"]})
            return True
        except ClientError as e:
            if error_code(e) != "NotAuthorizedException":
                raise
            return False

    assert refresh_on_b_works()
    idp.global_sign_out(AccessToken=access)
    eventually(lambda: not refresh_on_b_works())


def test_email_change_and_verification_follow_the_user(regions):
    if regions.kind != "email":
        pytest.skip("the user key follows the sign-in e-mail only in e-mail pools")
    idp = regions.client(regions.proxy_a.url)
    username, attrs = new_user(regions)
    sign_up_and_confirm(regions, idp, username, attrs)
    access = password_auth(regions, idp, username, PASSWORD)["AuthenticationResult"]["AccessToken"]
    new_email = "moved-" + username
    idp.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "email", "Value": new_email}])
    eventually(lambda: (b_user(regions, new_email) or {}).get("email") == new_email)
    assert b_user(regions, new_email)["email_verified"] == "false"
    idp.get_user_attribute_verification_code(AccessToken=access, AttributeName="email")
    code = latest_code(regions.a["endpoint"], regions.a["pool_id"], new_email, "VERIFY_ATTRIBUTE")
    idp.verify_user_attribute(AccessToken=access, AttributeName="email", Code=code)
    eventually(lambda: b_user(regions, new_email)["email_verified"] == "true")
    assert eventually(lambda: can_sign_in_on_b(regions, new_email, PASSWORD))
    # B never messaged the user about the change. (The emulator's AdminUpdateUserAttributes
    # messages a changed auto-verified e-mail unless the call sets email_verified=true, as
    # Cognito does; test_strict_moto proves it, so this check can fail.)
    assert b_messages_to(regions, username, new_email) == []
    assert b_user(regions, new_email)["email_verified"] == "true"


def test_new_password_required_answer_replicates(regions, tmp_path):
    """An admin-created user (seeded to B by relayctl backfill, no password there) answers
    NEW_PASSWORD_REQUIRED through A's proxy: the new password works on B."""
    import subprocess
    from tests.harness.relay import binary

    username, attrs = new_user(regions)
    adm_a = regions.admin(regions.a)
    adm_a.admin_create_user(UserPoolId=regions.a["pool_id"], Username=username, UserAttributes=attrs)
    temp = latest_code(regions.a["endpoint"], regions.a["pool_id"], username, "INVITATION")
    cfg = tmp_path / "relay.json"
    cfg.write_text(json.dumps({"regions": [
        {"name": s["region"], "health_url": p.url + "/health", "user_pool_id": s["pool_id"], "username_attributes": s["username_attributes"],
         "inbound_queue_url": s["inbound_queue_url"], "dlq_url": s["dlq_url"], "drain_parameter": s["drain_parameter"], "aws_endpoint": s["endpoint"]}
        for s, p in ((regions.a, regions.proxy_a), (regions.b, regions.proxy_b))]}))
    out = subprocess.run([binary("relayctl"), "--config", str(cfg), "backfill", "--from", regions.a["region"], "--to", regions.b["region"], "--state", str(tmp_path / "bf.json")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert b_user(regions, username) is not None

    idp = regions.client(regions.proxy_a.url)
    ch = idp.initiate_auth(ClientId=regions.public_client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": temp})
    assert ch["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    idp.respond_to_auth_challenge(ClientId=regions.public_client_id, ChallengeName="NEW_PASSWORD_REQUIRED", Session=ch["Session"],
                                  ChallengeResponses={"USERNAME": ch["ChallengeParameters"].get("USER_ID_FOR_SRP", username), "NEW_PASSWORD": NEW_PASSWORD})
    assert eventually(lambda: can_sign_in_on_b(regions, username, NEW_PASSWORD))
