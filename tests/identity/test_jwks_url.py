"""An identity whose keys are an https JWKS URL (an issuer such as GitHub Actions OIDC): the
keys are fetched over TLS from a real local https server, bounded in size, cached, and the
tokens they sign verify."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from controlplane.errors import ConfigError
from controlplane.identity import jwks
from controlplane.identity.tokens import verify_token
from tests.identity.keys import AUDIENCE, ISSUER, Issuer


class _Server:
    """An https server on 127.0.0.1 answering every GET with `body`, counting requests."""

    def __init__(self, directory: Path) -> None:
        self.body = b""
        self.requests = 0
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.cert = directory / "cert.pem"
        self.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file = directory / "key.pem"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key_file)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    running = _Server(tmp_path)
    # the default TLS context trusts this server's certificate, as a system CA store would
    monkeypatch.setenv("SSL_CERT_FILE", str(running.cert))
    monkeypatch.setattr(jwks, "_CACHE", {})
    yield running
    running.close()


def test_a_token_verifies_with_keys_fetched_over_https_once(server: _Server) -> None:
    issuer = Issuer("oidc-1")
    server.body = json.dumps({"keys": [issuer.public]}).encode()
    keys = jwks.fetch_jwks(server.url)
    principal = verify_token(
        issuer.token("repo:acme/workflows:ref:refs/heads/main", ["deployer"]),
        keys,
        issuer=ISSUER,
        audience=AUDIENCE,
        now=dt.datetime.now(dt.UTC),
    )
    assert principal.sub == "repo:acme/workflows:ref:refs/heads/main"
    assert jwks.fetch_jwks(server.url) == keys
    assert server.requests == 1  # the second use is served from the process's cache


def test_an_oversized_or_private_jwks_is_refused(server: _Server) -> None:
    server.body = b'{"keys": [' + b" " * (jwks.MAX_JWKS_BYTES + 10) + b"]}"
    with pytest.raises(ConfigError, match="larger than"):
        jwks.fetch_jwks(server.url)
    issuer = Issuer("oidc-2")
    server.body = json.dumps({"keys": [dict(issuer.key.as_dict(private=True))]}).encode()
    with pytest.raises(ConfigError):
        jwks.fetch_jwks(server.url)


def test_a_server_with_an_untrusted_certificate_is_refused(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")
    server.body = b'{"keys": []}'
    with pytest.raises(ConfigError, match="cannot fetch the JWKS"):
        jwks.fetch_jwks(server.url)
    assert server.requests == 0
