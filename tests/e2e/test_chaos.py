"""Chaos, sized for CI: 20 users, 240 mutations through region A's proxy while region B's
replicator is SIGKILLed and restarted twice, B's Cognito throttles, B's network is cut for a
few seconds (A's proxy falls back to its local queue), and then a stale duplicate and a forged
event are put on B's queue. Afterwards the pools are equal user by user (attributes with the
verified flags, status, enabled), every user signs in on B with their latest password and not
the previous one, nothing was lost, and B's DLQ holds exactly the forged event.

The large version (>= 1,000 mutations, a 60 s cut) is a benchmark: bench/chaos.py."""

from __future__ import annotations

import tempfile

import pytest

from tests.harness import chaos


@pytest.fixture(scope="module")
def stack():
    s = chaos.ChaosStack(tempfile.mkdtemp(prefix="relay-chaos-"))
    yield s
    s.close()


def test_chaos_loses_nothing_applies_nothing_stale_or_forged(stack):
    report, users = chaos.run(stack, n_users=20, n_mutations=240, cut_s=4, throttle=30, converge_s=90)
    print("\n" + report.line())
    assert report.errors == [], report.errors[:5]
    assert report.acked == report.mutations
    assert report.proxy["lost"] == 0
    # Every successful mutation (and each user's sign-up and confirmation) ended as exactly one
    # event sent to the peer or to the fallback queue.
    # Plus, since the standby sign-in bridge, at most one credential-material event per user
    # (its first USER_PASSWORD_AUTH sign-in at the primary; deduplicated by fingerprint).
    sent = report.proxy["enqueued"] + report.proxy["fallback"]
    assert report.mutations + 2 * report.users <= sent <= report.mutations + 3 * report.users, sent
    assert report.proxy["fallback"] >= 1, "the network cut sent some events through A's fallback queue"
    assert chaos.differences(stack, users) == []
    for u in users:
        assert chaos.signs_in(stack, u.key, u.passwords[-1]), f"{u.key} cannot sign in on B with the latest password"
        assert not chaos.signs_in(stack, u.key, u.passwords[-2]), f"{u.key} still signs in on B with the previous password"
    assert report.stale_skipped >= 1
    assert report.dlq_depth == 1 and [d["body"] for d in report.dlq] == [report.forged], report.dlq
    assert report.dlq[0]["reason"].startswith("unauthenticated")
