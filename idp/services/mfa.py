"""Second factor: TOTP enrolment and verification (RFC 6238, pyotp) and single-use recovery codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyotp
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from idp.store.ephemeral import EphemeralStore
from idp.store.key_encryption import DecryptionError, KeyEncryptor
from idp.store.models import PersonRow, RecoveryCodeRow

TOTP_INTERVAL = 30
TOTP_DIGITS = 6
VALID_WINDOW = 1  # accept the previous and the next time step too (clock drift, typing time)
PENDING_TTL = 600  # an unconfirmed enrolment is forgotten after 10 minutes
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i: read aloud and typed from paper
RECOVERY_CODE_LENGTH = 10  # 31^10, about 49 bits, behind the attempt limit below
MAX_FAILURES = 5  # wrong codes per person ...
FAILURE_WINDOW = 300  # ... within this many seconds, then refused until the window ends

METHOD_TOTP = "otp"  # RFC 8176 amr value for a one-time password (RFC 6238)
# A recovery code: our own amr value (RFC 8176 registers none for it), so that a platform can see the
# person fell back on a printed code. It counts as a second factor (idp.domain.assurance.SECOND_FACTORS).
METHOD_RECOVERY = "rec"


class MfaError(ValueError):
    """An enrolment step that cannot be done: a plain message, and a `reason` the pages translate
    ("invalid_code", "locked", "expired", "completed", "no_account")."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Enrolment:
    """A TOTP secret waiting for its confirming code; the QR code is an SVG `data:` URI."""

    secret: str
    provisioning_uri: str
    qr_svg_data_uri: str


