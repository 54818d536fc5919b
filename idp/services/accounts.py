"""Self-service accounts: registration, password change and reset, real-name verification, and what a
person sees of their own sessions and authorised platforms.

No answer here tells a stranger whether an account exists: registration and password reset always
say "check your inbox"; what differs is only what the owner of the address receives.
One-time links carry 32 random bytes; the ephemeral store keeps only their SHA-256 digest, with a TTL,
and a link is consumed atomically (`take`), so of two concurrent uses exactly one succeeds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from idp.domain.errors import InvalidIdentifier
from idp.domain.identifiers import mask_phone, parse_resident_id
from idp.domain.models import Person
from idp.services.clients import ClientService
from idp.services.consent import ConsentService
from idp.services.logout import LogoutService
from idp.services.notifier import Notifier
from idp.services.persons import MIN_PASSWORD_LENGTH, ContactInUse, IdNumberInUse, PersonService
from idp.services.sso_sessions import SsoSessionService
from idp.services.tokens import TokenService
from idp.sources.base import RealNameVerifier, SourceUnavailable
from idp.store.ephemeral import EphemeralStore

log = logging.getLogger(__name__)

MAX_PASSWORD_LENGTH = 256  # the login form reads at most this many characters
MAX_NAME_LENGTH = 64
LINK_TTL = 30 * 60
MAX_LINKS_PER_HOUR = 3  # registration and reset messages per address (mail-bombing)
MAX_VERIFICATIONS_PER_DAY = 5  # the population register is not an oracle for name/number pairs
MAX_PASSWORD_CHECKS = 5  # wrong current passwords on the change form per 15 minutes
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")  # mainland China mobile numbers


class AccountError(Exception):
    """A self-service request that cannot be done; `code` is stable (the web layer words it)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Contact:
    """Where one-time links go: an email address or a mainland mobile number."""

    kind: str  # "email" | "phone"
    value: str

    @property
    def masked(self) -> str:
        if self.kind == "phone":
            return mask_phone(self.value)
        local, _, domain = self.value.partition("@")
        return f"{local[:1]}***@{domain}"


@dataclass(frozen=True)
class SessionSummary:
    """One of the person's SSO sessions, as "my sessions" shows it."""

    sid: str
    auth_time: int
    acr: str
    amr: tuple[str, ...]
    created_at: int
    client_names: tuple[str, ...]
    current: bool


@dataclass(frozen=True)
class Platform:
    """A platform the person authorised: by consent, or holding a refresh token for them."""

    client_id: str
    client_name: str
    scopes: tuple[str, ...]
    granted_at: int | None


def parse_contact(text: str) -> Contact:
    """An email address (lower case) or a mainland mobile number (+86 / spaces / hyphens removed)."""
    value = unicodedata.normalize("NFKC", text or "").strip()
    if "@" in value:
        if len(value) <= 254 and _EMAIL.match(value):
            return Contact("email", value.lower())
    else:
        digits = re.sub(r"[\s-]", "", value)
        for prefix in ("+86", "0086"):
            if digits.startswith(prefix):
                digits = digits[len(prefix) :]
        if _MOBILE.match(digits):
            return Contact("phone", digits)
    raise AccountError("invalid_contact", "Enter a valid email address or mainland mobile number.")


