"""Generates tests/corpus/bad_requests.jsonl: malformed requests for the gateway,
and tests/corpus/bad_tokens.jsonl: bearer JWTs that tests/auth.rs sends to the
conformance worker's token routes, each of which must be a 401 problem.

Each line is one case: {"name", "expect", "raw"} where `raw` is the whole HTTP/1.1
request, base64-encoded, so bytes that no HTTP client would send (invalid UTF-8,
NUL, lying content-length, unknown methods) go out exactly as written.
The gateway's management API needs an API key, so `tests/bad_input.rs` adds an
`authorization` line with the root key after the request line of every case that
carries no credential of its own and is not marked "anonymous"; the rest goes
out as written. It replays every case against the gateway in workerd and checks
that each answer is the expected 4xx as application/problem+json with a useful
detail, that nothing answers 5xx, and that /healthz still answers afterwards.

Run `python3 tests/corpus/generate.py` after changing it; the output is committed.
"""

import base64
import json
import os

CASES = []
SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


def raw(method, path, headers=(), body=b"", content_length=None):
    if isinstance(body, str):
        body = body.encode()
    lines = [f"{method} {path} HTTP/1.1".encode(), b"host: 127.0.0.1", b"connection: close"]
    for name, value in headers:
        lines.append(name.encode() + b": " + (value if isinstance(value, bytes) else value.encode()))
    length = len(body) if content_length is None else content_length
    chunked = any(name == "transfer-encoding" for name, _ in headers)
    if not chunked and (body or content_length is not None or method in ("POST", "PUT", "PATCH")):
        lines.append(b"content-length: " + str(length).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class Repeat:
    """A large body of one repeated byte: stored as a rule, not as megabytes."""

    def __init__(self, byte, count):
        self.byte, self.count = byte, count


def case(name, expect, method, path, headers=(), body=b"", content_length=None, chunked=False, anonymous=False):
    pad = None
    if isinstance(body, Repeat):
        # `chunked`: the test sends the bytes as one chunk, with no content-length.
        pad = {"byte": body.byte, "count": body.count, "chunked": chunked}
        if content_length is None and not chunked:
            content_length = body.count
        body = b""
    entry = {
        "name": name,
        "expect": expect,
        "raw": base64.b64encode(raw(method, path, headers, body, content_length)).decode(),
    }
    if pad:
        entry["pad"] = pad
    if anonymous:
        entry["anonymous"] = True
    CASES.append(entry)


JSON = [("content-type", "application/json")]
JSON_ENDPOINTS = [
    ("publish", "POST", "/v1/topics/corpus/events"),
    ("subscribe", "POST", "/v1/topics/corpus/subscriptions"),
    ("wordcount job", "POST", "/v1/jobs/wordcount"),
]

# 1. Invalid and truncated JSON.
BROKEN_JSON = [
    "", "{", "}", "[", "{\"type\":", "{\"type\": \"a\",}", "{type: \"a\"}", "{'type': 'a'}",
    "nul", "tru", "{\"type\": \"a\" \"data\": 1}", "{\"type\": \"\\u12\"}", "{\"type\": \"a\"}}",
    "\"just a string", "{\"type\": 01}", "\ufeff{\"type\": \"a\"}",
]
for label, method, path in JSON_ENDPOINTS:
    for i, text in enumerate(BROKEN_JSON):
        case(f"{label}: broken JSON #{i}", 400, method, path, JSON, text)

# 2. Well-formed JSON of the wrong shape.
WRONG_EVENTS = [
    "{}", "[]", "1", "null", "\"event\"", "{\"type\": 1}", "{\"type\": null}", "{\"type\": \"\"}",
    "{\"type\": \"" + "t" * 200 + "\"}", "{\"type\": \"a\", \"attributes\": []}",
    "{\"type\": \"a\", \"attributes\": {\"k\": {\"nested\": 1}}}",
    "{\"type\": \"a\", \"attributes\": {\"k\": [1, 2]}}", "{\"type\": \"a\", \"unknown\": 1}",
    "{\"type\": [\"a\"]}", "{\"type\": {\"a\": 1}}",
]
for i, text in enumerate(WRONG_EVENTS):
    case(f"publish: wrong shape #{i}", 422, "POST", "/v1/topics/corpus/events", JSON, text)
WRONG_SUBSCRIPTIONS = [
    "{}", "{\"target\": 1}", "{\"target\": {}}", "{\"target\": {\"kind\": \"ftp\"}}",
    "{\"target\": {\"kind\": \"webhook\"}}", "{\"target\": {\"kind\": \"webhook\", \"url\": 5, \"secrets\": []}}",
    "{\"target\": {\"kind\": \"queue\"}}", "{\"target\": {\"kind\": \"queue\", \"binding\": \"no spaces allowed\"}}",
    "{\"target\": {\"kind\": \"lambda\", \"function\": \"bad name!\"}}",
    "{\"target\": {\"kind\": \"lambda\", \"function\": \"f\", \"qualifier\": \"v/1\"}}",
    "{\"target\": {\"kind\": \"queue\", \"binding\": \"Q\"}, \"filter\": 3}",
    "{\"target\": {\"kind\": \"queue\", \"binding\": \"Q\"}, \"filter\": {\"type\": []}}",
    "{\"target\": {\"kind\": \"queue\", \"binding\": \"Q\"}, \"filter\": {\"nope\": {\"gt\": 1}}}",
    "{\"target\": {\"kind\": \"webhook\", \"url\": \"https://example.com/\", \"secrets\": [\"not-a-secret\"]}}",
    "{\"target\": {\"kind\": \"webhook\", \"url\": \"https://example.com/\", \"secrets\": []}}",
    "{\"target\": {\"kind\": \"queue\", \"binding\": \"Q\"}, \"extra\": true}",
]
for i, text in enumerate(WRONG_SUBSCRIPTIONS):
    # Every wrong shape is a 422, malformed and missing secrets alike.
    case(f"subscribe: wrong shape #{i}", 422, "POST", "/v1/topics/corpus/subscriptions", JSON, text)
for i, text in enumerate(["{}", "{\"text\": 1}", "{\"text\": null}", "[\"text\"]", "{\"txt\": \"a\"}"]):
    case(f"wordcount job: wrong shape #{i}", 422, "POST", "/v1/jobs/wordcount", JSON, text)

# 3. Deeply nested JSON. A typed body stops at the first level that does not fit
# its type (422); one read as a generic value stops at serde_json's 128 levels (400).
for label, method, path in JSON_ENDPOINTS:
    expect = 400 if label == "wordcount job" else 422
    for depth in (200, 1000):
        case(f"{label}: nested {depth} arrays", expect, method, path, JSON, "[" * depth + "]" * depth)
        case(f"{label}: nested {depth} objects", expect, method, path, JSON,
             "{\"a\":" * depth + "1" + "}" * depth)
case("wordcount job: a number out of range", 400, "POST", "/v1/jobs/wordcount", JSON, "{\"text\": 1e999999}")

# 4. Invalid UTF-8.
for label, method, path in JSON_ENDPOINTS:
    case(f"{label}: invalid UTF-8", 400, method, path, JSON, b"{\"type\": \"\xff\xfe\"}")
    case(f"{label}: lone surrogate bytes", 400, method, path, JSON, b"{\"type\": \"\xed\xa0\x80\"}")
case("kv put: invalid UTF-8", 400, "PUT", "/v1/kv/corpus-utf8", [("content-type", "text/plain")], b"\xc3\x28")
case("queued put: invalid UTF-8", 400, "POST", "/v1/queued/kv/corpus-utf8", [("content-type", "text/plain")], b"ok\xffno")

# 5. Bodies over the limit, and a lying content-length.
MIB = 1 << 20
case("kv put: 1 MiB + 1", 413, "PUT", "/v1/kv/corpus-big", [("content-type", "text/plain")], Repeat(ord("x"), MIB + 1))
case("publish: 1 MiB + 1", 413, "POST", "/v1/topics/corpus/events", JSON, Repeat(ord(" "), MIB + 1))
case("subscribe: 1 MiB + 1", 413, "POST", "/v1/topics/corpus/subscriptions", JSON, Repeat(ord(" "), MIB + 1))
case("publish: event over 64 KiB", 413, "POST", "/v1/topics/corpus/events", JSON,
     json.dumps({"type": "big", "data": "d" * (70 * 1024)}))
case("job: input over 8 MiB", 413, "POST", "/v1/jobs/wordcount", JSON, Repeat(ord(" "), 8 * MIB + 1))
# No content-length at all: a chunked 2 MiB body must be cut off by the bytes read.
CHUNKED = [("content-type", "text/plain"), ("transfer-encoding", "chunked")]
case("kv put: 2 MiB chunked, no content-length", 413, "PUT", "/v1/kv/corpus-lie", CHUNKED,
     Repeat(ord("y"), 2 * MIB), chunked=True)
case("publish: 2 MiB chunked, no content-length", 413, "POST", "/v1/topics/corpus/events",
     [("content-type", "application/json"), ("transfer-encoding", "chunked")],
     Repeat(ord(" "), 2 * MIB), chunked=True)
# Refused from content-length alone, before the worker reads a byte. (The body is
# sent in full: the local runtime's proxy reads a request whole before the worker
# sees it, so a declared length with no body would just wait.)
case("kv put: 12 MiB", 413, "PUT", "/v1/kv/corpus-declared", [("content-type", "text/plain")],
     Repeat(ord("z"), 12 * MIB))
case("publish: 10 MiB", 413, "POST", "/v1/topics/corpus/events", JSON, Repeat(ord(" "), 10 * MIB))

# 6. Missing or wrong content-type.
for label, method, path in JSON_ENDPOINTS:
    for ctype in (None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx", "json"):
        headers = [] if ctype is None else [("content-type", ctype)]
        case(f"{label}: content-type {ctype}", 415, method, path, headers, "{\"type\": \"a\", \"text\": \"b\"}")
case("thumbnail job: text instead of an image", 415, "POST", "/v1/jobs/thumbnail", [("content-type", "text/plain")], "hello")
case("thumbnail job: no content-type", 415, "POST", "/v1/jobs/thumbnail", [], "hello")

# 7. Overlong paths and headers, and percent-encoded traversal.
case("kv get: 600-byte key", 400, "GET", "/v1/kv/" + "k" * 600)
case("kv put: 2000-byte key", 400, "PUT", "/v1/kv/" + "k" * 2000, [("content-type", "text/plain")], "v")
case("kv delete: 600-byte key", 400, "DELETE", "/v1/kv/" + "d" * 600)
case("unknown 4000-byte path", 404, "GET", "/" + "p" * 4000)
case("topic name over 128 chars", 400, "POST", "/v1/topics/" + "t" * 200 + "/events", JSON, "{\"type\": \"a\"}")
case("overlong content-type header", 415, "POST", "/v1/topics/corpus/events",
     [("content-type", "application/" + "j" * 6000)], "{\"type\": \"a\"}")
for i, path in enumerate([
    "/v1/kv/%2e%2e/%2e%2e/etc/passwd", "/v1/kv/..%2f..%2fetc%2fpasswd", "/v1/kv/%2e%2e%5c%2e%2e%5cwin.ini",
    "/v1/events/%2e%2e%2f%2e%2e%2fsecrets", "/v1/jobs/%2e%2e%2fjob", "/%2e%2e/%2e%2e/etc/passwd",
    "/v1/dead-letters/..%2F..%2Fx",
]):
    case(f"traversal #{i}", 404, "GET", path)
case("traversal in a job kind", 400, "POST", "/v1/jobs/..%2fwordcount", JSON, "{\"text\": \"a\"}")

# 8. NUL bytes.
case("NUL in a KV key", 404, "GET", "/v1/kv/a%00b")
case("NUL in a topic", 400, "POST", "/v1/topics/a%00b/events", JSON, "{\"type\": \"a\"}")
case("NUL byte inside JSON", 400, "POST", "/v1/topics/corpus/events", JSON, b"{\"type\": \"a\x00b\"}")
case("NUL in a job kind", 400, "POST", "/v1/jobs/a%00b", JSON, "{\"text\": \"a\"}")
case("NUL in a query", 400, "GET", "/v1/jobs/x/input?expires=1%002&signature=00")

# 9. Unknown methods.
# Methods the runtime knows but no route serves. (workerd itself answers 501 to
# tokens outside its method list, e.g. FOO, before any worker runs.)
for method in ("PROPFIND", "TRACE", "MKCOL", "COPY", "LOCK", "PURGE", "REPORT", "SEARCH"):
    case(f"method {method} on /healthz", 405, method, "/healthz")
for method in ("PATCH", "PUT"):
    case(f"method {method} on /v1/routes", 405, method, "/v1/routes", [("content-type", "text/plain")], "x")
case("DELETE on publish", 405, "DELETE", "/v1/topics/corpus/events")

# 10. Huge query strings and repeated parameters.
case("kv list: 5000-char prefix", 400, "GET", "/v1/kv?prefix=" + "p" * 5000)
case("kv list: repeated prefix", 400, "GET", "/v1/kv?prefix=a&prefix=b")
case("replay: repeated subscription", 400, "POST", "/v1/events/x/replay?subscription=a&subscription=b")
case("input: repeated expires", 400, "GET", "/v1/jobs/x/input?expires=1&expires=2&signature=00")
case("kv put: ttl not a number", 400, "PUT", "/v1/kv/corpus-ttl?ttl=soon", [("content-type", "text/plain")], "v")
case("kv put: ttl negative", 400, "PUT", "/v1/kv/corpus-ttl?ttl=-5", [("content-type", "text/plain")], "v")
case("kv put: ttl too short", 400, "PUT", "/v1/kv/corpus-ttl?ttl=5", [("content-type", "text/plain")], "v")
case("kv put: ttl overflows u64", 400, "PUT", "/v1/kv/corpus-ttl?ttl=99999999999999999999999", [("content-type", "text/plain")], "v")
case("kv list: 30000-char query", 400, "GET", "/v1/kv?prefix=" + "%41" * 10000)

# 11. Bad path-param types.
for kind in ("Thumbnail", "word count", "x" * 40, "kind!", "%F0%9F%92%A5"):
    case(f"job kind {kind[:12]!r}", 400, "POST", f"/v1/jobs/{kind.replace(' ', '%20')}", JSON, "{\"text\": \"a\"}")
case("input URL: expires not a number", 400, "GET", "/v1/jobs/x/input?expires=tomorrow&signature=00")
case("input URL: expires missing", 400, "GET", "/v1/jobs/x/input?signature=00")
case("unknown job kind", 404, "POST", "/v1/jobs/mine-bitcoin", JSON, "{}")
case("unknown job", 404, "GET", "/v1/jobs/0190d5a0-0000-7000-8000-000000000000")
case("unknown event", 404, "GET", "/v1/events/0190d5a0-0000-7000-8000-000000000000")
case("replay of an unknown event", 404, "POST", "/v1/events/0190d5a0-0000-7000-8000-000000000000/replay")
case("unknown dead letter", 404, "GET", "/v1/dead-letters/nope")
case("unsubscribe unknown", 404, "DELETE", "/v1/topics/corpus/subscriptions/nope")

# 12. Subscriptions to every SSRF address form.
SSRF = [
    "http://127.0.0.2/", "https://127.1/", "https://2130706434/", "https://0x7f000002/", "https://0177.0.0.2/",
    "https://localhost/", "https://api.localhost/", "https://LOCALHOST./", "https://10.0.0.1/",
    "https://172.16.5.4/", "https://192.168.1.1/", "https://169.254.169.254/latest/meta-data/",
    "https://100.64.0.1/", "https://0.0.0.0/", "https://[::1]/", "https://[::ffff:10.0.0.1]/",
    "https://[::ffff:7f00:2]/", "https://[fe80::1]/", "https://[fd00::1]/", "https://metadata.google.internal/",
    "https://[::]/", "https://0x0a.0x00.0x00.0x01/", "https://012.0.0.1/", "https://3232235777/",
    "ftp://example.com/", "file:///etc/passwd", "gopher://example.com/", "http://example.com/",
    "https://user:pass@10.0.0.1/", "not a url",
]
for url in SSRF:
    body = json.dumps({"target": {"kind": "webhook", "url": url, "secrets": [SECRET]}})
    case(f"SSRF {url}", 422, "POST", "/v1/topics/corpus/subscriptions", JSON, body)

# 13. Oversized queue messages.
case("queued put: 200 KiB message", 413, "POST", "/v1/queued/kv/corpus-q", [("content-type", "text/plain")], Repeat(ord("m"), 200 * 1024))
case("queued put: 129 KiB message", 413, "POST", "/v1/queued/kv/corpus-q", [("content-type", "text/plain")], Repeat(ord("m"), 129 * 1024))
case("queued put: bad key", 400, "POST", "/v1/queued/kv/" + "k" * 600, [("content-type", "text/plain")], "v")

# 14. Forged and replayed job callbacks (the gateway's key is not the forger's).
JOB = "0190d5a0-0000-7000-8000-000000000001"
OUTCOME = "{\"status\": \"done\", \"output\": {}}"
CALLBACKS = [
    [],
    [("webhook-id", JOB)],
    [("webhook-id", JOB), ("webhook-timestamp", "1700000000")],
    [("webhook-id", JOB), ("webhook-timestamp", "1700000000"), ("webhook-signature", "v1,AAAA")],
    [("webhook-id", "other-job"), ("webhook-timestamp", "1700000000"), ("webhook-signature", "v1,AAAA")],
    [("webhook-id", JOB), ("webhook-timestamp", "not-a-time"), ("webhook-signature", "v1,AAAA")],
    [("webhook-id", JOB), ("webhook-timestamp", "99999999999"), ("webhook-signature", "v1,AAAA")],
    [("webhook-id", JOB), ("webhook-timestamp", "1700000000"), ("webhook-signature", "v2,AAAA")],
    [("webhook-id", JOB), ("webhook-timestamp", "1700000000"), ("webhook-signature", "garbage")],
    [("webhook-id", JOB), ("webhook-timestamp", "1700000000"),
     ("webhook-signature", "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=")],
]
for i, headers in enumerate(CALLBACKS):
    case(f"forged callback #{i}", 401, "POST", f"/v1/jobs/{JOB}/result", JSON + headers, OUTCOME)
case("input URL: forged signature", 401, "GET", f"/v1/jobs/{JOB}/input?expires=99999999999&signature=" + "0" * 64)
case("input URL: expired", 401, "GET", f"/v1/jobs/{JOB}/input?expires=1&signature=" + "0" * 64)
case("input URL: signature not hex", 401, "GET", f"/v1/jobs/{JOB}/input?expires=99999999999&signature=xyz")

# 15. Missing, malformed and forged API keys on the management API.
KEY_ID = "0123456789abcdef"
AUTH_CASES = [
    ("no key", []),
    ("empty bearer", [("authorization", "Bearer ")]),
    ("basic credentials", [("authorization", "Basic dXNlcjpwYXNz")]),
    ("a token that is not a key", [("authorization", "Bearer not-a-key")]),
    ("an unknown well-formed key", [("authorization", f"Bearer ewk_{KEY_ID}_" + "a" * 64)]),
    ("a key with a short secret", [("authorization", f"Bearer ewk_{KEY_ID}_" + "a" * 63)]),
    ("a key with an id that is not hex", [("authorization", "Bearer ewk_zzzzzzzzzzzzzzzz_" + "a" * 64)]),
    ("an unsigned JWT (alg none)", [("authorization", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290In0.")]),
    ("an unknown x-api-key", [("x-api-key", f"ewk_{KEY_ID}_" + "b" * 64)]),
    ("a 10 KB bearer", [("authorization", "Bearer " + "k" * 10_000)]),
    ("a bearer with bytes that are not UTF-8", [("authorization", b"Bearer \xff\xfe\x80")]),
]
for name, headers in AUTH_CASES:
    case(f"API key: {name}", 401, "GET", "/v1/kv?prefix=a", headers, anonymous=True)
case("API key: none, on a write", 401, "PUT", "/v1/kv/corpus-auth", [("content-type", "text/plain")], "v", anonymous=True)
case("API key: none, on key admin", 401, "POST", "/v1/keys", JSON, '{"name":"x","scopes":["*"]}', anonymous=True)
case("API key: a key with an unknown scope", 422, "POST", "/v1/keys", JSON, '{"name":"x","scopes":["nope"]}')
case("API key: a scope that does not parse", 422, "POST", "/v1/keys", JSON, '{"name":"x","scopes":["KV:write"]}')
case("API key: no scopes", 422, "POST", "/v1/keys", JSON, '{"name":"x","scopes":[]}')
case("API key: an empty name", 422, "POST", "/v1/keys", JSON, '{"name":" ","scopes":["kv"]}')
case("API key: revoke an unknown key", 404, "DELETE", f"/v1/keys/{KEY_ID}")
case("API key: revoke a malformed id", 404, "DELETE", "/v1/keys/nope")



def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jws(header, claims=None, signature=b"not-a-signature"):
    """A compact JWS; header and claims as dicts, or as raw text to send as is."""
    claims = {"iss": "https://idp.edgeway.test", "aud": "conformance", "sub": "mallory",
              "scope": "*", "exp": 4_102_444_800} if claims is None else claims
    part = lambda v: b64url(v if isinstance(v, (str, bytes)) else json.dumps(v))
    return f"{part(header)}.{part(claims)}.{b64url(signature)}"


# Every one is refused before or at the signature check: none is signed by a key
# in the test provider's JWKS.
TOKENS = [
    ("alg none, no signature", jws({"alg": "none"}, signature=b"")),
    ("alg None", jws({"alg": "None"}, signature=b"")),
    ("alg NONE with a signature", jws({"alg": "NONE"})),
    ("alg none under a real kid", jws({"alg": "none", "kid": "rsa-1"}, signature=b"")),
    ("HS256", jws({"alg": "HS256", "kid": "rsa-1"})),
    ("HS384", jws({"alg": "HS384"})),
    ("HS512", jws({"alg": "HS512", "kid": "ec-1"})),
    ("no alg", jws({"typ": "JWT", "kid": "rsa-1"})),
    ("alg null", jws({"alg": None})),
    ("alg a number", jws({"alg": 256})),
    ("alg a list", jws({"alg": ["RS256"]})),
    ("alg empty", jws({"alg": ""})),
    ("alg with a NUL", jws({"alg": "RS256\u0000"})),
    ("alg in lower case", jws({"alg": "rs256", "kid": "rsa-1"})),
    ("an EdDSA token", jws({"alg": "EdDSA"})),
    ("crit names an extension", jws({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"], "exp": 1})),
    ("a header that is not JSON", jws("alg=RS256")),
    ("a header that is a JSON list", jws('["RS256"]')),
    ("a header with trailing garbage", jws('{"alg":"RS256","kid":"rsa-1"}garbage')),
    ("an empty header", "." + jws({"alg": "RS256"}).split(".", 1)[1]),
    ("standard base64 with padding", base64.b64encode(b'{"alg":"RS256","kid":"rsa-1"}').decode() + ".e30.c2ln"),
    ("a space inside a segment", jws({"alg": "RS256", "kid": "rsa-1"}).replace(".", ". ", 1)),
    ("one segment", b64url('{"alg":"RS256"}')),
    ("two segments", b64url('{"alg":"RS256"}') + "." + b64url("{}")),
    ("four segments", jws({"alg": "RS256", "kid": "rsa-1"}) + ".extra"),
    ("five segments (a JWE)", jws({"alg": "RSA-OAEP", "enc": "A256GCM"}) + ".iv.tag"),
    ("a garbage RS256 signature under a real kid", jws({"alg": "RS256", "kid": "rsa-1"})),
    ("an empty ES256 signature", jws({"alg": "ES256", "kid": "ec-1"}, signature=b"")),
    ("a 10-byte ES256 signature", jws({"alg": "ES256", "kid": "ec-1"}, signature=b"0123456789")),
    ("an ES256 signature of zeros", jws({"alg": "ES256", "kid": "ec-1"}, signature=bytes(64))),
    ("an RS256 token under the EC key's kid", jws({"alg": "RS256", "kid": "ec-1"})),
    ("an ES384 token under a P-256 key", jws({"alg": "ES384", "kid": "ec-1"}, signature=bytes(96))),
    ("a kid that walks up paths", jws({"alg": "RS256", "kid": "../../../../etc/passwd"})),
    ("a 4 KB kid", jws({"alg": "RS256", "kid": "k" * 4096})),
    ("a kid that is a number", jws({"alg": "RS256", "kid": 1})),
    ("a jku pointing elsewhere", jws({"alg": "RS256", "kid": "rsa-1", "jku": "https://evil.example/jwks.json"})),
    ("an embedded jwk", jws({"alg": "ES256", "jwk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}})),
    ("an x5u pointing elsewhere", jws({"alg": "RS256", "kid": "rsa-1", "x5u": "https://evil.example/cert"})),
    ("a payload that is not JSON", jws({"alg": "RS256", "kid": "rsa-1"}, "not json")),
    ("a payload that is not base64url", jws({"alg": "RS256", "kid": "rsa-1"}).replace(".", ".!!", 1)),
    ("an expired token with a garbage signature", jws({"alg": "ES256", "kid": "ec-1"}, {"exp": 1})),
    ("a 24 KB token", jws({"alg": "RS256", "kid": "rsa-1", "pad": "p" * 24_000})),
    ("bytes that are not UTF-8", b"eyJ\xff\xfe.e30.c2ln"),
    ("a token with a newline escape", jws({"alg": "RS256", "kid": "rsa-1\r\nx-injected: 1"})),
]

here = os.path.dirname(os.path.abspath(__file__))
for name, cases in [
    ("bad_requests.jsonl", CASES),
    ("bad_tokens.jsonl", [
        {"name": name, "token": base64.b64encode(t if isinstance(t, bytes) else t.encode()).decode()}
        for name, t in TOKENS
    ]),
]:
    out = os.path.join(here, name)
    with open(out, "w") as f:
        for c in cases:
            f.write(json.dumps(c) + "\n")
    print(f"{len(cases)} cases -> {out}")