class MfaService:
    """TOTP secrets are AES-GCM encrypted with the person's id as associated data; recovery codes are
    kept only as HMAC-SHA-256 digests; replay markers and failure counters live in the ephemeral store."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        encryptor: KeyEncryptor,
        store: EphemeralStore,
        *,
        issuer_name: str,
        clock: Callable[[], float] = time.time,
        required_for: Callable[[str], bool] = lambda person_id: False,
    ) -> None:
        self._sessions = sessions
        self._encryptor = encryptor
        self._recovery_key = encryptor.derive("recovery-codes")
        self._store = store
        self._issuer_name = issuer_name
        self._clock = clock
        self._required_for = required_for

    # -- enrolment ------------------------------------------------------------------------------

    def begin_enrolment(self, person_id: str) -> Enrolment:
        """A new secret, pending until `confirm_enrolment`.

        The pending secret lives in the ephemeral store (encrypted, 10-minute TTL), not in the person's
        row: an abandoned enrolment disappears by itself, and a person who already has TOTP keeps the
        working secret until the new one is confirmed."""
        username = self._username(person_id)
        secret = pyotp.random_base32()
        blob = self._encryptor.encrypt(secret.encode(), aad=person_id.encode())
        self._store.set(_pending_key(person_id), base64.b64encode(blob).decode(), PENDING_TTL)
        return self._enrolment(secret, username)

    def pending_enrolment(self, person_id: str) -> Enrolment | None:
        """The enrolment begun and not yet confirmed (so a reloaded page shows the same QR code)."""
        secret = self._pending_secret(person_id)
        return self._enrolment(secret, self._username(person_id)) if secret else None

    def confirm_enrolment(self, person_id: str, code: str) -> list[str]:
        """Check the first code from the authenticator app, enable TOTP, and return ten new recovery
        codes: the only time they exist in plain text."""
        if self.is_locked(person_id):
            raise MfaError("Too many wrong codes. Wait a few minutes and try again.", "locked")
        secret = self._pending_secret(person_id)
        if secret is None:
            raise MfaError("The set-up has expired. Start again.", "expired")
        if self._check_totp(person_id, secret, code) is None:
            self._count_failure(person_id)
            raise MfaError(
                "The code is not correct. Check the time on your phone and try again.", "invalid_code"
            )
        if self._store.take(_pending_key(person_id)) is None:
            raise MfaError("The set-up was already completed.", "completed")
        codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
        now = int(self._clock())
        with self._sessions.begin() as session:
            row = session.get(PersonRow, person_id)
            if row is None:
                raise MfaError("The account no longer exists.", "no_account")
            row.totp_secret_enc = self._encryptor.encrypt(secret.encode(), aad=person_id.encode())
            row.totp_enabled_at = now
            row.updated_at = now
            session.execute(delete(RecoveryCodeRow).where(RecoveryCodeRow.person_id == person_id))
            session.add_all(
                RecoveryCodeRow(person_id=person_id, code_digest=self._digest(person_id, c), created_at=now)
                for c in codes
            )
        self._store.delete(_failures_key(person_id))
        return codes

    # -- verification ---------------------------------------------------------------------------

    def verify(self, person_id: str, code: str) -> str | None:
        """The amr method the code proves ("otp" for TOTP, "rec" for a recovery code), or None.

        A TOTP code is accepted once per time step; a recovery code once ever. Both checks are atomic,
        so of two concurrent requests with the same code exactly one succeeds. While the person has
        had too many failures, every code is refused without being checked."""
        if self.is_locked(person_id):
            return None
        normalised = normalise_code(code)
        method: str | None = None
        if len(normalised) == TOTP_DIGITS and normalised.isdigit():
            secret = self._active_secret(person_id)
            if secret is not None and self._check_totp(person_id, secret, normalised) is not None:
                method = METHOD_TOTP
        elif len(normalised) == RECOVERY_CODE_LENGTH and self._consume_recovery_code(person_id, normalised):
            method = METHOD_RECOVERY
        if method is None:
            self._count_failure(person_id)
            return None
        self._store.delete(_failures_key(person_id))
        return method

    def is_locked(self, person_id: str) -> bool:
        """Too many wrong codes lately: every code is refused until the window ends."""
        count = self._store.get(_failures_key(person_id))
        return count is not None and int(count) >= MAX_FAILURES

    # -- status and administration --------------------------------------------------------------

    def is_enabled(self, person_id: str) -> bool:
        with self._sessions() as session:
            row = session.get(PersonRow, person_id)
            return row is not None and row.totp_enabled_at is not None and row.totp_secret_enc is not None

    def requires_mfa(self, person_id: str) -> bool:
        """Whether the person must use a second factor (entity representatives, admins)."""
        return self._required_for(person_id)

    def remaining_recovery_codes(self, person_id: str) -> int:
        with self._sessions() as session:
            count = session.scalar(
                select(func.count())
                .select_from(RecoveryCodeRow)
                .where(RecoveryCodeRow.person_id == person_id, RecoveryCodeRow.used_at.is_(None))
            )
            return int(count or 0)

    def reset(self, person_id: str) -> None:
        """Remove the person's TOTP secret and recovery codes (an admin action, e.g. a lost phone)."""
        now = int(self._clock())
        with self._sessions.begin() as session:
            row = session.get(PersonRow, person_id)
            if row is not None:
                row.totp_secret_enc = None
                row.totp_enabled_at = None
                row.updated_at = now
            session.execute(delete(RecoveryCodeRow).where(RecoveryCodeRow.person_id == person_id))
        self._store.delete(_pending_key(person_id))
        self._store.delete(_failures_key(person_id))

    # -- internals ------------------------------------------------------------------------------

    def _username(self, person_id: str) -> str:
        with self._sessions() as session:
            row = session.get(PersonRow, person_id)
            if row is None:
                raise MfaError("The account no longer exists.", "no_account")
            return row.username

    def _enrolment(self, secret: str, username: str) -> Enrolment:
        uri = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL).provisioning_uri(
            name=username, issuer_name=self._issuer_name
        )
        return Enrolment(secret=secret, provisioning_uri=uri, qr_svg_data_uri=qr_svg_data_uri(uri))

    def _pending_secret(self, person_id: str) -> str | None:
        raw = self._store.get(_pending_key(person_id))
        if raw is None:
            return None
        try:
            return self._encryptor.decrypt(base64.b64decode(raw), aad=person_id.encode()).decode()
        except (DecryptionError, ValueError):
            return None

    def _active_secret(self, person_id: str) -> str | None:
        with self._sessions() as session:
            row = session.get(PersonRow, person_id)
            if row is None or row.totp_enabled_at is None or row.totp_secret_enc is None:
                return None
            blob = row.totp_secret_enc
        return self._encryptor.decrypt(blob, aad=person_id.encode()).decode()

    def _check_totp(self, person_id: str, secret: str, code: str) -> int | None:
        """The time step the code belongs to, if it is right and that step was not used before.

        RFC 6238 §5.2: a code is accepted once. The used-marker is set atomically (set-if-absent) and
        lives as long as a code of that step can still be accepted."""
        code = normalise_code(code)
        if len(code) != TOTP_DIGITS or not code.isdigit():
            return None
        totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL)
        current = totp.timecode(self._clock())
        for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
            if hmac.compare_digest(totp.generate_otp(step), code):
                ttl = TOTP_INTERVAL * (2 * VALID_WINDOW + 2)
                return step if self._store.add(f"totp-used:{person_id}:{step}", "1", ttl) else None
        return None

    def _consume_recovery_code(self, person_id: str, code: str) -> bool:
        """Single use: one UPDATE that only an unused code matches, so one caller wins."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(RecoveryCodeRow)
                .where(
                    RecoveryCodeRow.code_digest == self._digest(person_id, code),
                    RecoveryCodeRow.person_id == person_id,
                    RecoveryCodeRow.used_at.is_(None),
                )
                .values(used_at=int(self._clock()))
            )
            return getattr(result, "rowcount", 0) == 1

    def _digest(self, person_id: str, code: str) -> str:
        """Keyed so a database copy alone cannot be brute-forced; the person id keeps digests unique."""
        message = f"{person_id}:{normalise_code(code)}".encode()
        return hmac.new(self._recovery_key, message, hashlib.sha256).hexdigest()

    def _count_failure(self, person_id: str) -> None:
        self._store.incr(_failures_key(person_id), FAILURE_WINDOW)


def new_recovery_code() -> str:
    """Ten random characters, shown as two groups of five (`xxxxx-xxxxx`)."""
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def normalise_code(code: str) -> str:
    """What the person typed, without spaces or hyphens and in lower case (codes are read off paper)."""
    return "".join(ch for ch in code[:64] if ch not in " -\t").lower()


def qr_svg_data_uri(text: str) -> str:
    """The QR code of `text` as an SVG `data:` URI, drawn here: no image service sees the secret.
    qrcode loads here, at the first enrolment: with its SVG writer (ElementTree) ~1 MiB per worker."""
    import qrcode  # here, not at the top (see above)
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathFillImage, box_size=10, border=4)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _pending_key(person_id: str) -> str:
    return f"totp-pending:{person_id}"


def _failures_key(person_id: str) -> str:
    return f"mfa-failures:{person_id}"
