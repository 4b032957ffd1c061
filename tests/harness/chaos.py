"""Chaos run of cognito-relay: many users' mutations through region A's proxy while region B's
replicator is SIGKILLed and restarted, B's Cognito throttles, B's network is cut, and a stale
duplicate and a forged event are injected into B's queue. Then checks that nothing was lost,
nothing stale won and nothing forged applied.

Used by tests/e2e/test_chaos.py (small, for CI) and bench/chaos.py (large, a benchmark)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from .events import group_of, header_of, metric
from .relay import start_proxy, start_replicator, wait_http
from .wait import eventually
from .stack import app_client, client, free_port, latest_code, provision_pair, start_strict_moto, stop_strict_moto, strict_post

A, B = "eu-west-1", "eu-central-1"
OUTAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "outage.py")
IGNORED = {"sub", "custom:origin_sub"}  # differ per pool by design


def _metrics(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        return r.read().decode()


@contextlib.contextmanager
def fifo_order():
    """Within it, start_strict_moto starts strict_moto with AWS's FIFO group order on
    redelivery (see fifo_moto.py: moto 5.2.5 can deliver a group's later message first after
    a consumer left them for redelivery, which chaos, throttling and crashes do all the time)."""
    from . import stack

    plain = stack.STRICT_MOTO
    stack.STRICT_MOTO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fifo_moto.py")
    try:
        yield
    finally:
        stack.STRICT_MOTO = plain


def start_fifo_moto(log_path: str):
    with fifo_order():
        return start_strict_moto(free_port(), log_path=log_path)


class ChaosStack:
    """Two strict moto regions (e-mail pools); everything of region B (its proxy's upstream,
    its SQS and Secrets Manager, A's proxy sending to B's queue) goes through an outage relay,
    so B's network can be cut while the emulator keeps its state."""

    def __init__(self, workdir: str, kind: str = "email"):
        self.workdir, self.kind = workdir, kind
        self.moto_a = start_fifo_moto(os.path.join(workdir, "moto-a.log"))
        self.moto_b = start_fifo_moto(os.path.join(workdir, "moto-b.log"))
        self.net_port, self.net = free_port(), None
        self.restore_b()
        self.a, self.b = provision_pair(self.moto_a.endpoint, A, f"http://127.0.0.1:{self.net_port}", B, kind)
        unlimited = {"RELAY_RATE_PER_IP": "0", "RELAY_RATE_PER_USERNAME": "0"}  # load, not abuse
        self.proxy_a = start_proxy(self.a, self.b, os.path.join(workdir, "proxy-a.log"), **unlimited)
        self.proxy_b = start_proxy(self.b, self.a, os.path.join(workdir, "proxy-b.log"), **unlimited)
        self.rep_a = start_replicator(self.a, os.path.join(workdir, "replicator-a.log"))
        self.rep_b = None
        self.rep_b_metrics = ""
        self.restarts = 0
        self.start_rep_b()

    # -- chaos levers ---------------------------------------------------------------------

    def cut_b(self) -> None:
        self.net.kill()
        self.net.wait()

    def restore_b(self) -> None:
        self.net = subprocess.Popen([sys.executable, OUTAGE, str(self.net_port), self.moto_b.endpoint.rsplit(":", 1)[1]])
        wait_http(f"http://127.0.0.1:{self.net_port}/_strict/health", ok=(200,))

    def start_rep_b(self) -> None:
        port = free_port()
        self.restarts += 1
        self.rep_b = start_replicator(self.b, os.path.join(self.workdir, f"replicator-b-{self.restarts}.log"), RELAY_METRICS_LISTEN=f"127.0.0.1:{port}")
        self.rep_b_metrics = f"http://127.0.0.1:{port}"

    def kill_rep_b(self) -> None:
        self.rep_b.stop(sig_kill=True)

    def faults_b(self, **faults: int) -> None:
        strict_post(self.moto_b.endpoint, "faults", faults)  # the emulator itself, not through the cut network

    def sqs_b(self):
        return client("sqs", self.moto_b.endpoint, B)

    def close(self) -> None:
        for p in (self.proxy_a, self.proxy_b, self.rep_a, self.rep_b):
            if p is not None:
                p.stop()
        if self.net and self.net.poll() is None:
            self.net.kill()
            self.net.wait()
        stop_strict_moto(self.moto_a)
        stop_strict_moto(self.moto_b)


