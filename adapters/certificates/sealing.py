"""Departments' private keys at rest: AES-256-GCM under a subkey of the service's key-encryption key.

The KEK is `CERTS_KEK` (32 random bytes, base64url), or else the file `CERTS_KEY_DIR/kek`, made on
first start with mode 0600 (keys/README.md: where KEKs live and how they are rotated). A sealed key
is stored as `sealed.v1.<base64url(nonce || ciphertext)>`; its kid is the associated data, so a
ciphertext copied onto another key's row does not decrypt. Rows written before sealing existed hold
the plain JWK (JSON); `seal_plain_keys` seals them at start.

The provider has its own KEK code (idp/store/key_encryption.py); the adapters may not import idp
(DESIGN.md's import rule), and this service's KEK is its own, not the provider's."""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger(__name__)

KEK_LENGTH = 32
NONCE_LENGTH = 12
PREFIX = "sealed.v1."
SUBKEY_INFO = b"e-certificates: department private keys"


class SealingError(ValueError):
    """The KEK is unusable, or a sealed key does not open under it (wrong KEK or altered row)."""


def _b64decode(text: str) -> bytes:
    bare = text.strip().rstrip("=")
    return base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))


def load_kek(value: str | None, key_dir: str) -> bytes:
    """The KEK from `value` (base64url), else from `key_dir/kek`, which is created if missing."""
    if value is None:
        path = Path(key_dir) / "kek"
        if not path.exists():
            _create_kek_file(path)
        value, source = path.read_text(), str(path)
    else:
        source = "CERTS_KEK"
    try:
        kek = _b64decode(value)
    except (binascii.Error, ValueError):
        raise SealingError(f"{source} is not base64url text") from None
    if len(kek) != KEK_LENGTH:
        raise SealingError(f"{source} holds {len(kek)} bytes; the KEK is {KEK_LENGTH} random bytes")
    return kek


def _create_kek_file(path: Path) -> None:
    """Written to a private temporary file, then hard-linked into place: of two workers starting at
    once exactly one key wins, and nobody reads a half-written file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".kek.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(
                base64.urlsafe_b64encode(secrets.token_bytes(KEK_LENGTH)).decode().rstrip("=") + "\n"
            )
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            pass
    finally:
        temp.unlink(missing_ok=True)


class KeySealer:
    def __init__(self, kek: bytes) -> None:
        subkey = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=SUBKEY_INFO).derive(kek)
        self._aead = AESGCM(subkey)

    def seal(self, kid: str, private_jwk: str) -> str:
        nonce = secrets.token_bytes(NONCE_LENGTH)
        sealed = nonce + self._aead.encrypt(nonce, private_jwk.encode(), kid.encode())
        return PREFIX + base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(self, kid: str, stored: str) -> str:
        """The private JWK (JSON) of a row: sealed, or plain from before sealing existed."""
        if not is_sealed(stored):
            return stored
        try:
            raw = _b64decode(stored[len(PREFIX) :])
            return self._aead.decrypt(raw[:NONCE_LENGTH], raw[NONCE_LENGTH:], kid.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise SealingError(
                f"the private key {kid!r} does not open under this KEK (another CERTS_KEK, or an altered row)"
            ) from None


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)
