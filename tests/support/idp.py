"""An identity provider for the e2e tests: it publishes a JWKS and signs tokens
with joserfc, a reference JOSE library, never with edgeway's own code.

    python idp.py

Prints {"port": N} (127.0.0.1 only) and exits when its stdin closes (the test
process ended). It serves:
  GET  /jwks.json   the public keys: rsa-1 (RS256) and ec-1 (ES256), then any
                    rotated in
  GET  /fetches     how many times /jwks.json has been read, as JSON
  GET  /missing/jwks.json  always 404: an issuer that cannot be reached
  GET  /missing/fetches    how many times that has been asked for
  POST /outage      {"down": bool}: while down, /jwks.json answers 503
  POST /rotate      adds a fresh ES256 key, ec-<n>, to the JWKS; answers its kid
  POST /sign        {"alg", "kid"?, "as_kid"?, "claims"} -> the compact token, as
                    text. alg is RS256, PS256 or ES256 (signed by that kid,
                    default rsa-1 or ec-1, and naming as_kid in its header when
                    given), "RS256-foreign" (an RSA key outside the JWKS, under
                    kid rsa-1), "none" (no signature) or "HS256-confusion" (an
                    HMAC keyed with rsa-1's public key in PEM: the algorithm-
                    confusion attack)
"""

import base64
import hashlib
import hmac
import json
import threading

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from quiet_http import QuietHandler, serve_until_parent_goes

lock = threading.Lock()
keys = {
    "rsa-1": RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig"}),
    "ec-1": ECKey.generate_key("P-256", parameters={"kid": "ec-1", "use": "sig", "alg": "ES256"}),
}
foreign = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
fetches = 0
missing_fetches = 0
down = False


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_input(header, claims):
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"


def sign(alg, kid, claims, as_kid=None):
    if alg == "none":
        return unsigned_input({"alg": "none", "kid": kid or "rsa-1"}, claims) + "."
    if alg == "HS256-confusion":
        kid = kid or "rsa-1"
        secret = keys[kid].as_pem(private=False)
        signing_input = unsigned_input({"alg": "HS256", "kid": kid, "typ": "JWT"}, claims)
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(mac)}"
    if alg == "RS256-foreign":
        return jwt.encode({"alg": "RS256", "kid": "rsa-1"}, claims, foreign)
    kid = kid or ("ec-1" if alg.startswith("ES") else "rsa-1")
    with lock:
        key = keys[kid]
    # The header names as_kid when given; the signature is by kid's key.
    return jwt.encode({"alg": alg, "kid": as_kid or kid}, claims, key, algorithms=[alg])


class Handler(QuietHandler):
    def do_GET(self):
        global fetches
        if self.path == "/jwks.json":
            with lock:
                fetches += 1
                if down:
                    return self.reply(503, b"the identity provider is down")
                body = {"keys": [key.as_dict(private=False) for key in keys.values()]}
            return self.reply(200, json.dumps(body).encode(), [("content-type", "application/json")])
        if self.path == "/fetches":
            with lock:
                return self.reply(200, json.dumps(fetches).encode())
        if self.path == "/missing/jwks.json":
            global missing_fetches
            with lock:
                missing_fetches += 1
            return self.reply(404)
        if self.path == "/missing/fetches":
            with lock:
                return self.reply(200, json.dumps(missing_fetches).encode())
        return self.reply(404)

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/outage":
            global down
            with lock:
                down = bool(request["down"])
            return self.reply(204)
        if self.path == "/rotate":
            with lock:
                kid = f"ec-{len(keys)}"
                keys[kid] = ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig", "alg": "ES256"})
            return self.reply(200, kid.encode())
        if self.path == "/sign":
            token = sign(request["alg"], request.get("kid"), request["claims"], request.get("as_kid"))
            return self.reply(200, token.encode())
        return self.reply(404)


serve_until_parent_goes(Handler)
