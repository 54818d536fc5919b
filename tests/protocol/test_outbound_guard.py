"""The SSRF guard of outgoing HTTP (back-channel logout deliveries): every address a connection may
use is checked, and the connection goes to exactly the address that was checked.

Two receivers on loopback stand for a platform: 127.0.0.2 plays a public address (the test's
`is_public` says so) and 127.0.0.1 the private one an attacker's name would rebind to."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from idp.services import outbound
from idp.services.outbound import OutboundHttp, OutboundRefused

REBINDING_NAME = "platform.rebinding.test"
PUBLIC_STAND_IN = "127.0.0.2"
PRIVATE = "127.0.0.1"


class Receiver:
    def __init__(self, address: str, port: int) -> None:
        self.requests: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", "0"))
                receiver.requests.append(f"{self.headers['Host']} {self.rfile.read(length).decode()}")
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((address, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    """A 'public' and a private receiver on the same port (so only the address tells them apart)."""
    private = Receiver(PRIVATE, 0)
    port = private.server.server_address[1]
    try:
        public = Receiver(PUBLIC_STAND_IN, port)
    except OSError:
        private.close()
        pytest.skip(f"cannot bind {PUBLIC_STAND_IN}:{port}")
    yield public, private
    public.close()
    private.close()


@pytest.fixture
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """REBINDING_NAME answers the public stand-in the first time and the private address after it
    (a zero-TTL record under an attacker's control); every other name resolves as usual."""
    real = socket.getaddrinfo
    answers: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != REBINDING_NAME:
            return real(host, port, *args, **kwargs)
        address = PUBLIC_STAND_IN if not answers else PRIVATE
        answers.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(outbound, "is_public", lambda address: address == PUBLIC_STAND_IN)
    return answers


def test_a_rebinding_name_is_connected_to_the_address_that_was_checked(
    receivers: tuple[Receiver, Receiver], rebinding_dns: list[str]
) -> None:
    public, private = receivers
    port = public.server.server_address[1]
    guarded = OutboundHttp(allow_private_network=False, timeout=2.0)

    status = guarded.post_form(f"http://{REBINDING_NAME}:{port}/logout", {"logout_token": "t"})

    assert status == 200
    assert private.requests == []  # a second resolution would have answered 127.0.0.1
    assert public.requests == [f"{REBINDING_NAME}:{port} logout_token=t"]  # Host names the platform
    assert rebinding_dns == [PUBLIC_STAND_IN]  # one resolution, by the guard


def test_a_name_with_any_private_address_is_refused_before_connecting(
    receivers: tuple[Receiver, Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    public, private = receivers
    port = public.server.server_address[1]
    both = [
        (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (PUBLIC_STAND_IN, port)),
        (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (PRIVATE, port)),
    ]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *_args, **_kwargs: both)
    monkeypatch.setattr(outbound, "is_public", lambda address: address == PUBLIC_STAND_IN)
    guarded = OutboundHttp(allow_private_network=False, timeout=2.0)

    with pytest.raises(OutboundRefused, match="non-public address 127.0.0.1"):
        guarded.post_form(f"http://{REBINDING_NAME}:{port}/logout", {"logout_token": "t"})
    assert public.requests == [] and private.requests == []


def test_private_and_unresolvable_targets_and_other_schemes_are_refused(
    receivers: tuple[Receiver, Receiver],
) -> None:
    _public, private = receivers
    port = private.server.server_address[1]
    guarded = OutboundHttp(allow_private_network=False, timeout=2.0)
    refused = {
        f"http://{PRIVATE}:{port}/logout": "non-public address 127.0.0.1",
        f"http://localhost:{port}/logout": "non-public address",
        f"http://[::1]:{port}/logout": "non-public address ::1",
        "http://name.invalid/logout": "cannot resolve name.invalid",
        "ftp://platform.example.cn/logout": "not an http(s) URL",
        "http:///logout": "not an http(s) URL",
    }
    for url, reason in refused.items():
        with pytest.raises(OutboundRefused, match=re.escape(reason)):
            guarded.post_form(url, {"logout_token": "t"})
    assert private.requests == []


def test_with_private_networks_allowed_a_loopback_platform_is_reached(
    receivers: tuple[Receiver, Receiver],
) -> None:
    _public, private = receivers
    port = private.server.server_address[1]
    allowed = OutboundHttp(allow_private_network=True, timeout=2.0)
    assert allowed.post_form(f"http://{PRIVATE}:{port}/logout", {"logout_token": "t"}) == 200
    assert private.requests == [f"{PRIVATE}:{port} logout_token=t"]


def self_signed(tmp_path: Any, name: str) -> tuple[str, str]:
    """A certificate for `name` (its own CA) and its key, as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_file), str(key_file)


def tls_receiver(tmp_path: Any, certificate_name: str) -> tuple[Receiver, str]:
    """A receiver on the public stand-in that presents a certificate for `certificate_name`; and
    that certificate (its own CA), for the client to trust."""
    import ssl

    cert, key = self_signed(tmp_path, certificate_name)
    receiver = Receiver(PUBLIC_STAND_IN, 0)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
    return receiver, cert


@pytest.mark.parametrize("certificate_name", [REBINDING_NAME, "other.example.cn"])
def test_over_https_the_pinned_address_still_verifies_the_platform_name(
    tmp_path: Any, rebinding_dns: list[str], certificate_name: str
) -> None:
    """TLS names the host (SNI) and checks the certificate against it, not against the address the
    guard chose: a trusted certificate for another name is refused."""
    import requests

    receiver, trusted = tls_receiver(tmp_path, certificate_name)
    url = f"https://{REBINDING_NAME}:{receiver.server.server_address[1]}/logout"
    try:
        session = outbound.guarded_session()
        if certificate_name == REBINDING_NAME:
            assert session.post(url, data={"t": "1"}, verify=trusted, timeout=5).status_code == 200
            assert receiver.requests == [f"{REBINDING_NAME}:{receiver.server.server_address[1]} t=1"]
        else:
            with pytest.raises(requests.exceptions.SSLError, match="match|mismatch"):
                session.post(url, data={"t": "1"}, verify=trusted, timeout=5)
            assert receiver.requests == []
        assert rebinding_dns == [PUBLIC_STAND_IN]
    finally:
        receiver.close()
