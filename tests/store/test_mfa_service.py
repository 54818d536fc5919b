"""The second-factor service on the backend under test: enrolment, TOTP replay, recovery codes, reset."""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa

from idp.domain.assurance import LOA1, LOA2, LOA3, acr_for
from idp.services.mfa import MAX_FAILURES, MfaError, MfaService
from idp.services.sso_sessions import SsoSessionService
from idp.store.db import build_engine, build_sessionmaker
from idp.store.key_encryption import KeyEncryptor, load_or_create_kek

PERSON = {
    "username": "zhangsan",
    "password": "correct horse battery",
    "name": "张三",
    "id_number": "410105198503121235",
}
RECOVERY_FORMAT = re.compile(r"^[2-9a-hjkmnp-z]{5}-[2-9a-hjkmnp-z]{5}$")


class Clock:
    """Time for the TOTP checks, in the middle of a 30-second step so a test never straddles one."""

    def __init__(self) -> None:
        self.now = float(int(time.time()) // 30 * 30 + 15)

    def __call__(self) -> float:
        return self.now

    def step(self, steps: int = 1) -> None:
        self.now += 30 * steps


@pytest.fixture
def engine(settings):
    engine = build_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def mfa(settings, services, engine, clock) -> MfaService:
    encryptor = KeyEncryptor(load_or_create_kek(settings.key_encryption_key, Path(settings.key_dir)))
    return MfaService(
        build_sessionmaker(engine), encryptor, services.ephemeral, issuer_name="idp.test", clock=clock
    )


@pytest.fixture
def person_id(services) -> str:
    return services.persons.upsert(PERSON).id


def race(attempt: Callable[[], str | None], threads: int) -> list[str | None]:
    """Run `attempt` in several threads released at once; the results, successes first."""
    results: list[str | None] = []
    barrier = threading.Barrier(threads)

    def run() -> None:
        barrier.wait()
        results.append(attempt())

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sorted(results, key=lambda result: result is None)


def enrol(mfa: MfaService, person_id: str, clock: Clock) -> tuple[str, list[str]]:
    secret = mfa.begin_enrolment(person_id).secret
    codes = mfa.confirm_enrolment(person_id, pyotp.TOTP(secret).at(clock()))
    clock.step()  # the confirming code's time step is spent
    return secret, codes


def test_enrolment_shows_a_qr_code_and_enables_totp_only_once_confirmed(
    mfa, services, person_id, engine, clock
):
    enrolment = mfa.begin_enrolment(person_id)
    assert re.fullmatch(r"[A-Z2-7]{32}", enrolment.secret)
    assert enrolment.provisioning_uri.startswith("otpauth://totp/idp.test:zhangsan?secret=")
    assert "issuer=idp.test" in enrolment.provisioning_uri
    prefix = "data:image/svg+xml;base64,"
    assert enrolment.qr_svg_data_uri.startswith(prefix)
    assert b"<svg" in base64.b64decode(enrolment.qr_svg_data_uri[len(prefix) :])
    # pending: nothing in the person's row yet, and a reloaded page shows the same secret
    assert not mfa.is_enabled(person_id)
    assert mfa.pending_enrolment(person_id).secret == enrolment.secret
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT totp_secret_enc FROM persons")) is None

    codes = mfa.confirm_enrolment(person_id, pyotp.TOTP(enrolment.secret).at(clock()))

    assert mfa.is_enabled(person_id) and services.persons.get(person_id).mfa_enabled
    assert len(codes) == 10 == len(set(codes)) == mfa.remaining_recovery_codes(person_id)
    assert all(RECOVERY_FORMAT.match(code) for code in codes)
    assert mfa.pending_enrolment(person_id) is None
    with engine.connect() as conn:
        stored = conn.scalar(sa.text("SELECT totp_secret_enc FROM persons"))
    assert stored and enrolment.secret.encode() not in bytes(stored)  # encrypted at rest


def test_a_wrong_confirming_code_is_refused(mfa, person_id, clock):
    secret = mfa.begin_enrolment(person_id).secret
    wrong = pyotp.TOTP(secret).at(clock() - 300)
    with pytest.raises(MfaError) as refused:
        mfa.confirm_enrolment(person_id, wrong)
    assert refused.value.reason == "invalid_code" and "not correct" in str(refused.value)
    with pytest.raises(MfaError):
        mfa.confirm_enrolment(person_id, "not a code")
    assert not mfa.is_enabled(person_id) and mfa.remaining_recovery_codes(person_id) == 0
    assert mfa.confirm_enrolment(person_id, pyotp.TOTP(secret).at(clock()))  # still pending


def test_confirming_without_a_pending_enrolment_is_refused(mfa, person_id):
    with pytest.raises(MfaError) as refused:
        mfa.confirm_enrolment(person_id, "123456")
    assert refused.value.reason == "expired"


def test_a_totp_code_is_accepted_once_per_time_step(mfa, person_id, clock):
    secret, _ = enrol(mfa, person_id, clock)
    totp = pyotp.TOTP(secret)
    code = totp.at(clock())
    assert mfa.verify(person_id, code) == "otp"
    assert mfa.verify(person_id, code) is None  # replay
    clock.step()
    assert mfa.verify(person_id, totp.at(clock())) == "otp"


def test_the_confirming_code_cannot_be_replayed(mfa, person_id, clock):
    secret = mfa.begin_enrolment(person_id).secret
    code = pyotp.TOTP(secret).at(clock())
    mfa.confirm_enrolment(person_id, code)
    assert mfa.verify(person_id, code) is None


def test_codes_of_the_neighbouring_steps_are_accepted_older_ones_are_not(mfa, person_id, clock):
    secret, _ = enrol(mfa, person_id, clock)
    totp = pyotp.TOTP(secret)
    clock.step(5)
    assert mfa.verify(person_id, totp.at(clock() - 30)) == "otp"
    assert mfa.verify(person_id, totp.at(clock() + 30)) == "otp"
    assert mfa.verify(person_id, totp.at(clock() - 60)) is None


def test_two_concurrent_uses_of_one_code_exactly_one_succeeds(mfa, person_id, clock):
    secret, _ = enrol(mfa, person_id, clock)
    code = pyotp.TOTP(secret).at(clock())
    assert race(lambda: mfa.verify(person_id, code), 4) == ["otp", None, None, None]


def test_recovery_codes_are_single_use_and_stored_only_as_digests(mfa, person_id, engine, clock):
    _, codes = enrol(mfa, person_id, clock)
    assert mfa.verify(person_id, codes[0]) == "rec"
    assert mfa.verify(person_id, codes[0]) is None  # used
    assert mfa.verify(person_id, codes[1].upper().replace("-", " ")) == "rec"  # as typed from paper
    assert mfa.remaining_recovery_codes(person_id) == 8
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT code_digest, used_at FROM recovery_codes")).all()
    assert len(rows) == 10 and sum(used is not None for _, used in rows) == 2
    dump = " ".join(digest for digest, _ in rows)
    for code in codes:
        assert code not in dump and code.replace("-", "") not in dump
    assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest, _ in rows)


