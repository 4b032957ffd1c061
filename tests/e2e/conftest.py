"""Two emulated regions (strict moto), a proxy and a replicator per region, real binaries."""

from __future__ import annotations

import os
import tempfile
import time

import pytest

from tests.harness.relay import start_proxy, start_replicator
from tests.harness.wait import eventually  # noqa: F401 - the tests import it from here
from tests.harness.stack import app_client, free_port, provision_pair, start_strict_moto, stop_strict_moto

REGION_A, REGION_B = "eu-west-1", "eu-central-1"


class Regions:
    def __init__(self, kind: str, workdir: str):
        self.kind = kind
        self.workdir = workdir
        self.moto_a = start_strict_moto(free_port(), log_path=os.path.join(workdir, "moto-a.log"))
        self.moto_b = start_strict_moto(free_port(), log_path=os.path.join(workdir, "moto-b.log"))
        self.a, self.b = provision_pair(self.moto_a.endpoint, REGION_A, self.moto_b.endpoint, REGION_B, kind)
        self.proxy_a = start_proxy(self.a, self.b, os.path.join(workdir, "proxy-a.log"))
        self.proxy_b = start_proxy(self.b, self.a, os.path.join(workdir, "proxy-b.log"))
        self.rep_a = start_replicator(self.a, os.path.join(workdir, "replicator-a.log"))
        self.rep_b = start_replicator(self.b, os.path.join(workdir, "replicator-b.log"))
        self.public_client_id = self.a["public_client_id"]

    def client(self, url: str, region: str = REGION_A):
        """A real boto3 cognito-idp client pointed at a proxy (or emulator); no retries, so a
        test sees exactly what the server answered."""
        return app_client(url, region)

    def admin(self, side: dict):
        return self.client(side["endpoint"], side["region"])

    def close(self) -> None:
        for p in (self.proxy_a, self.proxy_b, self.rep_a, self.rep_b):
            p.stop()
        stop_strict_moto(self.moto_a)
        stop_strict_moto(self.moto_b)


@pytest.fixture(scope="module", params=["username", "email"])
def regions(request):
    workdir = tempfile.mkdtemp(prefix=f"relay-{request.param}-")
    r = Regions(request.param, workdir)
    yield r
    r.close()
