"""Bulk inserts: PostgreSQL COPY (psycopg 3) where available, a plain executemany anywhere else."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.exc import IntegrityError


def uses_copy(conn: Connection) -> bool:
    """Whether `insert_rows` streams with COPY on this connection (PostgreSQL through psycopg 3)."""
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def insert_rows(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """Insert `rows` (tuples in the order of `columns`) into `table` inside the connection's current
    transaction; returns the number of rows. Nothing is converted: values must already be what the
    columns hold (str, int, bool, bytes, None)."""
    if not rows:
        return 0
    if uses_copy(conn):
        quoted = ", ".join(conn.dialect.identifier_preparer.quote(name) for name in columns)
        target = conn.dialect.identifier_preparer.format_table(table)
        driver_connection = conn.connection.driver_connection  # the psycopg connection, same transaction
        assert driver_connection is not None
        statement = f"COPY {target} ({quoted}) FROM STDIN"
        try:
            with driver_connection.cursor() as cursor:  # type: ignore[attr-defined]
                with cursor.copy(statement) as copy:
                    for row in rows:
                        copy.write_row(row)
        except conn.dialect.loaded_dbapi.IntegrityError as exc:  # raw psycopg: wrap it as SQLAlchemy would
            raise IntegrityError(statement, None, exc) from exc
        return len(rows)
    conn.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])
    return len(rows)
