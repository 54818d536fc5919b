"""Issued tokens, known only by SHA-256 digest: saving, lookup, refresh rotation, revocation."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any, NoReturn

from sqlalchemy import Connection, Engine, Row, Table, and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from idp.domain.models import AuthContext, TokenRecord
from idp.store.db import autocommit_reader
from idp.store.models import TokenRow

log = logging.getLogger(__name__)


def digest_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class RefreshRejected(Exception):
    """The refresh token cannot be used; `family_revoked` tells whether it was a replay."""

    def __init__(self, family_revoked: bool) -> None:
        super().__init__("refresh token rejected")
        self.family_revoked = family_revoked


TOKENS: Table = TokenRow.__table__  # type: ignore[assignment]
INSERT_TOKEN = TOKENS.insert()
# the columns of a TokenRecord (not the id, digest or successor)
FIND_TOKEN = select(
    *(
        TOKENS.c[name]
        for name in (
            "kind", "client_id", "person_id", "scope", "grant_id", "sid", "auth_time", "acr", "amr",
            "issued_at", "expires_at", "revoked_at", "rotated_at", "entity_id", "audience", "actor",
        )
    )
).where(TOKENS.c.digest == bindparam("digest"))  # fmt: skip
CLAIM_REFRESH = (
    update(TOKENS)
    .where(
        TOKENS.c.digest == bindparam("b_digest"),
        TOKENS.c.kind == "refresh",
        TOKENS.c.client_id == bindparam("b_client"),
        TOKENS.c.revoked_at.is_(None),
        TOKENS.c.rotated_at.is_(None),
        TOKENS.c.expires_at > bindparam("b_now"),
    )
    .values(rotated_at=bindparam("b_now"))
    .returning(TOKENS.c.digest)
)
NEW_ROW_COLUMNS = (
    "digest", "kind", "client_id", "person_id", "scope", "grant_id", "sid", "entity_id", "auth_time",
    "acr", "amr", "issued_at", "expires_at", "audience", "actor",
)  # fmt: skip


def _pair_statement(*, claim: bool) -> Any:
    """PostgreSQL: an access and a refresh token in one INSERT ... SELECT, so atomic in autocommit:
    one round trip instead of BEGIN, INSERT, COMMIT. With `claim`, the refresh token they replace is
    claimed in the same statement and they are selected FROM the claim, so they exist only if it
    matched (a data-modifying CTE; SQLite has none):

        WITH claimed AS (UPDATE tokens SET rotated_at = :now WHERE <live refresh token> RETURNING id)
        INSERT INTO tokens (...) SELECT :a_... FROM claimed UNION ALL SELECT :r_... FROM claimed
        RETURNING digest

    Two concurrent rotations of one token: the second waits for the first's row lock, then finds the
    token rotated (READ COMMITTED re-checks the WHERE), claims nothing and inserts nothing."""
    claimed = CLAIM_REFRESH.returning(TOKENS.c.id).cte("claimed") if claim else None

    def row(prefix: str) -> Any:
        typed = select(*(bindparam(prefix + n, type_=TOKENS.c[n].type).label(n) for n in NEW_ROW_COLUMNS))
        return typed if claimed is None else typed.select_from(claimed)

    statement = insert(TOKENS).from_select(list(NEW_ROW_COLUMNS), row("a_").union_all(row("r_")))
    return (statement if claimed is None else statement.add_cte(claimed)).returning(TOKENS.c.digest)


INSERT_PAIR = _pair_statement(claim=False)
ROTATE_INTO_PAIR = _pair_statement(claim=True)


class TokenService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        grace_seconds: int,
        clock: Callable[[], float] = time.time,
        issuing: Engine | None = None,
    ) -> None:
        """`issuing`: an autocommit engine that stores new tokens (`save`) and looks them up (`find`);
        by default the sessions' own. Given one that does not wait for the WAL flush
        (`build_engine(wait_for_flush=False)`), a crash of PostgreSQL can forget the tokens of its
        last ~0.6 s: their clients get invalid_token or invalid_grant and ask again, as after an
        expiry. Revocations never go through it."""
        self._sessions = sessions
        self._grace = grace_seconds
        self._clock = clock
        self._issuing = issuing if issuing is not None else self.engine()
        # Single statements need no transaction: autocommit spares the BEGIN and ROLLBACK round trips
        # on every token lookup (introspection, userinfo, refresh) and every new token. An issuing
        # engine is autocommit itself, which also spares switching each pooled connection to
        # autocommit and back (~40 us of CPU per use, 2026-12-03).
        self._single = issuing if issuing is not None else autocommit_reader(sessions)
        # PostgreSQL stores a token pair, and rotates a refresh token, in one statement (_pair_statement);
        # elsewhere in a transaction of the shared engine.
        self._one_statement = self.engine().dialect.name == "postgresql"

    def dispose(self) -> None:
        """Close the connection pools now (tests, shutdown): the issuing engine's and the shared one."""
        if self._issuing is not self.engine():
            self._issuing.dispose()
        self.engine().dispose()

    def engine(self) -> Engine:
        bind = self._sessions.kw["bind"]
        assert isinstance(bind, Engine)
        return bind

    def save(
        self,
        *,
        client_id: str,
        scope: str,
        context: AuthContext,
        access_token: str,
        access_expires_at: int,
        refresh_token: str | None = None,
        refresh_expires_at: int | None = None,
        audience: str | None = None,
        actor: str | None = None,
        rotates: str | None = None,
        issued_at: int | None = None,
    ) -> None:
        """`audience` and `actor` mark an exchanged access token (RFC 8693); it shares the grant and
        session of the token it was exchanged for, so their revocation takes it along. `audience`
        alone: a client-credentials token meant for another service.

        `rotates`: the refresh token these tokens replace. Marking it rotated and storing its
        successors happen in one transaction, so exactly one concurrent caller wins and a failure
        leaves the old token usable; the losers get RefreshRejected and nothing is stored.

        `issued_at`: a JWT's own `iat` (its `exp` is `access_expires_at`); by default now."""
        now = int(self._clock())
        common = {
            "client_id": client_id,
            "person_id": context.person_id,
            "scope": scope,
            "grant_id": context.grant_id,
            "sid": context.sid,
            "entity_id": context.entity_id,
            "auth_time": context.auth_time,
            "acr": context.acr,
            "amr": " ".join(context.amr) or None,
            "issued_at": now if issued_at is None else issued_at,
        }
        rows = [
            {
                "digest": digest_token(access_token),
                "kind": "access",
                "expires_at": access_expires_at,
                "audience": audience,
                "actor": actor,
                **common,
            }
        ]
        if refresh_token is not None and refresh_expires_at is not None:
            rows.append(
                {
                    "digest": digest_token(refresh_token),
                    "kind": "refresh",
                    "expires_at": refresh_expires_at,
                    "audience": None,
                    "actor": None,
                    **common,
                }
            )
        # A Core INSERT, not the ORM unit of work: on the token endpoint's hot path the session's
        # bookkeeping cost more than the statement (profile: ~30% of a client-credentials request).
        # The same statement object every time, rows as parameters: compiled once and cached. (A
        # multi-row `.values(rows)` is compiled anew per call: ~240 us of CPU, profile 2026-12-03.)
        if rotates is None and len(rows) == 1:  # one row is atomic on its own
            with self._single.connect() as conn:
                conn.execute(INSERT_TOKEN, rows[0])
            return
        if self._one_statement and len(rows) == 2:
            params = {
                p + n: row[n] for p, row in zip(("a_", "r_"), rows, strict=True) for n in NEW_ROW_COLUMNS
            }
            if rotates is None:
                with self._single.connect() as conn:
                    conn.execute(INSERT_PAIR, params)
                return
            params.update(b_digest=digest_token(rotates), b_client=client_id, b_now=now)
            with self._single.connect() as conn:
                claimed = bool(conn.execute(ROTATE_INTO_PAIR, params).all())
        else:
            with self.engine().begin() as conn:  # an executemany: both rows or neither
                claimed = (
                    rotates is None or self._claim(conn, digest_token(rotates), client_id, now) is not None
                )
                if claimed:
                    conn.execute(INSERT_TOKEN, rows)
        if not claimed:
            assert rotates is not None  # only a claim can fail
            self._reject(digest_token(rotates), client_id, now)  # raises: nothing was written

    def find(self, token: str) -> TokenRecord | None:
        if not token or len(token) > 8192:
            return None
        with self._single.connect() as conn:  # Core: a plain row, no ORM identity map
            row = conn.execute(FIND_TOKEN, {"digest": digest_token(token)}).first()
            return _to_record(row) if row is not None else None

    def _claim(self, conn: Connection, digest: str, client_id: str, now: int) -> Row[Any] | None:
        """Mark a live refresh token rotated in one conditional UPDATE; None if it is not live."""
        return conn.execute(CLAIM_REFRESH, {"b_digest": digest, "b_client": client_id, "b_now": now}).first()

    def _reject(self, digest: str, client_id: str, now: int) -> NoReturn:
        """Why a refresh token could not be claimed. A token already rotated within the grace window
        is refused without harm (a legitimate concurrent retry); after it, the whole family is
        revoked (replay, RFC 9700 §4.14.2)."""
        with self._single.connect() as conn:
            row = conn.execute(select(TOKENS).where(TOKENS.c.digest == digest)).first()
        if row is None or row.kind != "refresh" or row.client_id != client_id:
            raise RefreshRejected(family_revoked=False)
        if row.rotated_at is not None and row.revoked_at is None and now - row.rotated_at > self._grace:
            self.revoke_grant(row.grant_id)
            log.warning("refresh token replay: family %s revoked", row.grant_id[:8])
            raise RefreshRejected(family_revoked=True)
        raise RefreshRejected(family_revoked=False)

    def revoke_grant(self, grant_id: str) -> int:
        """Revoke every token issued under one grant (code reuse, refresh replay, revocation)."""
        return self._revoke_where(TokenRow.grant_id == grant_id)

    def revoke_session(self, sid: str) -> int:
        """Revoke every token issued in an SSO session (logout)."""
        return self._revoke_where(TokenRow.sid == sid)

    def revoke_client(self, client_id: str) -> int:
        """Revoke every token of a client (disabled or deleted), and every token exchanged for use at
        it; returns how many were active."""
        return self._revoke_where(or_(TokenRow.client_id == client_id, TokenRow.audience == client_id))

    def revoke_person_client(self, person_id: str, client_id: str) -> int:
        """Revoke every token (refresh and access) a client holds for a person (the person withdrew
        the platform's authorisation)."""
        return self._revoke_where(and_(TokenRow.person_id == person_id, TokenRow.client_id == client_id))

    def clients_holding_refresh_tokens(self, person_id: str) -> set[str]:
        """Clients with a live refresh token for this person (they keep access without a login)."""
        now = int(self._clock())
        with self._sessions() as session:
            return set(
                session.scalars(
                    select(TokenRow.client_id)
                    .where(
                        TokenRow.person_id == person_id,
                        TokenRow.kind == "refresh",
                        TokenRow.revoked_at.is_(None),
                        TokenRow.rotated_at.is_(None),
                        TokenRow.expires_at > now,
                    )
                    .distinct()
                )
            )

    def revoke(self, token: str, client_id: str) -> bool:
        """RFC 7009: revoke a token of this client; a refresh token takes its whole grant with it."""
        record = self.find(token)
        if record is None or record.client_id != client_id:
            return False
        if record.kind == "refresh":
            self.revoke_grant(record.grant_id)
        else:
            self._revoke_where(TokenRow.digest == digest_token(token))
        return True

    def purge_expired(self, *, older_than: int, batch: int = 10_000) -> int:
        """Delete tokens that expired more than `older_than` seconds ago, `batch` rows per transaction
        so no long lock is held; returns how many. An expired token is refused whether its row exists
        or not, so this changes no answer (a refresh token replayed after expiry is refused, without
        the family revocation a replay inside its lifetime triggers)."""
        cut = int(self._clock()) - older_than
        purged = 0
        while True:
            with self.engine().begin() as conn:
                chunk = select(TOKENS.c.id).where(TOKENS.c.expires_at < cut).limit(batch).scalar_subquery()
                deleted = int(conn.execute(delete(TOKENS).where(TOKENS.c.id.in_(chunk))).rowcount or 0)
            purged += deleted
            if deleted < batch:
                return purged

    def _revoke_where(self, condition: object) -> int:
        with self._sessions.begin() as session:
            result = session.execute(
                update(TokenRow)
                .where(condition, TokenRow.revoked_at.is_(None))  # type: ignore[arg-type]
                .values(revoked_at=int(self._clock()))
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _to_record(row: TokenRow | Row[Any]) -> TokenRecord:
    return TokenRecord(
        kind=row.kind,
        client_id=row.client_id,
        person_id=row.person_id,
        scope=row.scope,
        grant_id=row.grant_id,
        sid=row.sid,
        auth_time=row.auth_time,
        acr=row.acr,
        amr=tuple((row.amr or "").split()),
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        rotated_at=row.rotated_at,
        entity_id=row.entity_id,
        audience=row.audience,
        actor=row.actor,
    )
