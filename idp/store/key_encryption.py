"""Encryption at rest: the key-encryption key (KEK) and AES-256-GCM under subkeys derived from it."""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEK_LENGTH = 32
KEK_FILE_NAME = "kek"
FORMAT_VERSION = 1
NONCE_LENGTH = 12  # 96-bit nonce, the size NIST SP 800-38D recommends for GCM
TAG_LENGTH = 16
ENCRYPTION_LABEL = "aes-gcm"

_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


class KekError(ValueError):
    """The key-encryption key is missing, malformed or unsafely stored."""


class DecryptionError(ValueError):
    """A ciphertext failed authentication: tampered, wrong associated data, or a different KEK."""


def load_or_create_kek(env_value: str | None, key_dir: Path) -> bytes:
    """The 32-byte KEK: from `env_value` (base64url) if given, else `key_dir/kek`, created on first use."""
    if env_value is not None:
        return decode_kek(env_value, source="the KEK environment value")
    path = key_dir / KEK_FILE_NAME
    try:
        return read_kek_file(path)
    except FileNotFoundError:
        pass
    create_kek_file(path)
    return read_kek_file(path)


def decode_kek(text: str, *, source: str) -> bytes:
    """Decode base64url (padding optional) text that must hold exactly 32 bytes."""
    value = text.strip()
    if not _BASE64URL.match(value):
        raise KekError(f"{source} is not base64url text (expected 32 random bytes, base64url-encoded)")
    bare = value.rstrip("=")
    try:
        kek = base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except (binascii.Error, ValueError) as exc:
        raise KekError(f"{source} is not valid base64url: {exc}") from None
    if len(kek) != KEK_LENGTH:
        raise KekError(
            f"{source} decodes to {len(kek)} bytes; a key-encryption key must be {KEK_LENGTH} bytes"
        )
    return kek


def read_kek_file(path: Path) -> bytes:
    """Read an existing KEK file, refusing one that group or others may access."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise KekError(f"{path} is not a regular file")
    if os.name == "posix" and info.st_mode & 0o077:
        raise KekError(
            f"{path} is accessible by group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"refusing to use it. Run: chmod 600 {path}"
        )
    return decode_kek(path.read_text(encoding="ascii"), source=str(path))


def create_kek_file(path: Path) -> None:
    """Write 32 random bytes, base64url, to `path` with mode 0600; a file already there is kept.

    The key is written to a private temporary file and then hard-linked into place, so a concurrent
    reader never sees a half-written file and of two concurrent creators exactly one wins.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = base64.urlsafe_b64encode(secrets.token_bytes(KEK_LENGTH)).rstrip(b"=") + b"\n"
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            pass  # another process created it first; its key is the one to use
    finally:
        temp.unlink(missing_ok=True)


class KeyEncryptor:
    """AES-256-GCM under a subkey of the KEK; also derives independent subkeys for other uses."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != KEK_LENGTH:
            raise KekError(f"a key-encryption key must be {KEK_LENGTH} bytes, got {len(kek)}")
        self._kek = kek
        self._aead = AESGCM(self.derive(ENCRYPTION_LABEL))

    def __repr__(self) -> str:
        return "KeyEncryptor(<redacted>)"

    def derive(self, label: str) -> bytes:
        """A 32-byte subkey for `label` (HKDF-SHA256, RFC 5869, label as info, no salt)."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode("utf-8"))
        return hkdf.derive(self._kek)

    def encrypt(self, plaintext: bytes, *, aad: bytes) -> bytes:
        """version byte + 96-bit random nonce + ciphertext and tag; `aad` must be given again to decrypt."""
        header = bytes([FORMAT_VERSION])
        nonce = secrets.token_bytes(NONCE_LENGTH)
        return header + nonce + self._aead.encrypt(nonce, plaintext, header + aad)

    def decrypt(self, blob: bytes, *, aad: bytes) -> bytes:
        """The plaintext of `encrypt`'s output; DecryptionError if anything was altered."""
        if len(blob) < 1 + NONCE_LENGTH + TAG_LENGTH:
            raise DecryptionError("ciphertext is too short")
        if blob[0] != FORMAT_VERSION:
            raise DecryptionError(f"unknown ciphertext format version {blob[0]}")
        header, nonce, body = blob[:1], blob[1 : 1 + NONCE_LENGTH], blob[1 + NONCE_LENGTH :]
        try:
            return self._aead.decrypt(nonce, body, header + aad)
        except InvalidTag:
            raise DecryptionError(
                "ciphertext failed authentication: it was altered, the associated data differs, "
                "or it was encrypted under a different key-encryption key"
            ) from None
