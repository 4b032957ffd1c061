"""Newest state wins in both directions: a write made directly on the standby (after a
failover) is not undone by an older event from the primary that was still queued towards it."""

from __future__ import annotations

import os

from tests.harness.relay import start_replicator
from tests.harness.stack import client

from .conftest import eventually
from .test_proxy import NEW_PASSWORD, PASSWORD, new_user, password_auth, sign_up_and_confirm
from .test_replication import b_user, can_sign_in_on_b

NEWEST = "N3west-Passw0rd!4"


def test_a_queued_older_event_does_not_undo_a_write_made_on_the_standby(regions):
    idp_a = regions.client(regions.proxy_a.url)
    idp_b = regions.client(regions.proxy_b.url, "eu-central-1")
    username, attrs = new_user(regions)
    sign_up_and_confirm(regions, idp_a, username, attrs)
    assert eventually(lambda: can_sign_in_on_b(regions, username, PASSWORD))

    # B's replicator lags (stopped): A's password change waits in B's inbound queue.
    regions.rep_b.stop()
    try:
        access = password_auth(regions, idp_a, username, PASSWORD)["AuthenticationResult"]["AccessToken"]
        idp_a.change_password(AccessToken=access, PreviousPassword=PASSWORD, ProposedPassword=NEW_PASSWORD)
        idp_a.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "name", "Value": "from-A"}])
        # Failover: the user now writes on B directly (B still has the old password).
        access_b = password_auth(regions, idp_b, username, PASSWORD)["AuthenticationResult"]["AccessToken"]
        idp_b.change_password(AccessToken=access_b, PreviousPassword=PASSWORD, ProposedPassword=NEWEST)
        idp_b.update_user_attributes(AccessToken=access_b, UserAttributes=[{"Name": "name", "Value": "from-B"}])
    finally:
        regions.rep_b = start_replicator(regions.b, os.path.join(regions.workdir, "replicator-b-both.log"))
    # B's replicator catches up with A's older events: they are stale against B's own writes.
    sqs_b = client("sqs", regions.b["endpoint"], regions.b["region"])

    def backlog_empty() -> bool:
        attrs = sqs_b.get_queue_attributes(QueueUrl=regions.b["inbound_queue_url"], AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 0

    eventually(backlog_empty, timeout=30)
    eventually(lambda: '"outcome":"stale"' in regions.rep_b.logs(), timeout=30)
    assert can_sign_in_on_b(regions, username, NEWEST)
    assert not can_sign_in_on_b(regions, username, NEW_PASSWORD), "the older password from A came back on B"
    assert b_user(regions, username)["name"] == "from-B"
    # And B's writes reached A (the other direction), where they are the newest.
    idp_check = regions.client(regions.proxy_a.url)
    assert eventually(lambda: password_auth(regions, idp_check, username, NEWEST))