@dataclass
class User:
    key: str
    passwords: list[str]
    attrs: dict[str, str] = field(default_factory=dict)
    access: str = ""


@dataclass
class Report:
    users: int = 0
    mutations: int = 0
    acked: int = 0
    errors: list[str] = field(default_factory=list)
    captured: str = ""
    forged: str = ""
    stale_skipped: float = 0
    dlq: list[dict] = field(default_factory=list)
    proxy: dict[str, float] = field(default_factory=dict)
    replicator_kills: int = 0
    cut_s: float = 0
    seconds: dict[str, float] = field(default_factory=dict)
    dlq_depth: int = 0

    def line(self) -> str:
        return (f"users={self.users} mutations={self.mutations} acked={self.acked} errors={len(self.errors)} "
                f"enqueued={self.proxy.get('enqueued', 0):.0f} fallback={self.proxy.get('fallback', 0):.0f} "
                f"lost={self.proxy.get('lost', 0):.0f} stale_skipped={self.stale_skipped:.0f} dlq={len(self.dlq)} "
                f"replicator_kills={self.replicator_kills} cut_s={self.cut_s:.0f} "
                + " ".join(f"{k}_s={v:.1f}" for k, v in self.seconds.items()))


def _pw(i: int, n: int) -> str:
    return f"Chaos-{i:03d}-{n:04d}!Aa"


def create_users(s: ChaosStack, n: int, workers: int = 4) -> list[User]:
    cid = s.a["public_client_id"]

    def one(i: int) -> User:
        idp = app_client(s.proxy_a.url, A)
        key = f"chaos-{i:03d}-{uuid.uuid4().hex[:6]}@example.com"
        if s.kind == "email":
            attrs = [{"Name": "email", "Value": key}, {"Name": "name", "Value": "start"}]
        else:
            key = key.split("@")[0].replace("-", "")
            attrs = [{"Name": "email", "Value": f"{key}@example.com"}, {"Name": "name", "Value": "start"}]
        idp.sign_up(ClientId=cid, Username=key, Password=_pw(i, 0), UserAttributes=attrs)
        idp.confirm_sign_up(ClientId=cid, Username=key, ConfirmationCode=latest_code(s.moto_a.endpoint, s.a["pool_id"], key, "SIGN_UP"))
        u = User(key=key, passwords=[_pw(i, 0)], attrs={"name": "start"})
        u.access = idp.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": key, "PASSWORD": _pw(i, 0)})["AuthenticationResult"]["AccessToken"]
        return u

    with ThreadPoolExecutor(workers) as ex:
        return list(ex.map(one, range(n)))