def check_new_password(password: str, confirm: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            "password_too_short", f"The password must be at least {MIN_PASSWORD_LENGTH} characters."
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(
            "password_too_long", f"The password must be at most {MAX_PASSWORD_LENGTH} characters."
        )
    if not password.strip():
        raise AccountError("password_too_short", "The password must not be only spaces.")
    if password != confirm:
        raise AccountError("password_mismatch", "The two passwords do not match.")


def clean_name(name: str, *, required: bool) -> str | None:
    value = unicodedata.normalize("NFKC", name or "").strip()
    if not value:
        if required:
            raise AccountError("name_required", "Enter your name.")
        return None
    if len(value) > MAX_NAME_LENGTH or any(unicodedata.category(c).startswith("C") for c in value):
        raise AccountError(
            "name_invalid", f"The name must be at most {MAX_NAME_LENGTH} printable characters."
        )
    return value


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _link_key(purpose: str, token: str) -> str | None:
    if not token or len(token) > 100:
        return None
    return f"{purpose}:{_digest(token)}"


class AccountService:
    def __init__(
        self,
        persons: PersonService,
        notifier: Notifier,
        store: EphemeralStore,
        verifier: RealNameVerifier | None,
        *,
        sso: SsoSessionService,
        logout: LogoutService,
        consent: ConsentService,
        tokens: TokenService,
        clients: ClientService,
        issuer: str,
        clock: Callable[[], float] = time.time,
        link_ttl: int = LINK_TTL,
    ) -> None:
        self._persons = persons
        self._notifier = notifier
        self._store = store
        self._verifier = verifier
        self._sso = sso
        self._logout = logout
        self._consent = consent
        self._tokens = tokens
        self._clients = clients
        self._issuer = issuer
        self._clock = clock
        self._link_ttl = link_ttl

    # -- registration (self-registered accounts are level 1 until real-name verification) -----------

    def start_registration(self, contact_text: str) -> Contact:
        """Send a one-time registration link to the contact, or, when an account already has it, a
        notice saying so. The caller shows the same "check your inbox" page either way."""
        contact = parse_contact(contact_text)
        if not self._within_rate(f"register-sent:{_digest(contact.value)}", MAX_LINKS_PER_HOUR, 3600):
            log.info("registration message to %s suppressed (rate)", contact.masked)
            return contact
        if self._persons.contact_in_use(**_contact_fields(contact)):
            self._notifier.send(contact.value, *_already_registered_message(self._issuer))
            log.info("registration attempt for an existing contact %s: notice sent", contact.masked)
            return contact
        token = secrets.token_urlsafe(32)
        payload = json.dumps({"kind": contact.kind, "value": contact.value}, separators=(",", ":"))
        self._store.set(f"register:{_digest(token)}", payload, self._link_ttl)
        link = f"{self._issuer}/register/complete/{token}"
        self._notifier.send(contact.value, *_registration_message(link, self._link_ttl // 60))
        log.info("registration link sent to %s", contact.masked)
        return contact

    def registration_contact(self, token: str) -> Contact | None:
        """The contact a registration link was sent to, while the link is unused and unexpired."""
        key = _link_key("register", token)
        raw = self._store.get(key) if key else None
        return _decode_contact(raw) if raw else None

    def complete_registration(self, token: str, name: str, password: str, confirm: str) -> Person:
        """Create the account for the link's contact; the link is spent only when the form is valid."""
        display_name = clean_name(name, required=False)
        check_new_password(password, confirm)
        key = _link_key("register", token)
        raw = self._store.take(key) if key else None
        contact = _decode_contact(raw) if raw else None
        if contact is None:
            raise AccountError("link_invalid", "This link is invalid, used or expired.")
        try:
            person = self._persons.register_self(
                **_contact_fields(contact), name=display_name, password=password
            )
        except ContactInUse:  # registered meanwhile through another link
            raise AccountError("registration_failed", "The account could not be created.") from None
        log.info("self-registered account %s created", person.id[:8])
        return person

    # -- passwords --------------------------------------------------------------------------------

    def change_password(
        self, person_id: str, current: str, new: str, confirm: str, *, keep_sid: str | None = None
    ) -> int:
        """Change the password after checking the current one; every other session of the person is
        ended (with back-channel logout). Returns how many sessions were ended."""
        failures_key = f"password-check-fail:{person_id}"
        failures = int(self._store.get(failures_key) or 0)
        if failures >= MAX_PASSWORD_CHECKS:
            raise AccountError("too_many_attempts", "Too many attempts. Try again later.")
        check_new_password(new, confirm)
        if not self._persons.check_password(person_id, current[:MAX_PASSWORD_LENGTH]):
            self._store.incr(failures_key, 15 * 60)
            raise AccountError("wrong_password", "The current password is incorrect.")
        self._store.delete(failures_key)
        self._persons.set_password(person_id, new)
        ended = self._end_sessions(person_id, keep_sid=keep_sid)
        log.info("password changed for %s; %d other session(s) ended", person_id[:8], ended)
        return ended

    def request_password_reset(self, identifier: str) -> None:
        """Send a one-time reset link to the person's email (else mobile number) if the identifier
        names one; always returns nothing, so the caller's answer cannot differ."""
        identifier = unicodedata.normalize("NFKC", identifier or "").strip()[:254]
        person = self._persons.find_for_recovery(identifier) if identifier else None
        recipient = (person.email or person.phone_number) if person and not person.disabled else None
        if person is None or recipient is None:
            log.info("password reset requested for an unknown or unreachable account")
            return
        if not self._within_rate(f"reset-sent:{person.id}", MAX_LINKS_PER_HOUR, 3600):
            log.info("password reset link for %s suppressed (rate)", person.id[:8])
            return
        token = secrets.token_urlsafe(32)
        # The link dies with any password change after it was sent (the stamp no longer matches).
        stamp = self._persons.password_changed_at(person.id) or 0
        self._store.set(f"password-reset:{_digest(token)}", f"{person.id}:{stamp}", self._link_ttl)
        link = f"{self._issuer}/password/reset/{token}"
        self._notifier.send(recipient, *_reset_message(link, self._link_ttl // 60))
        log.info("password reset link sent for %s", person.id[:8])

    def reset_link_valid(self, token: str) -> bool:
        key = _link_key("password-reset", token)
        return bool(key and self._store.get(key))

    def reset_password(self, token: str, new: str, confirm: str) -> int:
        """Set a new password through a reset link (single use) and end every session of the person,
        so every platform is logged out. Returns how many sessions were ended."""
        check_new_password(new, confirm)
        key = _link_key("password-reset", token)
        raw = self._store.take(key) if key else None
        person_id, _, stamp = (raw or "").partition(":")
        person = self._persons.get(person_id) if person_id else None
        if (
            person is None
            or person.disabled
            or str(self._persons.password_changed_at(person_id) or 0) != stamp
        ):
            raise AccountError("link_invalid", "This link is invalid, used or expired.")
        self._persons.set_password(person_id, new)
        ended = self._end_sessions(person_id, keep_sid=None)
        log.info("password reset for %s; %d session(s) ended", person_id[:8], ended)
        return ended

    # -- real-name verification (level 1 -> level 2) -------------------------------------------------

    def verify_real_name(self, person_id: str, name: str, id_number: str) -> Person:
        """Check name + identity number against the population register and record the match.

        A mismatch and a number that another person already holds get the same refusal, so the form
        does not tell which numbers are registered here."""
        person = self._persons.get(person_id)
        if person is None:
            raise AccountError("verification_failed", "The name and identity number could not be verified.")
        if person.verified:
            raise AccountError("already_verified", "The account is already real-name verified.")
        real_name = clean_name(name, required=True)
        assert real_name is not None
        try:
            number = parse_resident_id(id_number or "").value
        except InvalidIdentifier as exc:
            raise AccountError(f"id_number_{exc.code}", exc.message) from None
        attempts_key = f"verify-attempts:{person_id}"
        if int(self._store.get(attempts_key) or 0) >= MAX_VERIFICATIONS_PER_DAY:
            raise AccountError("too_many_attempts", "Too many attempts. Try again tomorrow.")
        if self._verifier is None:
            log.warning("real-name verification requested but no population register is configured")
            raise AccountError("source_unavailable", "The population register is unavailable, try later.")
        try:
            matched = self._verifier.verify_real_name(real_name, number)
        except SourceUnavailable as exc:
            log.warning("real-name verification: population register unavailable: %s", exc)
            raise AccountError(
                "source_unavailable", "The population register is unavailable, try later."
            ) from None
        self._store.incr(attempts_key, 24 * 3600)
        if not matched:
            log.info("real-name verification mismatch for %s", person_id[:8])
            raise AccountError("verification_failed", "The name and identity number could not be verified.")
        try:
            verified = self._persons.mark_verified(
                person_id, name=real_name, id_number=number, verified_by="register"
            )
        except IdNumberInUse:
            log.warning("real-name verification for %s: number held by another person", person_id[:8])
            raise AccountError(
                "verification_failed", "The name and identity number could not be verified."
            ) from None
        log.info("real-name verified %s", person_id[:8])
        return verified

    # -- my sessions, my platforms ---------------------------------------------------------------

    def sessions_of(self, person_id: str, current_sid: str | None) -> list[SessionSummary]:
        summaries = []
        for session in self._sso.sessions_of(person_id):
            names = sorted(self._client_name(c) for c in self._sso.clients(session.sid))
            summaries.append(
                SessionSummary(
                    sid=session.sid,
                    auth_time=session.auth_time,
                    acr=session.acr,
                    amr=session.amr,
                    created_at=session.created_at,
                    client_names=tuple(names),
                    current=session.sid == current_sid,
                )
            )
        return sorted(summaries, key=lambda s: (not s.current, -s.created_at))

    def end_session(self, person_id: str, sid: str) -> bool:
        """End one of the person's own sessions (back-channel logout included); False if not theirs."""
        if sid not in {s.sid for s in self._sso.sessions_of(person_id)}:
            return False
        self._logout.end_session(sid, person_id)
        return True

    def platforms_of(self, person_id: str) -> list[Platform]:
        consents = {c.client_id: c for c in self._consent.list_for_person(person_id)}
        client_ids = set(consents) | self._tokens.clients_holding_refresh_tokens(person_id)
        platforms = []
        for client_id in client_ids:
            consent = consents.get(client_id)
            platforms.append(
                Platform(
                    client_id=client_id,
                    client_name=self._client_name(client_id),
                    scopes=consent.scopes if consent else (),
                    granted_at=consent.granted_at if consent else None,
                )
            )
        return sorted(platforms, key=lambda p: (p.client_name.lower(), p.client_id))

    def revoke_platform(self, person_id: str, client_id: str) -> int:
        """Withdraw a platform's authorisation: the consent and every token it holds for the person.
        Returns how many tokens were revoked."""
        self._consent.revoke(person_id, client_id)
        revoked = self._tokens.revoke_person_client(person_id, client_id)
        log.info("platform %s revoked by %s: %d token(s)", client_id, person_id[:8], revoked)
        return revoked

    # -- helpers ----------------------------------------------------------------------------------

    def _end_sessions(self, person_id: str, *, keep_sid: str | None) -> int:
        ended = 0
        for session in self._sso.sessions_of(person_id):
            if session.sid != keep_sid:
                self._logout.end_session(session.sid, person_id)
                ended += 1
        return ended

    def _within_rate(self, key: str, limit: int, window: int) -> bool:
        return self._store.incr(key, window) <= limit

    def _client_name(self, client_id: str) -> str:
        client = self._clients.get(client_id)
        return (client.client_name or client_id) if client else client_id


def _contact_fields(contact: Contact) -> dict[str, str | None]:
    if contact.kind == "email":
        return {"email": contact.value, "phone_number": None}
    return {"email": None, "phone_number": contact.value}


def _decode_contact(raw: str) -> Contact | None:
    try:
        data = json.loads(raw)
        return Contact(kind=data["kind"], value=data["value"])
    except (ValueError, KeyError, TypeError):
        return None


# Messages go out in both interface languages: the link may be opened on another device.


def _registration_message(link: str, minutes: int) -> tuple[str, str]:
    return (
        "统一身份认证平台：完成注册 / Complete your registration",
        f"请在{minutes}分钟内打开以下链接完成注册：\n{link}\n如果不是您本人操作，请忽略本消息。\n\n"
        f"Open this link within {minutes} minutes to complete your registration:\n{link}\n"
        "If you did not ask for this, ignore this message.",
    )


def _already_registered_message(issuer: str) -> tuple[str, str]:
    return (
        "统一身份认证平台：您已注册 / You already have an account",
        "有人使用此地址申请注册，但该地址已绑定账号。如忘记密码，可在此重置：\n"
        f"{issuer}/password/forgot\n如果不是您本人操作，请忽略本消息。\n\n"
        "Someone asked to register with this address, but it already belongs to an account. "
        f"If you forgot your password, reset it here:\n{issuer}/password/forgot\n"
        "If you did not ask for this, ignore this message.",
    )


def _reset_message(link: str, minutes: int) -> tuple[str, str]:
    return (
        "统一身份认证平台：重置密码 / Reset your password",
        f"请在{minutes}分钟内打开以下链接重置密码（仅可使用一次）：\n{link}\n"
        "如果不是您本人操作，请忽略本消息，您的密码不会改变。\n\n"
        f"Open this link within {minutes} minutes to reset your password (it works once):\n{link}\n"
        "If you did not ask for this, ignore this message; your password stays the same.",
    )
