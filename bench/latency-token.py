#!/usr/bin/env python3
"""A token endpoint for the registry's `auth: token` mode, as ghcr.io and Docker Hub run one.

Usage: latency-token.py PORT KEY CERT SERVICE ISSUER

`GET /token?service=&scope=...` (basic credentials, any) or `POST /token` (an OAuth2 form)
answers a JWT signed RS256 with KEY, whose certificate CERT rides in the header as `x5c`
(how the CNCF registry 2.8 finds the key: CERT is its `rootcertbundle`), granting every action
each scope asks for. The benchmark measures clients against it, not its checks."""
import base64
import json
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

port, key_path, cert_path, service, issuer = sys.argv[1:6]
key = serialization.load_pem_private_key(open(key_path, "rb").read(), password=None)
cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(scopes):
    now = int(time.time())
    access = []
    for scope in scopes:
        parts = scope.split(":")
        if len(parts) >= 3:
            access.append({"type": parts[0], "name": ":".join(parts[1:-1]), "actions": parts[-1].split(",")})
    header = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
    claims = {
        "iss": issuer, "sub": "bench", "aud": service, "exp": now + 600, "nbf": now - 10,
        "iat": now, "jti": uuid.uuid4().hex, "access": access,
    }
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, scopes):
        token = mint(scopes)
        body = json.dumps({"token": token, "access_token": token, "expires_in": 600}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(parse_qs(urlparse(self.path).query).get("scope", []))

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        form = parse_qs(self.rfile.read(length).decode())
        scopes = [s for value in form.get("scope", []) for s in value.split(" ")]
        self.answer(scopes)

    def log_message(self, *_):
        pass


ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()
