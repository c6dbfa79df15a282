"""A payment service for the gateway's order workflow (tests/orders.rs).

  POST /charges  {"order_id", "customer", "amount_cents"} with an idempotency-key
                 header: 201 {"id", "amount_cents"}; the same key charges once.
                 The customer's name chooses a fault:
                   "declined…"  402 {"error": "card declined"}, every time
                   "flaky…"     503 on the first two attempts of each order
                   "down…"      503, every time
  POST /refunds  {"idempotency_key"}: 200 {"refunded": charge} for the charge that
                 key made, 404 when it made none; refunding twice is a no-op.
  GET  /ledger   every charge attempt, charge and refund, by order.

Prints {"port": N} once listening on 127.0.0.1 (on --port, if given) and
exits when stdin closes.
"""

import json
import threading
import uuid

from quiet_http import QuietHandler, serve_until_parent_goes

lock = threading.Lock()
attempts = {}  # order id -> charge attempts
charges = {}  # idempotency key -> charge
refunds = {}  # charge id -> order id


class Payments(QuietHandler):
    def send_json(self, status, value):
        self.reply(status, json.dumps(value).encode(), [("content-type", "application/json")])

    def do_GET(self):
        if self.path != "/ledger":
            return self.send_json(404, {"error": "no such path"})
        with lock:
            self.send_json(200, {"attempts": attempts, "charges": charges, "refunds": refunds})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        if self.path == "/charges":
            return self.charge(body)
        if self.path == "/refunds":
            key = body.get("idempotency_key")
            with lock:
                charge = charges.get(key)
                if charge is None:
                    return self.send_json(404, {"error": f"key {key} charged nothing"})
                refunds[charge["id"]] = charge["order_id"]
            return self.send_json(200, {"refunded": charge["id"]})
        self.send_json(404, {"error": "no such path"})

    def charge(self, body):
        key = self.headers.get("idempotency-key")
        order, customer = body.get("order_id"), body.get("customer", "")
        if not key or not order or not isinstance(body.get("amount_cents"), int):
            return self.send_json(400, {"error": "order_id, amount_cents and idempotency-key"})
        with lock:
            attempts[order] = attempts.get(order, 0) + 1
            tries = attempts[order]
            if customer.startswith("declined"):
                return self.send_json(402, {"error": "card declined"})
            if customer.startswith("down") or (customer.startswith("flaky") and tries <= 2):
                return self.send_json(503, {"error": "try again"})
            charge = charges.setdefault(key, {
                "id": "ch_" + uuid.uuid4().hex[:16],
                "order_id": order,
                "amount_cents": body["amount_cents"],
            })
        self.send_json(201, charge)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0, help="a fixed port (make dev); a free one by default")
    serve_until_parent_goes(Payments, parser.parse_args().port)
