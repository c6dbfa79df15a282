"""Webhook receivers for the fault-injected soak (tests/soak.rs), verifying every
delivery with the official Standard Webhooks library.

    python soak_receiver.py <whsec_secret> <seed>

Routes:
  POST /healthy      verify, 204
  POST /flaky        verify; 30% of deliveries get 500 or 429, all get 0-80 ms of latency
  POST /outage       verify, 204, except during an outage: then the connection is
                     dropped without an answer (the subscriber is down)
  POST /_outage?seconds=N   start an outage of N seconds
  GET  /stats        per route: attempts, delivered ids, duplicates, delivery delays

A success is recorded once per webhook-id; later successes of the same id count as
duplicates. The delay is arrival time minus the event's published_at_ms.
Prints {"port": N} and exits when stdin closes.
"""

import json
import random
import sys
import threading
import time
from http.server import ThreadingHTTPServer

from quiet_http import QuietHandler

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

webhook = Webhook(sys.argv[1])
rng = random.Random(int(sys.argv[2]))
lock = threading.Lock()
outage_until = 0.0
routes = {
    name: {"attempts": 0, "unverified": 0, "refused": 0, "delivered": {}, "duplicates": 0}
    for name in ("/healthy", "/flaky", "/outage")
}


class Handler(QuietHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path != "/stats":
            return self.reply(404)
        with lock:
            out = {}
            for name, r in routes.items():
                delays = sorted(r["delivered"].values())
                out[name] = {
                    "attempts": r["attempts"],
                    "unverified": r["unverified"],
                    "refused": r["refused"],
                    "duplicates": r["duplicates"],
                    "delivered_ids": list(r["delivered"].keys()),
                    "delays_ms": delays,
                }
        self.reply(200, json.dumps(out).encode(), [("content-type", "application/json")])

    def do_POST(self):
        global outage_until
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        route, _, query = self.path.partition("?")
        if route == "/_outage":
            seconds = float(query.split("=", 1)[1])
            with lock:
                outage_until = time.time() + seconds
            return self.reply(204)
        if route not in routes:
            return self.reply(404)
        headers = {k.lower(): v for k, v in self.headers.items()}
        with lock:
            routes[route]["attempts"] += 1
            down = route == "/outage" and time.time() < outage_until
            fail = route == "/flaky" and rng.random() < 0.30
            latency = rng.uniform(0, 0.08) if route == "/flaky" else 0
            failure_status = rng.choice((500, 429))
        if down:
            with lock:
                routes[route]["refused"] += 1
            # Down: no answer at all.
            self.close_connection = True
            return
        try:
            event = webhook.verify(body, headers)
        except WebhookVerificationError:
            with lock:
                routes[route]["unverified"] += 1
            return self.reply(401)
        if latency:
            time.sleep(latency)
        if fail:
            with lock:
                routes[route]["refused"] += 1
            return self.reply(failure_status)
        delay = time.time() * 1000 - event["published_at_ms"]
        with lock:
            r = routes[route]
            if headers["webhook-id"] in r["delivered"]:
                r["duplicates"] += 1
            else:
                r["delivered"][headers["webhook-id"]] = round(delay, 1)
        self.reply(204)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(json.dumps({"port": server.server_address[1]}), flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.stdin.read()
server.shutdown()