def mutate(s: ChaosStack, users: list[User], total: int, report: Report, progress: list[int], workers: int = 4, seed: int = 7) -> None:
    """`total` mutations spread over the users (each user's in order, users in parallel): about
    a third password changes, the rest attribute updates. Each user ends with a password change,
    so every user has a latest and a previous password."""
    rnd = random.Random(seed)
    per_user: list[list[str]] = [[] for _ in users]
    for k in range(total):
        per_user[k % len(users)].append("password" if rnd.random() < 0.35 else "attr")
    for ops in per_user:
        if ops:
            ops[-1] = "password"
    lock = threading.Lock()
    cid = s.a["public_client_id"]

    def run(ix: int) -> None:
        u, idp = users[ix], app_client(s.proxy_a.url, A)
        for n, op in enumerate(per_user[ix], start=1):
            try:
                if op == "password":
                    new = _pw(ix, n)
                    idp.change_password(AccessToken=u.access, PreviousPassword=u.passwords[-1], ProposedPassword=new)
                    u.passwords.append(new)
                else:
                    change = {"name": f"n{ix}-{n}"} if n % 3 else {"phone_number": f"+1555{ix:03d}{n:04d}"}
                    idp.update_user_attributes(AccessToken=u.access, UserAttributes=[{"Name": k, "Value": v} for k, v in change.items()])
                    u.attrs.update(change)
                with lock:
                    report.acked += 1
            except ClientError as e:
                with lock:
                    report.errors.append(f"{u.key} {op}: {e.response['Error']['Code']}")
                if e.response["Error"]["Code"] == "NotAuthorizedException":
                    u.access = idp.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": u.key, "PASSWORD": u.passwords[-1]})["AuthenticationResult"]["AccessToken"]
            with lock:
                progress[0] += 1

    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(run, range(len(users))))


def capture_event(s: ChaosStack) -> tuple[str, str]:
    """While B's replicator is down: copies one sealed event body off B's inbound queue (left on
    the queue: it comes back after 1 s), a ChangePassword if one is at the head of a group.
    Returns (body, group)."""
    q = s.sqs_b()
    first = None
    deadline = time.time() + 20
    while time.time() < deadline:
        got = q.receive_message(QueueUrl=s.b["inbound_queue_url"], MaxNumberOfMessages=10, VisibilityTimeout=1, WaitTimeSeconds=1, AttributeNames=["All"]).get("Messages", [])
        for m in got:
            if header_of(m["Body"])["action"] == "ChangePassword":
                return m["Body"], m["Attributes"]["MessageGroupId"]
            first = first or (m["Body"], m["Attributes"]["MessageGroupId"])
        if first and not got:
            break
        if first and time.time() > deadline - 15:
            break
    if first:
        return first
    raise AssertionError("no event on B's inbound queue to copy")


def queue_depth(q, url: str) -> int:
    a = q.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


def user_state(idp, pool_id: str, key: str) -> dict:
    u = idp.admin_get_user(UserPoolId=pool_id, Username=key)
    return {"Enabled": u["Enabled"], "UserStatus": u["UserStatus"],
            "attributes": {a["Name"]: a["Value"] for a in u["UserAttributes"] if a["Name"] not in IGNORED}}


def differences(s: ChaosStack, users: list[User]) -> list[str]:
    adm_a, adm_b = client("cognito-idp", s.moto_a.endpoint, A), client("cognito-idp", s.moto_b.endpoint, B)
    out = []
    for u in users:
        try:
            a, b = user_state(adm_a, s.a["pool_id"], u.key), user_state(adm_b, s.b["pool_id"], u.key)
        except ClientError as e:
            out.append(f"{u.key}: {e.response['Error']['Code']}")
            continue
        if a != b:
            out.append(f"{u.key}: A={a} B={b}")
    return out


