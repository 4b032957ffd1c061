"""An upstream that records what the proxy sends (for wire-level assertions) and answers a
fixed Cognito-like success."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Capture:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        cap = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                cap.requests.append({"target": self.headers.get("X-Amz-Target"), "body": json.loads(self.rfile.read(n) or b"{}")})
                body = b'{"CodeDeliveryDetails":{"DeliveryMedium":"EMAIL"}}'
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("x-amzn-RequestId", "req-1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
