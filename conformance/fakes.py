"""Peers that cannot run here, served in their exact wire format from local endpoints: a
kube-apiserver TokenReview endpoint, Azure AD's OIDC discovery and keys, the Azure instance
metadata service (plain HTTP, as on a VM), and JWT signing with a local RSA key."""
import base64
import json
import os
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def make_pki(directory):
    """A CA and a server certificate for localhost/127.0.0.1 made by openssl."""
    script = f"""set -e; cd {directory}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=fake-ca -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -keyout tls.key -out tls.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile ext -out tls.crt 2>/dev/null
"""
    subprocess.run(["sh", "-c", script], check=True)
    return os.path.join(directory, "ca.crt"), os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key")


class HttpsFake:
    """Serves `routes[(method, path)] = fn(body_json, headers) -> (status, json)` over TLS
    (plain HTTP with tls=False). Routes match the path without its query string; every request
    is recorded in `requests` as (method, full path, headers)."""

    def __init__(self, directory, routes, tls=True):
        routes_ = routes
        seen = self.requests = []

        class Handler(BaseHTTPRequestHandler):
            def _do(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                body = json.loads(raw) if raw else None
                seen.append((method, self.path, dict(self.headers)))
                fn = routes_.get((method, self.path.split("?", 1)[0]))
                status, payload = fn(body, self.headers) if fn else (404, {"message": "not found"})
                out = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def do_GET(self):
                self._do("GET")

            def do_POST(self):
                self._do("POST")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls:
            ca, cert, key = make_pki(directory)
            self.ca_pem = open(ca).read()
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class RsaSigner:
    """RS256 JWTs signed with a fresh RSA key."""

    def __init__(self, kid="k1"):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = kid

    def public_pem(self):
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def jwk(self):
        n = self.key.public_key().public_numbers()
        to_b = lambda i: i.to_bytes((i.bit_length() + 7) // 8, "big")
        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": b64url(to_b(n.n)), "e": b64url(to_b(n.e))}

    def sign(self, claims):
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(sig)}"
