"""The case service's settings, read once at the composition root from `create_app(config)` and the environment."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DATABASE_URL = f"sqlite:///{Path(__file__).resolve().parents[2] / 'var' / 'cases.sqlite3'}"


@dataclass(frozen=True)
class Settings:
    """`CASES_*` names, in `config` first, then the environment."""

    database_url: str = DEFAULT_DATABASE_URL
    issuer: str = "http://127.0.0.1:5000"  # the identity provider
    client_id: str = "case-service"
    client_secret: str | None = None
    audience: str = "case-service"  # RFC 9068 aud the API answers to
    base_url: str = "http://127.0.0.1:8400"
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    redis_url: str | None = None  # share login sessions between workers
    catalogue_url: str = "http://127.0.0.1:8200"
    certificates_url: str = "http://127.0.0.1:8300"
    certificates_client_id: str = "e-certificates"  # the token-exchange audience
    http_timeout: float = 5.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
        def read(name: str) -> Any:
            key = f"CASES_{name.upper()}"
            value = config[key] if key in config else env.get(key)
            return None if value in (None, "") else value

        values: dict[str, Any] = {}
        for name in (
            "database_url",
            "issuer",
            "client_id",
            "client_secret",
            "base_url",
            "secret_key",
            "redis_url",
            "certificates_client_id",
        ):
            if read(name) is not None:
                values[name] = str(read(name))
        for name in ("catalogue_url", "certificates_url", "base_url", "issuer"):
            if read(name) is not None:
                values[name] = str(read(name)).rstrip("/")
        values["audience"] = str(read("audience") or values.get("client_id", cls.audience))
        if read("http_timeout") is not None:
            values["http_timeout"] = float(read("http_timeout"))
        return cls(**values)
