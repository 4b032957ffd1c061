"""A Lambda function that an emulated Cognito can invoke: the fake Lambda Runtime API
(fake_lambda.py), the function's process polling it (the real binary, or any runtime client),
and a small invoke endpoint in front, shaped like the Lambda Invoke API:

    POST <host.url>  body = event JSON
    -> 200, body = the function's output; on a function error also `X-Amz-Function-Error:
       Unhandled` and body {"errorType", "errorMessage"}; 504 if the function did not answer.

strict_moto invokes Cognito triggers through it once told `POST /_strict/lambda {"arn", "url"}`
(`LambdaHost.register(endpoint)`). One host runs one function in one emulated region.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Sequence

from .fake_lambda import FakeRuntime
from .stack import strict_post

ACCOUNT = "123456789012"


def function_arn(region: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"


class LambdaHost:
    def __init__(self, command: Sequence[str], env: dict[str, str], log_path: str, region: str, name: str,
                 timeout: float = 30.0) -> None:
        self.arn = function_arn(region, name)
        self.region, self.name, self.timeout, self.log_path = region, name, timeout, log_path
        self.runtime = FakeRuntime(self.arn)
        self.invocations = 0
        host = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                try:
                    event = json.loads(self.rfile.read(n) or b"null")
                except ValueError:
                    self._answer(400, {"errorType": "InvalidRequestContentException", "errorMessage": "not JSON"})
                    return
                host.invocations += 1
                try:
                    kind, body = host.runtime.invoke(event, timeout=host.timeout)
                except TimeoutError:
                    self._answer(504, {"errorType": "Timeout", "errorMessage": "the function did not answer"})
                    return
                self._answer(200, body, function_error=(kind == "error"))

            def _answer(self, status: int, body: object, function_error: bool = False) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if function_error:
                    self.send_header("X-Amz-Function-Error", "Unhandled")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/invoke"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        full_env = dict(env)
        full_env.update(self.runtime.env(name))
        full_env.setdefault("AWS_REGION", region)
        full_env.setdefault("AWS_DEFAULT_REGION", region)
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(list(command), env=full_env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def register(self, endpoint: str, timeout: float | None = None) -> None:
        """Tell the strict_moto server at `endpoint` to invoke this function for `self.arn`."""
        payload: dict[str, object] = {"arn": self.arn, "url": self.url}
        if timeout is not None:
            payload["timeout"] = timeout
        strict_post(endpoint, "lambda", payload)

    def logs(self) -> str:
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.runtime.close()
        self.server.shutdown()
        self.log.close()


def set_auth_triggers(idp, pool_id: str, arn: str | None) -> None:
    """Attach (or with arn=None detach) one function as the pool's Define / Create / Verify Auth
    Challenge triggers, keeping the pool's other settings (UpdateUserPool resets what it is not
    given, in Cognito and in strict_moto)."""
    pool = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    keep = {k: pool[k] for k in ("Policies", "AutoVerifiedAttributes", "MfaConfiguration",
                                  "AccountRecoverySetting", "AdminCreateUserConfig",
                                  "UserAttributeUpdateSettings") if pool.get(k)}
    config = dict(pool.get("LambdaConfig") or {})
    for trigger in ("DefineAuthChallenge", "CreateAuthChallenge", "VerifyAuthChallengeResponse"):
        if arn is None:
            config.pop(trigger, None)
        else:
            config[trigger] = arn
    idp.update_user_pool(UserPoolId=pool_id, LambdaConfig=config, **keep)


def python_command(script: str) -> list[str]:
    """A Python runtime client (e.g. toy_trigger.py) run with this interpreter."""
    import sys

    return [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), script)]
