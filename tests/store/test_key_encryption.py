"""The key-encryption key file and AES-256-GCM encryption at rest."""

from __future__ import annotations

import base64
import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idp.store.key_encryption import (
    DecryptionError,
    KekError,
    KeyEncryptor,
    load_or_create_kek,
)

KEK = bytes(range(32))


def encode_b64url(raw: bytes, *, padded: bool = False) -> str:
    text = base64.urlsafe_b64encode(raw).decode()
    return text if padded else text.rstrip("=")


def test_creates_kek_file_with_mode_0600_and_directory(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys" / "nested"
    kek = load_or_create_kek(None, key_dir)
    path = key_dir / "kek"
    assert len(kek) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert base64.urlsafe_b64decode(path.read_text().strip() + "=") == kek
    assert [p.name for p in key_dir.iterdir()] == ["kek"]  # no temporary file left behind


def test_reuses_existing_kek_file(tmp_path: Path) -> None:
    first = load_or_create_kek(None, tmp_path)
    assert load_or_create_kek(None, tmp_path) == first


def test_concurrent_first_start_agrees_on_one_kek(tmp_path: Path) -> None:
    results: list[bytes] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        results.append(load_or_create_kek(None, tmp_path / "keys"))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(set(results)) == 1


def test_environment_value_wins_over_file(tmp_path: Path) -> None:
    assert load_or_create_kek(encode_b64url(KEK), tmp_path) == KEK
    assert load_or_create_kek(encode_b64url(KEK, padded=True), tmp_path) == KEK
    assert not (tmp_path / "kek").exists()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not base64!",
        encode_b64url(bytes(31)),
        encode_b64url(bytes(33)),
        base64.b64encode(bytes([0xFB] * 32)).decode(),  # standard alphabet ('+', '/'), not base64url
        "A",
    ],
)
def test_rejects_malformed_environment_value(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValueError, match="KEK environment value"):
        load_or_create_kek(value, tmp_path)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_refuses_kek_file_readable_by_others(tmp_path: Path, mode: int) -> None:
    load_or_create_kek(None, tmp_path)
    (tmp_path / "kek").chmod(mode)
    with pytest.raises(KekError, match="chmod 600"):
        load_or_create_kek(None, tmp_path)


def test_rejects_corrupt_kek_file(tmp_path: Path) -> None:
    path = tmp_path / "kek"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"too-short\n")
    os.close(fd)
    with pytest.raises(KekError, match="kek is not valid base64url"):
        load_or_create_kek(None, tmp_path)


def test_encrypt_decrypt_roundtrip() -> None:
    encryptor = KeyEncryptor(KEK)
    blob = encryptor.encrypt(b"secret material", aad=b"kid-1")
    assert blob[0] == 1 and len(blob) == 1 + 12 + len(b"secret material") + 16
    assert b"secret material" not in blob
    assert encryptor.decrypt(blob, aad=b"kid-1") == b"secret material"
    assert KeyEncryptor(KEK).decrypt(blob, aad=b"kid-1") == b"secret material"


def test_random_nonce_makes_each_ciphertext_distinct() -> None:
    encryptor = KeyEncryptor(KEK)
    blobs = {encryptor.encrypt(b"same", aad=b"") for _ in range(50)}
    assert len(blobs) == 50


@pytest.mark.parametrize("position", [0, 1, 12, 13, -1])
def test_detects_a_flipped_byte(position: int) -> None:
    encryptor = KeyEncryptor(KEK)
    blob = bytearray(encryptor.encrypt(b"secret material", aad=b"kid-1"))
    blob[position] ^= 0x01
    with pytest.raises(DecryptionError):
        encryptor.decrypt(bytes(blob), aad=b"kid-1")


def test_detects_wrong_aad_wrong_kek_and_truncation() -> None:
    encryptor = KeyEncryptor(KEK)
    blob = encryptor.encrypt(b"secret material", aad=b"kid-1")
    with pytest.raises(DecryptionError, match="associated data"):
        encryptor.decrypt(blob, aad=b"kid-2")
    with pytest.raises(DecryptionError):
        KeyEncryptor(bytes(32)).decrypt(blob, aad=b"kid-1")
    with pytest.raises(DecryptionError, match="too short"):
        encryptor.decrypt(blob[:20], aad=b"kid-1")


def test_encrypts_under_a_derived_key_not_the_raw_kek() -> None:
    encryptor = KeyEncryptor(KEK)
    blob = encryptor.encrypt(b"x", aad=b"")
    with pytest.raises(InvalidTag):
        AESGCM(KEK).decrypt(blob[1:13], blob[13:], blob[:1])
    assert AESGCM(encryptor.derive("aes-gcm")).decrypt(blob[1:13], blob[13:], blob[:1]) == b"x"


def test_derive_gives_stable_independent_subkeys() -> None:
    encryptor = KeyEncryptor(KEK)
    secret_key = encryptor.derive("client-secret-hmac")
    assert len(secret_key) == 32
    assert secret_key == KeyEncryptor(KEK).derive("client-secret-hmac")
    assert secret_key != encryptor.derive("id-number-index")
    assert secret_key != KEK
    assert KeyEncryptor(bytes(32)).derive("client-secret-hmac") != secret_key


def test_rejects_kek_of_wrong_length() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        KeyEncryptor(bytes(16))
    assert "redacted" in repr(KeyEncryptor(KEK))
