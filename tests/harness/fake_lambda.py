"""A small fake of the AWS Lambda Runtime API, so the real Lambda binaries run end to end:
`invoke(event)` queues an event for `GET /runtime/invocation/next` and waits for the
function's `POST /runtime/invocation/<id>/response` (or `/error`)."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


class FakeRuntime:
    def __init__(self, function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:relay") -> None:
        self.function_arn = function_arn
        self.pending: "queue.Queue[tuple[str, dict]]" = queue.Queue()
        self.results: dict[str, tuple[str, object]] = {}
        self.done = threading.Condition()
        self.first_poll_at: float | None = None
        self.init_error: object | None = None
        runtime = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    return json.loads(raw or b"null")
                except ValueError:
                    return raw.decode("utf-8", "replace")

            def do_GET(self):
                if self.path != f"{PREFIX}/invocation/next":
                    self.send_error(404)
                    return
                if runtime.first_poll_at is None:
                    runtime.first_poll_at = time.monotonic()
                while True:
                    try:
                        rid, event = runtime.pending.get(timeout=0.5)
                        break
                    except queue.Empty:
                        if getattr(runtime, "closing", False):
                            try:
                                self.send_error(503)
                            except OSError:
                                pass  # the function process has gone already
                            return
                body = json.dumps(event).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", rid)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", runtime.function_arn)
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self._body()
                parts = self.path[len(PREFIX):].strip("/").split("/")
                if parts[:2] == ["init", "error"]:
                    runtime.init_error = body
                elif len(parts) == 3 and parts[0] == "invocation":
                    with runtime.done:
                        runtime.results[parts[1]] = (parts[2], body)
                        runtime.done.notify_all()
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def env(self, name: str = "relay") -> dict[str, str]:
        return {
            "AWS_LAMBDA_RUNTIME_API": self.address,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_STREAM_NAME": "stream",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        }

    def invoke(self, event: dict, timeout: float = 30.0) -> tuple[str, object]:
        rid = str(uuid.uuid4())
        self.pending.put((rid, event))
        deadline = time.monotonic() + timeout
        with self.done:
            while rid not in self.results:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the function did not answer")
                self.done.wait(left)
            return self.results.pop(rid)

    def close(self) -> None:
        self.closing = True
        self.server.shutdown()


def rest_event(method: str, path: str, headers: dict[str, str], body: str | None, source_ip: str, stage: str = "prod") -> dict:
    """An API Gateway REST (v1) proxy event as the regional API sends it."""
    return {
        "resource": "/{proxy+}" if path != "/" else "/",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012", "resourceId": "abc", "stage": stage, "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": source_ip, "userAgent": "test"}, "resourcePath": "/", "httpMethod": method,
            "apiId": "api123", "path": f"/{stage}{path}", "protocol": "HTTP/1.1",
        },
        "body": body,
        "isBase64Encoded": False,
    }
