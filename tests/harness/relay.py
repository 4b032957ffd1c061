"""Start cognito-relay's real binaries (proxy, replicator) against emulated regions.

Used by the end-to-end tests and by scripts/local-stack.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

from .stack import DUMMY_CREDENTIALS, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def binary(name: str) -> str:
    profile = os.environ.get("RELAY_PROFILE", "debug")
    path = os.path.join(TARGET, profile, name)
    if not os.path.exists(path):
        raise RuntimeError(f"{path} is missing: run `cargo build --workspace` first")
    return path


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "AWS_"))}
    env.update({
        "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["aws_secret_access_key"],
        "AWS_EC2_METADATA_DISABLED": "true",
        "RUST_LOG": os.environ.get("RELAY_TEST_LOG", "info"),
    })
    return env


def proxy_env(home: dict[str, Any], peer: dict[str, Any] | None, port: int, **extra: str) -> dict[str, str]:
    env = base_env()
    env.update({
        "RELAY_REGION": home["region"],
        "RELAY_USER_POOL_ID": home["pool_id"],
        "RELAY_USERNAME_ATTRIBUTES": home["username_attributes"],
        "RELAY_COGNITO_ENDPOINT": home["endpoint"] + "/",
        "RELAY_AWS_ENDPOINT": home["endpoint"],
        "RELAY_CLIENTS_SECRET_ID": home["clients_secret_id"],
        "RELAY_REPLICATION_KEY_SECRET_ID": home["replication_key_secret_id"],
        "RELAY_REFRESH_KEY_SECRET_ID": home["refresh_key_secret_id"],
        "RELAY_BRIDGE_KEY_SECRET_ID": home["bridge_key_secret_id"],
        "RELAY_APP_USER_POOL_ID": home.get("app_pool_id", ""),
        "RELAY_STATE_TABLE": home["state_table"],
        "RELAY_FALLBACK_QUEUE_URL": home["fallback_queue_url"],
        # The fallback forwarder sets unreadable messages aside here, with the reason.
        "RELAY_DLQ_URL": home["dlq_url"],
        "RELAY_DRAIN_PARAMETER": home["drain_parameter"],
        "RELAY_LISTEN": f"127.0.0.1:{port}",
        "RELAY_HEALTH_CACHE_MS": "1000",
        "RELAY_CONTROL_CACHE_MS": "1000",
    })
    if peer is not None:
        env.update({
            "RELAY_PEER_REGION": peer["region"],
            "RELAY_PEER_QUEUE_URL": peer["inbound_queue_url"],
            "RELAY_PEER_USER_POOL_ID": peer["pool_id"],
            "RELAY_PEER_AWS_ENDPOINT": peer["endpoint"],
        })
    env.update(extra)
    return env


def replicator_env(home: dict[str, Any], **extra: str) -> dict[str, str]:
    env = base_env()
    env.update({
        "RELAY_REGION": home["region"],
        "RELAY_USER_POOL_ID": home["pool_id"],
        "RELAY_USERNAME_ATTRIBUTES": home["username_attributes"],
        "RELAY_AWS_ENDPOINT": home["endpoint"],
        "RELAY_REPLICATION_KEY_SECRET_ID": home["replication_key_secret_id"],
        "RELAY_INBOUND_QUEUE_URL": home["inbound_queue_url"],
        "RELAY_PEER_USER_POOL_ID": home["peer_pool_id"],
        "RELAY_APP_USER_POOL_ID": home.get("app_pool_id", ""),
        "RELAY_STATE_TABLE": home["state_table"],
        "RELAY_DLQ_URL": home["dlq_url"],
        "RELAY_ORIGIN_SUB_ATTRIBUTE": home.get("origin_sub_attribute", "custom:origin_sub"),
    })
    env.update(extra)
    return env


def wait_http(url: str, timeout: float = 20.0, ok=(200, 503)) -> None:
    deadline = time.time() + timeout
    last: Exception | None = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status in ok:
                    return
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return
            last = e
        except Exception as e:  # noqa: BLE001 - still starting
            last = e
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up: {last}")


class Proc:
    """A started binary, its log file and (for the proxy) its URL."""

    def __init__(self, name: str, env: dict[str, str], log_path: str, url: str | None = None):
        self.name, self.env, self.log_path, self.url = name, env, log_path, url
        self.log = open(log_path, "ab")
        self.p = subprocess.Popen([binary(name)], env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self, sig_kill: bool = False) -> None:
        if self.p.poll() is None:
            (self.p.kill if sig_kill else self.p.terminate)()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()

    def logs(self) -> str:
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


def start_proxy(home, peer, log_path: str, port: int | None = None, **extra: str) -> Proc:
    port = port or free_port()
    proc = Proc("proxy", proxy_env(home, peer, port, **extra), log_path, url=f"http://127.0.0.1:{port}")
    wait_http(proc.url + "/health")
    return proc


def start_replicator(home, log_path: str, **extra: str) -> Proc:
    return Proc("replicator", replicator_env(home, **extra), log_path)


def trigger_env(home: dict[str, Any], **extra: str) -> dict[str, str]:
    """The auth-trigger Lambda's environment in region `home`."""
    env = base_env()
    env.update({
        "RELAY_REGION": home["region"],
        "AWS_REGION": home["region"],
        "AWS_DEFAULT_REGION": home["region"],
        "RELAY_AWS_ENDPOINT": home["endpoint"],
        "AWS_ENDPOINT_URL": home["endpoint"],
        "RELAY_BRIDGE_KEY_SECRET_ID": home["bridge_key_secret_id"],
        # The triggers act only for the relay's own regional client (the CDK sets the same).
        "RELAY_TRIGGER_CLIENT_IDS": home["relay_client_id"],
    })
    env.update(extra)
    return env


def start_auth_triggers(pair, log_dir: str, name: str = "auth-trigger", **extra: str) -> list:
    """Runs the real `auth-trigger` binary under a fake Lambda runtime in each region of `pair`,
    registers it with that region's strict_moto and attaches it to the pool as the Define /
    Create / Verify Auth Challenge triggers. Returns the LambdaHosts (`.stop()` them)."""
    from .lambda_host import LambdaHost, set_auth_triggers
    from .stack import client

    hosts = []
    try:
        for side in pair:
            host = LambdaHost([binary(name)], trigger_env(side, **extra),
                              os.path.join(log_dir, f"{name}-{side['region']}.log"), side["region"], name)
            hosts.append(host)
            host.register(side["endpoint"])
            set_auth_triggers(client("cognito-idp", side["endpoint"], side["region"]), side["pool_id"], host.arn)
    except Exception:
        for host in hosts:
            host.stop()
        raise
    return hosts
