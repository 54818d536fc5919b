"""Composition root: `create_app(settings)` builds storage, services and the Authlib server per app."""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from idp.domain.assurance import AssuranceLadder
from idp.protocol.discovery import build_metadata, encode_document
from idp.protocol.server import build_server
from idp.services.accounts import AccountService
from idp.services.admin import AdminService
from idp.services.audit import AuditService
from idp.services.authorization_codes import AuthorizationCodeService
from idp.services.clients import ClientService
from idp.services.consent import ConsentService
from idp.services.entities import EntityService
from idp.services.logout import LogoutService
from idp.services.mfa import MfaService
from idp.services.notifier import DatabaseNotifier, Notifier
from idp.services.outbound import OutboundHttp
from idp.services.passwords import PasswordHashing
from idp.services.persons import PersonService
from idp.services.provider import ProviderServices
from idp.services.registration import RegistrationService
from idp.services.signing_keys import SigningKeyService
from idp.services.sso_sessions import SsoSessionService
from idp.services.throttling import LoginThrottle
from idp.services.tokens import TokenService
from idp.settings import ROOT, Settings
from idp.sources.base import RealNameVerifier
from idp.sources.registers import EnterpriseRegister, PopulationRegister
from idp.store.db import build_engine, build_sessionmaker
from idp.store.ephemeral import build_ephemeral_store
from idp.store.key_encryption import KeyEncryptor, load_or_create_kek
from idp.store.migrate import check_schema
from idp.web import (
    account,
    account_entities,
    api,
    authorize,
    consent,
    discovery,
    entity,
    home,
    login,
    logout,
    mfa,
    registration,
)
from idp.web.context import WebContext
from idp.web.i18n import init_i18n
from idp.web.security import install_security

if TYPE_CHECKING:
    from idp.sources.ldap import LdapSource

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024


def build_services(
    settings: Settings, *, verifier: RealNameVerifier | None = None, notifier: Notifier | None = None
) -> ProviderServices:
    """Everything below the web layer, wired once; shared by the app and the CLI.

    `verifier` is the population register for real-name verification (None: verification refused as
    unavailable); `notifier` delivers account links (default: recorded in the database, development)."""
    engine = build_engine(settings.database_url)
    check_schema(engine)
    sessions = build_sessionmaker(engine)
    ephemeral = build_ephemeral_store(
        engine,
        settings.redis_url,
        settings.redis_prefix,
        sentinels=settings.redis_sentinels,
        sentinel_master=settings.redis_sentinel_master,
        cluster_nodes=settings.redis_cluster_nodes,
    )
    encryptor = KeyEncryptor(load_or_create_kek(settings.key_encryption_key, Path(settings.key_dir)))
    keys = SigningKeyService(
        sessions,
        encryptor,
        overlap_seconds=settings.key_rotation_overlap,
        retention_seconds=max(settings.access_token_ttl, settings.id_token_ttl) + 300,
        cache_seconds=settings.key_cache_seconds,
    )
    clients = ClientService(
        sessions,
        encryptor.derive("client-secret-digest"),
        cache_seconds=settings.client_cache_seconds,
        acr_levels=tuple(settings.acr_levels.split()),
        own_origin=settings.issuer,
    )
    hashing = PasswordHashing(
        time_cost=settings.password_time_cost,
        memory_kib=settings.password_memory_kib,
        concurrent=settings.password_concurrency,
    )
    sso = SsoSessionService(ephemeral, settings.session_ttl)
    tokens = TokenService(
        sessions,
        grace_seconds=settings.refresh_grace_seconds,
        issuing=None
        if settings.token_synchronous_commit or not settings.database_url.startswith("postgresql")
        else build_engine(settings.database_url, wait_for_flush=False),
    )
    persons = PersonService(sessions, hashing, encryptor, external_source=build_person_source(settings))
    entities = EntityService(sessions, persons, build_entity_register(settings))
    if verifier is None and settings.population_register_url:
        verifier = PopulationRegister(
            settings.population_register_url,
            settings.population_register_token,
            timeout=settings.register_timeout,
        )
    consent = ConsentService(sessions)
    audit = AuditService(sessions, pseudonym_key=encryptor.derive("audit-pseudonym"))
    logout = LogoutService(
        issuer=settings.issuer,
        sessions=sessions,
        sso=sso,
        tokens=tokens,
        clients=clients,
        keys=keys,
        outbound=OutboundHttp(allow_private_network=settings.allow_private_network),
        max_attempts=settings.logout_max_attempts,
        audit=audit,
    )
    notifier = notifier or DatabaseNotifier(sessions)
    throttle = LoginThrottle(ephemeral)
    mfa = MfaService(
        sessions,
        encryptor,
        ephemeral,
        issuer_name=urlsplit(settings.issuer).netloc,  # the authenticator app labels the account
        # legal representatives, entity admins and every admin of the provider need a second factor
        required_for=lambda person_id: entities.requires_mfa(person_id) or admin.is_admin(person_id),
    )
    client_registration = RegistrationService(sessions, clients, tokens=tokens, issuer=settings.issuer)
    admin = AdminService(
        sessions,
        clients=clients,
        persons=persons,
        sso=sso,
        logout=logout,
        tokens=tokens,
        mfa=mfa,
        entities=entities,
        keys=keys,
        audit=audit,
        throttle=throttle,
        registration=client_registration,
    )
    return ProviderServices(
        issuer=settings.issuer,
        ephemeral=ephemeral,
        clients=clients,
        persons=persons,
        sso=sso,
        codes=AuthorizationCodeService(ephemeral, settings.code_ttl),
        tokens=tokens,
        consent=consent,
        keys=keys,
        logout=logout,
        mfa=mfa,
        entities=entities,
        notifier=notifier,
        throttle=throttle,
        accounts=AccountService(
            persons,
            notifier,
            ephemeral,
            verifier,
            sso=sso,
            logout=logout,
            consent=consent,
            tokens=tokens,
            clients=clients,
            issuer=settings.issuer,
        ),
        audit=audit,
        admin=admin,
        registration=client_registration,
    )


