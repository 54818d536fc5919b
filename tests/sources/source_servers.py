"""Servers the source tests talk to: a slapd instance of their own, and WSGI apps on free ports."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

IN_CI = os.environ.get("CI", "").lower() == "true"

SUFFIX = "dc=gov,dc=example"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "admin-secret"
READER_DN = f"cn=idp-reader,ou=services,{SUFFIX}"
READER_PASSWORD = "reader-secret"
PEOPLE_DN = f"ou=people,{SUFFIX}"

# Directory persons: uid, cn, password, mobile, employeeNumber (a valid resident ID number), mail.
LDAP_PEOPLE = [
    ("zhangsan", "张三", "Zhangsan#2026", "13800000001", "410105198503121235", "zhangsan@gov.example"),
    ("lisi", "李四", "Lisi#20260101", "13800000002", "440305199207182464", "lisi@gov.example"),
    # Two entries sharing a mobile number: an ambiguous identifier must never log anyone in.
    ("twin1", "双胞胎一", "Twin#1", "13900000009", None, None),
    ("twin2", "双胞胎二", "Twin#2", "13900000009", None, None),
]

SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIRS = (Path("/usr/lib/ldap"), Path("/usr/lib/openldap"), Path("/usr/libexec/openldap"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ssha(password: str) -> str:
    """An RFC 2307 {SSHA} userPassword value."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()  # noqa: S324 - the format slapd checks
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _find_program(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def _ldif() -> str:
    blocks = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: gov\no: gov.example\n",
        f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n",
        f"dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: idp-reader\nuserPassword: {ssha(READER_PASSWORD)}\n",
        f"dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people\n",
    ]
    for uid, cn, password, mobile, id_number, mail in LDAP_PEOPLE:
        lines = [
            f"dn: uid={uid},{PEOPLE_DN}",
            "objectClass: inetOrgPerson",
            f"uid: {uid}",
            "cn:: " + base64.b64encode(cn.encode()).decode(),  # LDIF: non-ASCII values are base64
            "sn:: " + base64.b64encode(cn[:1].encode()).decode(),
            f"userPassword: {ssha(password)}",
            f"mobile: {mobile}",
        ]
        if id_number:
            lines.append(f"employeeNumber: {id_number}")
        if mail:
            lines.append(f"mail: {mail}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _slapd_conf(workdir: Path, module_dir: Path | None, tls: bool) -> str:
    modules = f"modulepath {module_dir}\nmoduleload back_mdb\n" if module_dir else ""
    certificates = (
        f"TLSCertificateFile {workdir}/server.pem\nTLSCertificateKeyFile {workdir}/server.key\n"
        if tls
        else ""
    )
    return f"""\
include {SCHEMA_DIR}/core.schema
include {SCHEMA_DIR}/cosine.schema
include {SCHEMA_DIR}/inetorgperson.schema
pidfile {workdir}/slapd.pid
argsfile {workdir}/slapd.args
{modules}{certificates}
# Accept unauthenticated binds (a DN with an empty password, RFC 4513 §5.1.2), as some directories do:
# the tests prove the source never treats one as a login.
allow bind_anon_dn

database mdb
maxsize 16777216
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ssha(ROOT_PASSWORD)}
directory {workdir}/data

access to attrs=userPassword
    by anonymous auth
    by self write
    by * none
access to *
    by dn.exact="{READER_DN}" read
    by self read
    by * none
"""


@dataclass
class Slapd:
    """One slapd process serving dc=gov,dc=example from a temporary directory."""

    binary: str
    workdir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    tls: str | None = None  # None, "ldaps" (TLS from the first byte) or "starttls" (ldap:// + StartTLS)
    _log_file: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'ldaps' if self.tls == 'ldaps' else 'ldap'}://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> str:
        """The test CA that signed this server's certificate (when `tls`)."""
        return str(self.workdir / "ca.pem")

    def start(self) -> Slapd:
        """Start slapd and wait until it answers; a port taken meanwhile is retried on another one."""
        for _attempt in range(3):
            if self._launch():
                return self
            self.port = free_port()
        raise RuntimeError(f"slapd did not start:\n{self.log()}")

    def _launch(self) -> bool:
        self._log_file = open(self.workdir / "slapd.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [self.binary, "-f", str(self.workdir / "slapd.conf"), "-h", self.url + "/", "-d", "0"],
            stdout=subprocess.DEVNULL,
            stderr=self._log_file,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                return False
            if self.answers():
                return True
            time.sleep(0.05)
        self.stop()
        return False

    def answers(self) -> bool:
        from ldap3 import Connection, Server

        try:
            server = Server(self.url, connect_timeout=1)  # ldap3's default Tls() does not verify: fine here
            conn = Connection(server, ROOT_DN, ROOT_PASSWORD, receive_timeout=1)
            ok = conn.bind()
            conn.unbind()
            return bool(ok)
        except Exception:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log(self) -> str:
        path = self.workdir / "slapd.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _slapd_missing(what: str) -> None:
    message = f"{what}; install it with scripts/install-system-packages.sh"
    if IN_CI:
        pytest.fail(f"{message} (required under CI=true)", pytrace=False)
    pytest.skip(message)


def make_slapd(workdir: Path, *, tls: str | None = None) -> Slapd:
    """Write a config and the test entries into `workdir` (slapadd, offline) and return a stopped Slapd.

    With `tls` ("ldaps" or "starttls") the server has a certificate for 127.0.0.1 from a throwaway test CA.
    """
    binary = _find_program("slapd")
    slapadd = _find_program("slapadd")
    if binary is None or slapadd is None:
        _slapd_missing("slapd is not installed")
    if not (SCHEMA_DIR / "inetorgperson.schema").exists():
        _slapd_missing(f"the OpenLDAP schemas are missing from {SCHEMA_DIR}")
    assert binary is not None and slapadd is not None
    module_dir = next((d for d in MODULE_DIRS if any(d.glob("back_mdb*"))), None)
    (workdir / "data").mkdir(parents=True)
    if tls:
        _write_certificates(workdir)
    (workdir / "slapd.conf").write_text(_slapd_conf(workdir, module_dir, tls is not None))
    (workdir / "entries.ldif").write_text(_ldif(), encoding="utf-8")
    loaded = subprocess.run(  # noqa: S603 - fixed arguments
        [slapadd, "-f", str(workdir / "slapd.conf"), "-l", str(workdir / "entries.ldif")],
        capture_output=True,
        text=True,
        check=False,
    )
    if loaded.returncode != 0:
        raise RuntimeError(f"slapadd failed:\n{loaded.stderr}")
    return Slapd(binary=binary, workdir=workdir, port=free_port(), tls=tls)


def _write_certificates(workdir: Path) -> None:
    """ca.pem (a test CA), server.pem and server.key (for IP 127.0.0.1, signed by that CA)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (workdir / "ca.pem").write_bytes(ca.public_bytes(pem))
    (workdir / "server.pem").write_bytes(cert.public_bytes(pem))
    (workdir / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@dataclass
class HttpServer:
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_wsgi(app: Any) -> HttpServer:
    """Serve a WSGI app with werkzeug on a free loopback port, in a daemon thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return HttpServer(server, thread)
