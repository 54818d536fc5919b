"""Settings: read once from `IDP_*` environment variables at the composition root, then frozen."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    issuer: str = "http://127.0.0.1:5000"
    database_url: str = f"sqlite:///{ROOT / 'var' / 'idp.sqlite3'}"
    redis_url: str | None = None  # None: the ephemeral store is a table in the database
    redis_prefix: str = "idp:"
    # Redis Sentinel: "host:port,host:port"; the ephemeral store then follows the master that the
    # Sentinels name `redis_sentinel_master` (redis_url, if set, gives its db number and password).
    redis_sentinels: str | None = None
    redis_sentinel_master: str = "idp"
    # Redis Cluster: some of its nodes, "host:port,host:port" (the client learns the rest); redis_url,
    # if set, gives the user and password. Every key of the store is one key per command, so any slot.
    redis_cluster_nodes: str | None = None
    key_encryption_key: str | None = None  # base64url of 32 bytes; None: generated into key_dir
    key_dir: str = str(ROOT / "keys")
    code_ttl: int = 60
    access_token_ttl: int = 300
    # JWT access tokens (RFC 9068) are signed with this: RS256 (every resource server must support it,
    # §2.1) or ES256, about 15x cheaper to sign (bench/README.md).
    access_token_alg: str = "RS256"
    # PostgreSQL: whether storing a new token waits for its WAL flush. False: a crash of PostgreSQL
    # itself may forget the tokens issued in its last ~0.6 s (their clients ask again); the disk's
    # flush stalls no longer hold up the token endpoint. Revocations and all else always wait.
    token_synchronous_commit: bool = False
    id_token_ttl: int = 300
    refresh_token_ttl: int = 30 * 24 * 3600
    refresh_grace_seconds: int = 10
    session_ttl: int = 8 * 3600
    login_ttl: int = 900
    key_rotation_overlap: int = 600
    key_cache_seconds: int = 30
    client_cache_seconds: int = 30
    allow_private_network: bool = False  # SSRF guard for back-channel logout delivery
    logout_worker: bool = False  # deliver back-channel logouts from a background thread
    logout_max_attempts: int = 12
    default_locale: str = "zh"
    password_time_cost: int = 2
    password_memory_kib: int = 19 * 1024
    password_concurrency: int = 1  # argon2id hashes a worker process computes at once (memory bound)
    demo_seed: str | None = None
    display_timezone: str = "Asia/Shanghai"
    trusted_proxies: int = 0  # reverse proxies in front whose X-Forwarded-For/-Proto are believed
    # Space-separated "module:function" callables given the Flask app at start (the admin console and
    # API by default); empty for a provider without them. Loaded by name: idp never imports them.
    extensions: str = "admin:install"
    # The three levels of assurance (acr values), weakest first: self-registered, real-name verified,
    # verified plus a second factor.
    acr_levels: str = "urn:cn:gov:loa:1 urn:cn:gov:loa:2 urn:cn:gov:loa:3"
    # Identity sources: where passwords are checked ("local" or "ldap"), and the HTTP registers.
    person_source: str = "local"
    ldap_url: str | None = None
    ldap_base_dn: str | None = None
    ldap_bind_dn: str | None = None
    ldap_bind_password: str | None = None
    ldap_user_filter: str | None = None  # None: uid, mobile or employeeNumber (the ID number)
    ldap_id_attribute: str = "entryUUID"
    ldap_timeout: float = 5.0
    ldap_start_tls: bool = False
    ldap_ca_file: str | None = None
    population_register_url: str | None = None
    population_register_token: str | None = None
    enterprise_register_url: str | None = None
    enterprise_register_token: str | None = None
    register_timeout: float = 3.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def secure_cookies(self) -> bool:
        return self.issuer.startswith("https://")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from `IDP_<NAME>` variables (e.g. IDP_ISSUER, IDP_DATABASE_URL)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = env.get(f"IDP_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            default = getattr(cls, f.name, None)
            values[f.name] = _coerce(f.name, raw, default)
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **overrides)

    def validate(self) -> None:
        if not self.issuer.startswith(("https://", "http://")) or self.issuer.endswith("/"):
            raise ValueError("IDP_ISSUER must be an http(s) URL without a trailing slash")
        if not 0 < self.code_ttl <= 60:
            raise ValueError("IDP_CODE_TTL must be between 1 and 60 seconds")
        levels = self.acr_levels.split()
        if len(levels) != 3 or len(set(levels)) != 3:
            raise ValueError("IDP_ACR_LEVELS must be three different acr values, weakest first")
        if self.person_source not in ("local", "ldap"):
            raise ValueError("IDP_PERSON_SOURCE must be local or ldap")
        if self.person_source == "ldap" and not (self.ldap_url and self.ldap_base_dn):
            raise ValueError("IDP_PERSON_SOURCE=ldap needs IDP_LDAP_URL and IDP_LDAP_BASE_DN")
        if self.password_concurrency < 1:
            raise ValueError("IDP_PASSWORD_CONCURRENCY must be at least 1")
        if self.access_token_alg not in ("RS256", "ES256"):
            raise ValueError("IDP_ACCESS_TOKEN_ALG must be RS256 or ES256")
        if self.redis_sentinels and self.redis_cluster_nodes:
            raise ValueError("IDP_REDIS_SENTINELS and IDP_REDIS_CLUSTER_NODES exclude each other")
        if self.key_rotation_overlap <= self.key_cache_seconds:
            raise ValueError("IDP_KEY_ROTATION_OVERLAP must exceed IDP_KEY_CACHE_SECONDS")


def _coerce(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"IDP_{name.upper()} must be true or false")
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"IDP_{name.upper()} must be a number") from None
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"IDP_{name.upper()} must be an integer") from None
    return raw
