"""A webhook receiver for the e2e tests that verifies every delivery with the
official Standard Webhooks library, never with edgeway's own code.

    python webhook_receiver.py <whsec_secret> [<whsec_secret> ...]

Prints {"port": N}, the port it listens on (127.0.0.1 only), and exits when its stdin closes
(the test process ended). It serves:
  POST /ok          verify, 204 (a query string, e.g. /ok?sub=a, tells subscribers apart)
  POST /flaky       verify; the first 2 deliveries of each webhook-id get 500
  POST /slow        verify, answer 429 with Retry-After: 8 on the first delivery
                    (longer than the consumer's first backoff window of 2 s)
  POST /endless     verify, then 200 with a body that streams without end (for at
                    most 60 s, until the client hangs up)
  POST /gone        410 Gone
  POST /down        verify, then always 503
  GET  /received    every delivery so far, as JSON
Unverifiable deliveries (by the first secret) get 401 and are recorded with
verified = false; verified_each says, per secret given, whether the delivery's
signatures verify with it (one v1 signature per secret during a rotation).
"""

import json
import sys
import threading
import time

from quiet_http import QuietHandler, serve_until_parent_goes

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

webhooks = [Webhook(secret) for secret in sys.argv[1:]]
webhook = webhooks[0]
# What /slow asks for; tests/fanout.rs asserts the redelivery waited this long.
RETRY_AFTER = 8
lock = threading.Lock()
received = []
attempts = {}


class Handler(QuietHandler):
    def do_GET(self):
        if self.path != "/received":
            return self.reply(404)
        with lock:
            body = json.dumps(received).encode()
        self.reply(200, body, [("content-type", "application/json")])

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        msg_id = headers.get("webhook-id", "")
        try:
            payload = webhook.verify(body, headers)
            verified = True
        except WebhookVerificationError:
            payload, verified = None, False
        verified_each = []
        for each in webhooks:
            try:
                each.verify(body, headers)
                verified_each.append(True)
            except WebhookVerificationError:
                verified_each.append(False)
        route = self.path.split("?")[0]
        with lock:
            key = (self.path, msg_id)
            attempts[key] = attempts.get(key, 0) + 1
            attempt = attempts[key]
            received.append(
                {
                    "path": self.path,
                    "id": msg_id,
                    "verified": verified,
                    "verified_each": verified_each,
                    "attempt": attempt,
                    "at": time.monotonic(),
                    "type": payload.get("type") if payload else None,
                    "attributes": payload.get("attributes") if payload else None,
                    "signatures": headers.get("webhook-signature", "").count("v1,"),
                }
            )
        if not verified:
            return self.reply(401)
        if route == "/ok":
            return self.reply(204)
        if route == "/flaky":
            return self.reply(500 if attempt <= 2 else 204)
        if route == "/slow":
            return self.reply(429, headers=[("retry-after", str(RETRY_AFTER))]) if attempt == 1 else self.reply(204)
        if route == "/endless":
            return self.stream_without_end()
        if route == "/gone":
            return self.reply(410)
        if route == "/down":
            return self.reply(503)
        return self.reply(404)


def stream_without_end(self):
    # HTTP/1.0 without a length: the body ends only when the connection closes.
    self.send_response(200)
    self.send_header("content-type", "application/octet-stream")
    self.end_headers()
    chunk = b"x" * 65536
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            self.wfile.write(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass


Handler.stream_without_end = stream_without_end


serve_until_parent_goes(Handler)
