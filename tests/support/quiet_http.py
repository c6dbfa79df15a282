"""The shared base of the test helpers' HTTP handlers: no access log, one reply()."""

from http.server import BaseHTTPRequestHandler


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve_until_parent_goes(handler, port=0):
    """Serves `handler` on `port` of 127.0.0.1 (a free one by default),
    announces {"port": N} on stdout, and returns once stdin closes: the test
    holds it, so EOF means the test is gone, however it ended."""
    import json
    import sys
    import threading
    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    print(json.dumps({"port": server.server_address[1]}), flush=True)

    def exit_when_parent_goes():
        sys.stdin.read()
        server.shutdown()

    threading.Thread(target=exit_when_parent_goes, daemon=True).start()
    server.serve_forever()
