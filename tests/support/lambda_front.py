"""An Invoke API front for a local Lambda emulator, with fault injection.

`cargo lambda watch` serves the Lambda Invoke API but answers an `Event`
(asynchronous) invocation only when the function has finished, with the function's
own status. AWS answers 202 at once and runs the function in the background. This
front restores that: it answers `Event` invocations with 202 and forwards them to the
emulator in a background thread; `RequestResponse` invocations are relayed as they
are.

Fault injection, for tests and `make soak`:
  --throttle-first N   answer 429 TooManyRequestsException to the first N
                       invocations of each job (by the envelope's `id`)
  --throttle-rate R    answer 429 to a random fraction R of invocations
  --lose-when TEXT     accept (202) an `Event` invocation whose payload contains
                       TEXT and never run it: a function that died without
                       calling back

It prints one JSON line, {"endpoint": ...}, once listening, and stops when stdin
closes, so it never outlives the process that started it. GET /_stats returns the
counts.
"""

import argparse
import json
import random
import sys
import threading
import urllib.request
from http.server import ThreadingHTTPServer

from quiet_http import QuietHandler

lock = threading.Lock()
stats = {"invocations": 0, "throttled": 0, "forwarded": 0, "forward_errors": 0, "lost": 0}
calls_per_job = {}


def forward(backend, path, body, invocation_type):
    request = urllib.request.Request(
        backend + path, data=body, method="POST",
        headers={"content-type": "application/json",
                 "x-amz-invocation-type": invocation_type})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def make_handler(args):
    class Front(QuietHandler):
        def do_GET(self):
            if self.path == "/_stats":
                with lock:
                    body = json.dumps(stats).encode()
                self.reply(200, body, [("content-type", "application/json")])
            else:
                self.reply(404)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if not self.path.startswith("/2015-03-31/functions/"):
                return self.reply(404)
            if not self.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 "):
                return self.reply(403, b'{"message":"missing SigV4 authorization"}')
            try:
                job = json.loads(body).get("id", "")
            except ValueError:
                job = ""
            with lock:
                stats["invocations"] += 1
                calls_per_job[job] = calls_per_job.get(job, 0) + 1
                throttle = (calls_per_job[job] <= args.throttle_first
                            or random.random() < args.throttle_rate)
                if throttle:
                    stats["throttled"] += 1
            if throttle:
                return self.reply(
                    429, b'{"message":"Rate exceeded","Type":"User"}',
                    [("content-type", "application/json"),
                     ("x-amzn-errortype", "TooManyRequestsException")])
            invocation = self.headers.get("x-amz-invocation-type", "RequestResponse")
            if invocation == "Event" and args.lose_when and args.lose_when.encode() in body:
                with lock:
                    stats["lost"] += 1
                return self.reply(202, b"", [("content-type", "application/json")])
            if invocation == "Event":
                def run():
                    status, _ = forward(args.backend, self.path, body, "RequestResponse")
                    with lock:
                        stats["forwarded" if status == 200 else "forward_errors"] += 1
                threading.Thread(target=run, daemon=True).start()
                return self.reply(202, b"", [("content-type", "application/json")])
            status, answer = forward(args.backend, self.path, body, invocation)
            with lock:
                stats["forwarded"] += 1
            self.reply(status, answer, [("content-type", "application/json")])

    return Front


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", required=True, help="the emulator's origin")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--throttle-first", type=int, default=0)
    parser.add_argument("--throttle-rate", type=float, default=0.0)
    parser.add_argument("--lose-when", default="")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"endpoint": f"http://127.0.0.1:{server.server_port}"}), flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
