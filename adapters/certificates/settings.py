"""The service's settings, read once at the composition root from `create_app(config)` and the environment."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_DATABASE_URL = "sqlite:///var/certificates.sqlite3"


@dataclass(frozen=True)
class Settings:
    """`CERTS_*` names, in `config` first, then the environment."""

    database_url: str = DEFAULT_DATABASE_URL
    issuer: str = "http://127.0.0.1:5000"  # the identity provider
    client_id: str = "e-certificates"
    client_secret: str | None = None
    audience: str = "e-certificates"  # RFC 9068 aud this service answers to (exchanged tokens carry it)
    base_url: str = "http://127.0.0.1:8300"
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    redis_url: str | None = None  # share login sessions between workers
    issuer_clients: Mapping[str, str] = field(default_factory=dict)  # department client_id -> issuer code
    # the KEK that seals the departments' private keys (adapters/certificates/sealing.py): CERTS_KEK,
    # else the file CERTS_KEY_DIR/kek, made on first start
    kek: str | None = field(default=None, repr=False)
    key_dir: str = "keys/certificates"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
        def read(name: str) -> Any:
            key = f"CERTS_{name.upper()}"
            return config[key] if key in config else env.get(key)

        values: dict[str, Any] = {}
        names = (
            "database_url",
            "issuer",
            "client_id",
            "client_secret",
            "base_url",
            "secret_key",
            "kek",
            "key_dir",
        )
        for name in names:
            if read(name) is not None:
                values[name] = str(read(name))
        values["redis_url"] = read("redis_url") or None
        values["audience"] = read("audience") or values.get("client_id", cls.audience)
        values["issuer_clients"] = parse_issuer_clients(read("issuer_clients"))
        return cls(**values)


def parse_issuer_clients(value: Any) -> dict[str, str]:
    """A mapping, a JSON object, or `client=CODE,client2=CODE2` (the environment's form)."""
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    text = str(value).strip()
    if text.startswith("{"):
        return {str(k): str(v) for k, v in json.loads(text).items()}
    pairs = (item.split("=", 1) for item in text.split(",") if item.strip())
    return {client.strip(): code.strip() for client, code in pairs}
