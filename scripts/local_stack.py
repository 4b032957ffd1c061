"""Starts a local two-region cognito-relay: two strict moto servers (one per region), a pool,
app clients, secrets, queues and the drain switch in each, a proxy and a replicator per
region. Prints the endpoints and an example call, runs a short demo (a sign-up through
region A appears in region B's pool, with the measured lag), then keeps running until Ctrl-C.
Writes .local/relay.json, the `relayctl --config` file for this stack."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.harness.relay import start_auth_triggers, start_proxy, start_replicator  # noqa: E402
from tests.harness.stack import app_client, client, free_port, latest_code, provision_pair, route53_health_check, start_strict_moto, stop_strict_moto  # noqa: E402


def relayctl_config(a, b, proxy_a, proxy_b, metrics, route53_endpoint=None) -> dict:
    """The relayctl deployment file. With `route53_endpoint`, each region gets a Route 53 health
    check on its proxy's /health in that emulator (Route 53 is global: region B's emulator
    plays it), which `relayctl failover`/`failback` wait on."""
    def region(side, proxy, role):
        extra = {}
        if route53_endpoint:
            extra["health_check_id"] = route53_health_check(route53_endpoint, proxy.url + "/health")
        return {**extra,
            "replicator_metrics_url": metrics[side["region"]],
            "name": side["region"], "role": role, "health_url": proxy.url + "/health",
            "user_pool_id": side["pool_id"], "username_attributes": side["username_attributes"],
            "inbound_queue_url": side["inbound_queue_url"], "dlq_url": side["dlq_url"],
            "fallback_queue_url": side["fallback_queue_url"], "drain_parameter": side["drain_parameter"],
            "aws_endpoint": side["endpoint"],
        }
    cfg = {"regions": [region(a, proxy_a, "primary"), region(b, proxy_b, "standby")]}
    if route53_endpoint:
        cfg["route53_endpoint"] = route53_endpoint
    return cfg


def demo(a, b, proxy_a) -> None:
    idp = app_client(proxy_a.url, a["region"])
    email = f"demo-{uuid.uuid4().hex[:8]}@example.com"
    username = email if a["username_attributes"] else f"demo{uuid.uuid4().hex[:8]}"
    idp.sign_up(ClientId=a["public_client_id"], Username=username, Password="Demo-Passw0rd!", UserAttributes=[{"Name": "email", "Value": email}])
    code = latest_code(a["endpoint"], a["pool_id"], username, "SIGN_UP")
    idp.confirm_sign_up(ClientId=a["public_client_id"], Username=username, ConfirmationCode=code)
    t0 = time.time()
    adm = client("cognito-idp", b["endpoint"], b["region"])
    while time.time() - t0 < 20:
        try:
            u = adm.admin_get_user(UserPoolId=b["pool_id"], Username=username)
            if u["Enabled"]:
                print(f"demo: signed up and confirmed {username} through region A's proxy;"
                      f" it is in region B's pool ({b['pool_id']}, status {u['UserStatus']}) after {1000 * (time.time() - t0):.0f} ms")
                return
        except adm.exceptions.UserNotFoundException:
            pass
        time.sleep(0.05)
    print("demo: the user did not reach region B within 20 s; see .local/*.log", file=sys.stderr)
    raise SystemExit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kind", choices=["username", "email"], default="email", help="pool sign-in kind (default: email)")
    ap.add_argument("--moto-ports", default="5101,5102")
    ap.add_argument("--proxy-ports", default="8081,8082")
    ap.add_argument("--no-demo", action="store_true")
    ap.add_argument("--exit-after-demo", action="store_true", help="stop everything after the demo (used by the tests)")
    ap.add_argument("--state-dir", default=os.path.join(ROOT, ".local"), help="logs and relay.json (default: .local/)")
    args = ap.parse_args()
    logdir = args.state_dir
    os.makedirs(logdir, exist_ok=True)
    mp = [int(p) for p in args.moto_ports.split(",")]
    pp = [int(p) for p in args.proxy_ports.split(",")]
    procs = []
    moto_a = start_strict_moto(mp[0], log_path=os.path.join(logdir, "moto-a.log"))
    moto_b = start_strict_moto(mp[1], log_path=os.path.join(logdir, "moto-b.log"))
    try:
        a, b = provision_pair(moto_a.endpoint, "eu-west-1", moto_b.endpoint, "eu-central-1", args.kind)
        # The auth-trigger Lambda in both regions (the standby sign-in bridge mints through it).
        procs += start_auth_triggers((a, b), logdir)
        proxy_a = start_proxy(a, b, os.path.join(logdir, "proxy-a.log"), port=pp[0])
        proxy_b = start_proxy(b, a, os.path.join(logdir, "proxy-b.log"), port=pp[1])
        metrics = {}
        for side, name in ((a, "a"), (b, "b")):
            port = free_port()
            metrics[side["region"]] = f"http://127.0.0.1:{port}/metrics"
            procs.append(start_replicator(side, os.path.join(logdir, f"replicator-{name}.log"), RELAY_METRICS_LISTEN=f"127.0.0.1:{port}"))
        procs += [proxy_a, proxy_b]
        with open(os.path.join(logdir, "relay.json"), "w") as f:
            json.dump(relayctl_config(a, b, proxy_a, proxy_b, metrics, route53_endpoint=moto_b.endpoint), f, indent=2)
        print(f"""
cognito-relay local stack ({args.kind} sign-in pools), logs in .local/
  region A  eu-west-1     proxy {proxy_a.url}   emulator {a['endpoint']}   pool {a['pool_id']}
  region B  eu-central-1  proxy {proxy_b.url}   emulator {b['endpoint']}   pool {b['pool_id']}
  app ClientId (both regions): {a['public_client_id']}

Example call (any AWS SDK works; point its Cognito endpoint at the proxy):
  .venv/bin/python -c "import boto3; c=boto3.client('cognito-idp', endpoint_url='{proxy_a.url}', region_name='eu-west-1', aws_access_key_id='x', aws_secret_access_key='x'); print(c.sign_up(ClientId='{a['public_client_id']}', Username='me@example.com', Password='Passw0rd!x', UserAttributes=[{{'Name':'email','Value':'me@example.com'}}]))"
  curl -s {proxy_a.url}/health
  cargo run -q -p relayctl -- --config .local/relay.json status
""", flush=True)
        if not args.no_demo:
            demo(a, b, proxy_a)
        if args.exit_after_demo:
            return
        print("running; Ctrl-C to stop", flush=True)
        # Block the signals first so that sigwait receives them and the cleanup below runs.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        for p in procs:
            p.stop()
        stop_strict_moto(moto_a)
        stop_strict_moto(moto_b)


if __name__ == "__main__":
    main()
