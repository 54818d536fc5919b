"""Login transactions: an authorization request waiting for the person (login, account choice, consent)."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

from idp.protocol.authorization_request import AuthorizationRequest
from idp.services.provider import ProviderServices


@dataclass(frozen=True)
class Transaction:
    id: str
    request: AuthorizationRequest
    started_at: int
    account_chosen: bool = False
    consented: bool = False
    force_login: bool = False
    login_sid: str | None = None  # the session created by a login inside this transaction
    acting: str | None = None  # chosen in this transaction: "self" or a legal entity's id


def start_transaction(services: ProviderServices, authz: AuthorizationRequest, ttl: int) -> Transaction:
    tx = Transaction(id=secrets.token_urlsafe(24), request=authz, started_at=int(time.time()))
    save_transaction(services, tx, ttl)
    return tx


def save_transaction(services: ProviderServices, tx: Transaction, ttl: int) -> None:
    payload = {
        "r": tx.request.to_json(),
        "s": tx.started_at,
        "a": tx.account_chosen,
        "c": tx.consented,
        "f": tx.force_login,
        "l": tx.login_sid,
        "e": tx.acting,
    }
    services.ephemeral.set(f"tx:{tx.id}", json.dumps(payload, separators=(",", ":")), ttl)


def load_transaction(services: ProviderServices, tx_id: str | None) -> Transaction | None:
    if not tx_id or len(tx_id) > 64:
        return None
    raw = services.ephemeral.get(f"tx:{tx_id}")
    if raw is None:
        return None
    data = json.loads(raw)
    return Transaction(
        id=tx_id,
        request=AuthorizationRequest.from_json(data["r"]),
        started_at=data["s"],
        account_chosen=data["a"],
        consented=data["c"],
        force_login=data["f"],
        login_sid=data["l"],
        acting=data.get("e"),
    )


def update_transaction(services: ProviderServices, tx: Transaction, ttl: int, **changes: Any) -> Transaction:
    tx = replace(tx, **changes)
    save_transaction(services, tx, ttl)
    return tx


def finish_transaction(services: ProviderServices, tx: Transaction) -> bool:
    """Single use: True for exactly one caller."""
    return services.ephemeral.take(f"tx:{tx.id}") is not None