def build_person_source(settings: Settings) -> LdapSource | None:
    """The external source that checks passwords, or None for local accounts."""
    if settings.person_source != "ldap":
        return None
    assert settings.ldap_url and settings.ldap_base_dn  # Settings.validate
    from idp.sources.ldap import LdapSource  # here: ldap3 costs 5 MiB a worker, and most sites use none

    options: dict[str, Any] = {}
    if settings.ldap_user_filter:
        options["user_filter"] = settings.ldap_user_filter
    return LdapSource(
        settings.ldap_url,
        settings.ldap_base_dn,
        settings.ldap_bind_dn,
        settings.ldap_bind_password,
        id_attribute=settings.ldap_id_attribute or None,
        timeout=settings.ldap_timeout,
        start_tls=settings.ldap_start_tls,
        ca_certs_file=settings.ldap_ca_file,
        **options,
    )


def build_entity_register(settings: Settings) -> EnterpriseRegister | None:
    if not settings.enterprise_register_url:
        return None
    return EnterpriseRegister(
        settings.enterprise_register_url,
        settings.enterprise_register_token,
        timeout=settings.register_timeout,
    )


def create_app(settings: Settings | None = None, services: ProviderServices | None = None) -> Flask:
    settings = settings or Settings.from_env()
    services = services or build_services(settings)
    services.keys.ensure_keys()
    app = Flask("idp", template_folder=str(ROOT / "templates"))
    app.config.update(
        SECRET_KEY=services_secret(settings),
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        SESSION_COOKIE_NAME="idp_csrf",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=False,
        BABEL_DEFAULT_TIMEZONE=settings.display_timezone,
    )
    ladder = AssuranceLadder(tuple(settings.acr_levels.split()))
    server = build_server(
        services,
        token_endpoint=f"{settings.issuer}/token",
        access_ttl=settings.access_token_ttl,
        id_token_ttl=settings.id_token_ttl,
        refresh_ttl=settings.refresh_token_ttl,
        access_token_alg=settings.access_token_alg,
    )
    app.extensions["idp"] = WebContext(
        settings=settings,
        services=services,
        server=server,
        ladder=ladder,
        discovery=encode_document(build_metadata(settings.issuer, ladder.levels)),
    )
    csrf = CSRFProtect(app)
    for blueprint in (authorize.bp, login.bp, mfa.bp, consent.bp, logout.bp, api.bp, discovery.bp, home.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(account.bp)
    app.register_blueprint(entity.bp)
    app.register_blueprint(account_entities.bp)
    app.register_blueprint(registration.bp)
    for blueprint in (api.bp, discovery.bp, registration.bp):  # bearer or client authentication
        csrf.exempt(blueprint)
    csrf.exempt("idp.web.logout.end_session")  # RP-initiated GET/POST; confirmation form is protected
    csrf.exempt("idp.web.authorize.authorize")  # OIDC Core §3.1.2.1 allows POST from the client
    init_i18n(app, settings.default_locale)
    install_security(app)
    if settings.trusted_proxies:
        # The client address (login counters, audit) and scheme as the proxies saw them.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    for extension in load_extensions(settings.extensions):
        extension(app)
    if settings.logout_worker:
        start_logout_worker(services)
    return app


def load_extensions(names: str) -> list[Callable[[Flask], None]]:
    """The `module:function` callables named in IDP_EXTENSIONS (an unknown name fails the start)."""
    loaded = []
    for name in names.split():
        module_name, _, function = name.partition(":")
        loaded.append(getattr(importlib.import_module(module_name), function or "install"))
    return loaded


def services_secret(settings: Settings) -> bytes:
    """The Flask secret (CSRF tokens) is derived from the key-encryption key, the same on every node."""
    kek = load_or_create_kek(settings.key_encryption_key, Path(settings.key_dir))
    return KeyEncryptor(kek).derive("flask-secret-key")


def start_logout_worker(services: ProviderServices, interval: float = 1.0) -> threading.Thread:
    """Deliver back-channel logouts in the background (used by `make run`; production runs the CLI)."""

    def loop() -> None:
        while True:
            try:
                services.logout.deliver_due()
            except Exception:  # noqa: BLE001 - keep the worker alive, log the failure
                log.exception("logout delivery failed")
            stop.wait(interval)

    stop = threading.Event()
    thread = threading.Thread(target=loop, name="logout-worker", daemon=True)
    thread.start()
    return thread