def test_a_recovery_code_is_consumed_once_under_concurrency(mfa, person_id, clock):
    _, codes = enrol(mfa, person_id, clock)
    assert race(lambda: mfa.verify(person_id, codes[3]), 4) == ["rec", None, None, None]


def test_a_recovery_code_of_another_person_is_refused(mfa, services, person_id, clock):
    _, codes = enrol(mfa, person_id, clock)
    other = services.persons.upsert({"username": "lisi", "password": "another password"}).id
    enrol(mfa, other, clock)
    assert mfa.verify(other, codes[0]) is None
    assert mfa.verify(person_id, codes[0]) == "rec"


def test_too_many_wrong_codes_lock_the_second_factor(mfa, person_id, clock):
    secret, codes = enrol(mfa, person_id, clock)
    for _ in range(MAX_FAILURES):
        assert mfa.verify(person_id, "000000") is None
    assert mfa.is_locked(person_id)
    assert mfa.verify(person_id, pyotp.TOTP(secret).at(clock())) is None  # refused unchecked
    assert mfa.verify(person_id, codes[0]) is None
    assert mfa.remaining_recovery_codes(person_id) == 10  # not consumed while locked


def test_a_success_clears_earlier_failures(mfa, person_id, clock):
    secret, _ = enrol(mfa, person_id, clock)
    for _ in range(MAX_FAILURES - 1):
        mfa.verify(person_id, "000000")
    assert mfa.verify(person_id, pyotp.TOTP(secret).at(clock())) == "otp"
    mfa.verify(person_id, "000000")
    assert not mfa.is_locked(person_id)


