"""The service's own database: one engine per app, one transaction per unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from adapters.certificates.models import Base
from adapters.certificates.sealing import KeySealer


class Database:
    """`sealer` seals and opens the departments' private keys (`session.info["key_sealer"]`)."""

    def __init__(self, url: str, sealer: KeySealer) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(url)
        if parsed.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _sqlite_foreign_keys)
        self.sealer = sealer
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, info={"key_sealer": sealer})

    def create_tables(self) -> None:
        Base.metadata.create_all(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Commit on success, roll back on any exception."""
        with self.sessions.begin() as session:
            yield session


def _sqlite_foreign_keys(connection: object, _record: object) -> None:
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
