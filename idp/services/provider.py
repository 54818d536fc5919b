"""The provider's services, built once per app by the composition root and passed down explicitly."""

from __future__ import annotations

from dataclasses import dataclass

from idp.services.accounts import AccountService
from idp.services.admin import AdminService
from idp.services.audit import AuditService
from idp.services.authorization_codes import AuthorizationCodeService
from idp.services.clients import ClientService
from idp.services.consent import ConsentService
from idp.services.entities import EntityService
from idp.services.logout import LogoutService
from idp.services.mfa import MfaService
from idp.services.notifier import Notifier
from idp.services.persons import PersonService
from idp.services.registration import RegistrationService
from idp.services.signing_keys import SigningKeyService
from idp.services.sso_sessions import SsoSessionService
from idp.services.throttling import LoginThrottle
from idp.services.tokens import TokenService
from idp.store.ephemeral import EphemeralStore


@dataclass(frozen=True)
class ProviderServices:
    issuer: str
    ephemeral: EphemeralStore
    clients: ClientService
    persons: PersonService
    sso: SsoSessionService
    codes: AuthorizationCodeService
    tokens: TokenService
    consent: ConsentService
    keys: SigningKeyService
    logout: LogoutService
    mfa: MfaService
    entities: EntityService
    notifier: Notifier
    throttle: LoginThrottle
    accounts: AccountService
    audit: AuditService
    admin: AdminService
    registration: RegistrationService