def test_reset_removes_the_secret_and_the_recovery_codes(mfa, services, person_id, engine, clock):
    secret, codes = enrol(mfa, person_id, clock)
    mfa.reset(person_id)
    assert not mfa.is_enabled(person_id) and not services.persons.get(person_id).mfa_enabled
    assert mfa.remaining_recovery_codes(person_id) == 0
    assert mfa.verify(person_id, pyotp.TOTP(secret).at(clock())) is None
    assert mfa.verify(person_id, codes[0]) is None
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM recovery_codes")) == 0
        assert conn.scalar(sa.text("SELECT totp_secret_enc FROM persons")) is None


def test_a_new_enrolment_keeps_the_old_secret_until_confirmed(mfa, person_id, clock):
    old, old_codes = enrol(mfa, person_id, clock)
    new = mfa.begin_enrolment(person_id).secret
    assert mfa.verify(person_id, pyotp.TOTP(old).at(clock())) == "otp"
    clock.step()
    new_codes = mfa.confirm_enrolment(person_id, pyotp.TOTP(new).at(clock()))
    clock.step()
    assert mfa.verify(person_id, pyotp.TOTP(old).at(clock())) is None
    assert mfa.verify(person_id, old_codes[0]) is None  # the old recovery codes are replaced
    assert mfa.verify(person_id, new_codes[0]) == "rec"


def test_requires_mfa_delegates_to_the_configured_rule(settings, services, engine, person_id):
    encryptor = KeyEncryptor(load_or_create_kek(settings.key_encryption_key, Path(settings.key_dir)))
    rule = MfaService(
        build_sessionmaker(engine),
        encryptor,
        services.ephemeral,
        issuer_name="idp.test",
        required_for=lambda pid: pid == person_id,
    )
    assert rule.requires_mfa(person_id) and not rule.requires_mfa("someone-else")
    assert not services.mfa.requires_mfa(person_id)  # the default: nobody


# -- the session after a second factor ------------------------------------------------------------


def test_acr_for_never_claims_more_than_was_done():
    assert acr_for(False, {"pwd"}) == LOA1
    assert acr_for(False, {"pwd", "otp", "mfa"}) == LOA1  # level 3 is level 2 plus a factor
    assert acr_for(True, {"pwd"}) == LOA2
    assert acr_for(True, {"pwd", "mfa"}) == LOA2  # the marker alone is no factor
    assert acr_for(True, {"pwd", "otp", "mfa"}) == LOA3
    assert acr_for(True, {"pwd", "rec", "mfa"}) == LOA3


def test_raise_assurance_upgrades_the_same_session(services):
    clock = Clock()
    sso = SsoSessionService(services.ephemeral, 3600, clock=clock)
    handle, session = sso.start("p1", LOA2, ("pwd",), None)
    sso.record_client(session, "portal")
    clock.step(2)
    raised = sso.raise_assurance(handle, LOA3, ("otp", "mfa"))
    assert raised is not None and raised.sid == session.sid
    assert (raised.acr, raised.amr) == (LOA3, ("pwd", "otp", "mfa"))
    assert raised.auth_time == int(clock()) > session.auth_time
    assert sso.find(handle) == raised and sso.clients(session.sid) == {"portal"}


def test_raise_assurance_does_not_revive_an_ended_session(services):
    sso = SsoSessionService(services.ephemeral, 3600)
    handle, session = sso.start("p1", LOA2, ("pwd",), None)
    sso.end(session.sid)
    assert sso.raise_assurance(handle, LOA3, ("otp", "mfa")) is None
    assert sso.find(handle) is None
    assert sso.raise_assurance(None, LOA3, ("otp",)) is None
