"""A webhook receiver for the e2e tests that verifies every delivery with the
official Standard Webhooks library, never with edgeway's own code.

    python webhook_receiver.py <whsec_secret>

Prints {"port": N}, the port it listens on (127.0.0.1 only), and exits when its stdin closes
(the test process ended). It serves:
  POST /ok          verify, 204 (a query string, e.g. /ok?sub=a, tells subscribers apart)
  POST /flaky       verify; the first 2 deliveries of each webhook-id get 500
  POST /slow        verify, answer 429 with Retry-After: 1 on the first delivery
  POST /gone        410 Gone
  POST /down        verify, then always 503
  GET  /received    every delivery so far, as JSON
Unverifiable deliveries get 401 and are recorded with verified = false.
"""

import json
import sys
import threading
from http.server import ThreadingHTTPServer

from quiet_http import QuietHandler

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

webhook = Webhook(sys.argv[1])
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
                    "attempt": attempt,
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
            return self.reply(429, headers=[("retry-after", "1")]) if attempt == 1 else self.reply(204)
        if route == "/gone":
            return self.reply(410)
        if route == "/down":
            return self.reply(503)
        return self.reply(404)


def exit_when_parent_goes():
    # The test holds our stdin; EOF means it is gone, however it ended.
    sys.stdin.read()
    server.shutdown()


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(json.dumps({"port": server.server_address[1]}), flush=True)
threading.Thread(target=exit_when_parent_goes, daemon=True).start()
server.serve_forever()
