"""Readiness: can this node reach the database and the ephemeral store?"""

from __future__ import annotations

import logging

from sqlalchemy import text

from idp.services.provider import ProviderServices

log = logging.getLogger(__name__)


def find_readiness_problems(services: ProviderServices) -> list[str]:
    problems = []
    try:
        with services.tokens.engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        log.warning("database not reachable: %s", exc)
        problems.append("database")
    try:
        services.ephemeral.get("readyz")
    except Exception as exc:  # noqa: BLE001
        log.warning("ephemeral store not reachable: %s", exc)
        problems.append("ephemeral store")
    return problems
