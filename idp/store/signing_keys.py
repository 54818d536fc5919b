"""Repository of signing keys (SigningKeyRow): small queries, no transactions of its own."""

from __future__ import annotations

from sqlalchemy import false, or_, select, text, update
from sqlalchemy.orm import Session

from idp.store.models import SigningKeyRow


def add_signing_key(session: Session, row: SigningKeyRow) -> None:
    """Insert a new key; flushes so a duplicate kid raises IntegrityError here."""
    session.add(row)
    session.flush()


def list_published_signing_keys(session: Session, now: int) -> list[SigningKeyRow]:
    """Keys still in the JWKS at `now` (expires_at NULL or later), oldest first."""
    query = (
        select(SigningKeyRow)
        .where(or_(SigningKeyRow.expires_at.is_(None), SigningKeyRow.expires_at > now))
        .order_by(SigningKeyRow.created_at, SigningKeyRow.kid)
    )
    return list(session.scalars(query))


def list_signing_keys(session: Session) -> list[SigningKeyRow]:
    """Every key ever stored, expired ones included, oldest first."""
    query = select(SigningKeyRow).order_by(SigningKeyRow.created_at, SigningKeyRow.kid)
    return list(session.scalars(query))


def set_signing_key_retirement(session: Session, kid: str, *, retired_at: int, expires_at: int) -> bool:
    """Set when a key stops signing and when it leaves the JWKS; False if no such kid."""
    result = session.execute(
        update(SigningKeyRow)
        .where(SigningKeyRow.kid == kid)
        .values(retired_at=retired_at, expires_at=expires_at)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def lock_signing_keys(session: Session) -> None:
    """Serialise key creation and rotation across processes until the transaction ends.

    Call it as the first statement of the transaction. Readers are never blocked.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # SHARE ROW EXCLUSIVE conflicts with itself and with writers, not with plain SELECTs.
        session.execute(text("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE"))
    elif dialect == "sqlite":
        # A write statement, even one matching no row, takes SQLite's single write lock (waits on busy).
        session.execute(
            update(SigningKeyRow).where(false()).values(kid=SigningKeyRow.kid),
            execution_options={"synchronize_session": False},
        )