def signs_in(s: ChaosStack, key: str, password: str) -> bool:
    try:
        app_client(s.proxy_b.url, B).initiate_auth(ClientId=s.a["public_client_id"], AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": key, "PASSWORD": password})
        return True
    except ClientError:
        return False


def wait(fn, timeout: float, interval: float = 0.5, what: str = "condition"):
    return eventually(fn, timeout, interval, what)


def run(s: ChaosStack, n_users: int, n_mutations: int, cut_s: float, throttle: int, converge_s: float, workers: int = 4, log=print) -> tuple[Report, list[User]]:
    """The whole chaos scenario; returns the report and the users (with their latest state).
    Raises AssertionError when the system does not converge in `converge_s`."""
    rep = Report(users=n_users, mutations=n_mutations, cut_s=cut_s)
    t0 = time.time()
    users = create_users(s, n_users, workers)
    rep.seconds["create"] = time.time() - t0
    progress = [0]
    t1 = time.time()
    worker = threading.Thread(target=mutate, args=(s, users, n_mutations, rep, progress, workers), daemon=True)
    worker.start()

    def at(frac: float) -> None:
        while worker.is_alive() and progress[0] < frac * n_mutations:
            time.sleep(0.05)

    # 1. B's replicator is SIGKILLed; while it is down a genuine event is copied off B's queue.
    at(0.15)
    s.kill_rep_b()
    rep.replicator_kills += 1
    rep.captured, group = capture_event(s)
    s.start_rep_b()
    log(f"  replicator B killed and restarted at {progress[0]} mutations; copied event {header_of(rep.captured)['id']}")
    # 2. B's Cognito throttles.
    at(0.35)
    s.faults_b(throttle=throttle)
    log(f"  B throttles the next {throttle} Cognito calls at {progress[0]} mutations")
    # 3. B's network is cut.
    at(0.5)
    s.cut_b()
    log(f"  B's network cut at {progress[0]} mutations for {cut_s:.0f} s")
    time.sleep(cut_s)
    s.restore_b()
    log(f"  B's network back at {progress[0]} mutations")
    # 4. Killed again, mid-batch.
    at(0.7)
    s.kill_rep_b()
    rep.replicator_kills += 1
    s.start_rep_b()
    log(f"  replicator B killed and restarted again at {progress[0]} mutations")
    worker.join()
    rep.seconds["mutate"] = time.time() - t1

    # Converge.
    t2 = time.time()
    q, fb = s.sqs_b(), client("sqs", s.moto_a.endpoint, A)
    wait(lambda: queue_depth(fb, s.a["fallback_queue_url"]) == 0 and queue_depth(q, s.b["inbound_queue_url"]) == 0, converge_s, what="queues drained")
    wait(lambda: not differences(s, users), converge_s, what="pools equal")
    rep.seconds["converge"] = time.time() - t2

    # 5. A stale duplicate (the copied body again, new dedup id) and a forged event (the copied
    # body retargeted at another user's group), once everything else was applied.
    stale_before = metric(_metrics(s.rep_b_metrics), "relay_replication_events_total", outcome="stale")
    q.send_message(QueueUrl=s.b["inbound_queue_url"], MessageBody=rep.captured, MessageGroupId=group, MessageDeduplicationId=f"dup-{uuid.uuid4().hex}")
    victim = next(u for u in users if group_of(u.key) != group)
    rep.forged = json.dumps({**json.loads(rep.captured), "group": group_of(victim.key)})
    q.send_message(QueueUrl=s.b["inbound_queue_url"], MessageBody=rep.forged, MessageGroupId=group_of(victim.key), MessageDeduplicationId=f"forged-{uuid.uuid4().hex}")
    wait(lambda: metric(_metrics(s.rep_b_metrics), "relay_replication_events_total", outcome="stale") >= stale_before + 1, 30, what="stale duplicate skipped")
    wait(lambda: queue_depth(q, s.b["inbound_queue_url"]) == 0 and queue_depth(q, s.b["dlq_url"]) >= 1, 30, what="forged event dead-lettered")
    rep.stale_skipped = metric(_metrics(s.rep_b_metrics), "relay_replication_events_total", outcome="stale")
    pm = _metrics(s.proxy_a.url)
    rep.proxy = {k: metric(pm, f"relay_replication_{k}_total") for k in ("enqueued", "fallback", "lost")}
    seen = {}
    for _ in range(3):
        for m in q.receive_message(QueueUrl=s.b["dlq_url"], MaxNumberOfMessages=10, VisibilityTimeout=0, MessageAttributeNames=["All"], WaitTimeSeconds=1).get("Messages", []):
            seen[m["MessageId"]] = {"body": m["Body"], "reason": m.get("MessageAttributes", {}).get("reason", {}).get("StringValue", "")}
    rep.dlq = list(seen.values())
    rep.dlq_depth = queue_depth(q, s.b["dlq_url"])
    return rep, users
