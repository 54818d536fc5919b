"""Administration: admin roles and every action of the console and the admin API.

Each action names itself in the role matrix (idp.domain.admin), is checked against the actor's roles
(and, if sensitive, the age of their authentication) before anything is read or written, and is
recorded in the audit log, refusals included. The console and the JSON API both call these methods,
so what one may do the other may do, and nothing else."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import bindparam, delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from idp.domain.admin import (
    ADMIN_SCOPE_PREFIX,
    REAUTH_SECONDS,
    ROLES,
    SENSITIVE,
    Actor,
    check_role_combination,
    roles_from_scopes,
)
from idp.domain.entities import AgentAuthorisation, LegalEntity, Role
from idp.domain.identifiers import looks_like_resident_id
from idp.domain.models import Client, Person, SsoSession
from idp.services.audit import AuditFilter, AuditService
from idp.services.clients import ClientMetadataError, ClientService
from idp.services.entities import EntityError, EntityService
from idp.services.logout import LogoutService
from idp.services.mfa import MfaService
from idp.services.persons import PersonService
from idp.services.registration import InitialAccessToken, RegistrationError, RegistrationService
from idp.services.signing_keys import KeyRetirementError, SigningKeyService
from idp.services.sso_sessions import SsoSessionService
from idp.services.throttling import LoginThrottle
from idp.services.tokens import TokenService
from idp.store.db import autocommit_reader
from idp.store.models import AdminRoleRow

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_PAGE = 200
IS_ADMIN = select(exists().where(AdminRoleRow.person_id == bindparam("person_id")))  # built once


class AdminDenied(Exception):
    """The actor's roles do not allow the action."""

    def __init__(self, action: str) -> None:
        super().__init__(f"not allowed: {action}")
        self.action = action


class ReauthRequired(Exception):
    """A sensitive action, and the actor's last authentication is older than REAUTH_SECONDS."""

    def __init__(self, action: str) -> None:
        super().__init__(f"re-authentication required: {action}")
        self.action = action


class AdminInputError(ValueError):
    """Input that cannot be acted on, with a code and a message meant for the admin."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NotFound(AdminInputError):
    def __init__(self, what: str) -> None:
        super().__init__("not_found", f"There is no such {what}.")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    offset: int
    limit: int
    has_more: bool


@dataclass(frozen=True)
class AdminGrant:
    person_id: str
    role: str
    granted_by: str
    granted_at: int


@dataclass(frozen=True)
class PersonDetail:
    person: Person
    roles: frozenset[str]
    sessions: list[SsoSession]
    login_locked: bool  # held by the login throttle (too many failed passwords)
    authorisations: list[AgentAuthorisation]


@dataclass(frozen=True)
class EntityDetail:
    entity: LegalEntity
    authorisations: list[AgentAuthorisation]


def _page(items: list[T], offset: int, limit: int) -> Page[T]:
    return Page(items=items[:limit], offset=offset, limit=limit, has_more=len(items) > limit)


def _bounds(offset: int, limit: int) -> tuple[int, int]:
    return max(0, int(offset)), min(max(1, int(limit)), MAX_PAGE)


class AdminService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        clients: ClientService,
        persons: PersonService,
        sso: SsoSessionService,
        logout: LogoutService,
        tokens: TokenService,
        mfa: MfaService,
        entities: EntityService,
        keys: SigningKeyService,
        audit: AuditService,
        throttle: LoginThrottle,
        registration: RegistrationService | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._reader = autocommit_reader(sessions)
        self._clients = clients
        self._persons = persons
        self._sso = sso
        self._logout = logout
        self._tokens = tokens
        self._mfa = mfa
        self._entities = entities
        self._keys = keys
        self._audit = audit
        self._throttle = throttle
        self._registration = registration
        self._clock = clock

    # -- who is acting ------------------------------------------------------------------------------

    def roles_of(self, person_id: str) -> frozenset[str]:
        with self._sessions() as session:
            return frozenset(
                session.scalars(select(AdminRoleRow.role).where(AdminRoleRow.person_id == person_id))
            )

    def is_admin(self, person_id: str) -> bool:
        """Asked at every login and authorization (admins must use a second factor): one EXISTS in
        autocommit, no ORM session."""
        with self._reader.connect() as conn:
            return bool(conn.scalar(IS_ADMIN, {"person_id": person_id}))

    def actor_for_person(
        self, person_id: str, *, auth_time: int | None, acr: str | None, address: str | None
    ) -> Actor:
        return Actor("person", person_id, self.roles_of(person_id), auth_time, address, acr)

    def actor_for_token(self, token: str, address: str | None) -> Actor | None:
        """The actor behind a bearer access token, or None if the token is not active.

        A service account (client credentials) holds the roles its `admin:<role>` scopes name; a
        token issued to a person holds only the roles that person also holds now."""
        record = self._tokens.find(token)
        if record is None or record.kind != "access" or not record.is_active(self._clock()):
            return None
        if self._clients.get(record.client_id) is None:  # disabled since
            return None
        roles = roles_from_scopes(record.scope)
        if record.person_id is not None:
            person = self._persons.get(record.person_id)
            if person is None or person.disabled:
                return None
            roles &= self.roles_of(record.person_id)
            return Actor("person", record.person_id, roles, record.auth_time, address, record.acr)
        return Actor("client", record.client_id, roles, None, address)

    def authorize(self, actor: Actor, action: str) -> None:
        """Refuse (and audit the refusal) unless the actor may perform `action` now."""
        if not actor.may(action):
            self._record(actor, "admin.denied", outcome="failure", details={"action": action})
            raise AdminDenied(action)
        if action in SENSITIVE and actor.kind == "person":
            if actor.auth_time is None or self._clock() - actor.auth_time > REAUTH_SECONDS:
                raise ReauthRequired(action)

    # -- admin roles --------------------------------------------------------------------------------

    def list_admins(self, actor: Actor) -> list[tuple[Person, list[AdminGrant]]]:
        self.authorize(actor, "roles.read")
        return self._all_grants()

    def all_admins(self) -> list[tuple[Person, list[str]]]:
        """Every admin and their roles, for the operator's CLI."""
        return [(person, [g.role for g in grants]) for person, grants in self._all_grants()]

    def _all_grants(self) -> list[tuple[Person, list[AdminGrant]]]:
        with self._sessions() as session:
            rows = session.scalars(select(AdminRoleRow).order_by(AdminRoleRow.person_id, AdminRoleRow.role))
            grants: dict[str, list[AdminGrant]] = {}
            for row in rows:
                grants.setdefault(row.person_id, []).append(_grant(row))
        found = [(self._persons.get(pid), held) for pid, held in grants.items()]
        return [(person, held) for person, held in found if person is not None]

    def grants_of(self, actor: Actor, person_id: str) -> list[AdminGrant]:
        self.authorize(actor, "roles.read")
        return self._grants(person_id)

    def grant_role(self, actor: Actor, person_ref: str, role: str) -> AdminGrant:
        self.authorize(actor, "roles.grant")
        person = self._resolve_person(person_ref)
        if person.id == actor.id:
            raise AdminInputError("self_grant", "Admins cannot change their own roles.")
        grant = self._add_role(person, role, granted_by=f"admin:{actor.id}")
        self._record(actor, "admin.role.granted", subject=person.id, details={"role": role})
        return grant

    def revoke_role(self, actor: Actor, person_id: str, role: str) -> bool:
        self.authorize(actor, "roles.grant")
        if person_id == actor.id:
            raise AdminInputError("self_grant", "Admins cannot change their own roles.")
        with self._sessions.begin() as session:
            result = session.execute(
                delete(AdminRoleRow).where(AdminRoleRow.person_id == person_id, AdminRoleRow.role == role)
            )
            removed = bool(getattr(result, "rowcount", 0))
        if removed:
            self._record(actor, "admin.role.revoked", subject=person_id, details={"role": role})
        return removed

    def bootstrap_role(self, person_ref: str, role: str, *, by: str = "cli") -> AdminGrant:
        """Grant a role without an acting admin: the operator's CLI (e.g. the first super_admin)."""
        person = self._resolve_person(person_ref)
        grant = self._add_role(person, role, granted_by=by)
        self._audit.record("admin.role.granted", actor=by, subject=person.id, details={"role": role})
        return grant

    def _add_role(self, person: Person, role: str, *, granted_by: str) -> AdminGrant:
        if role not in ROLES:
            raise AdminInputError("invalid_role", f"The role must be one of {', '.join(ROLES)}.")
        if person.disabled:
            raise AdminInputError("person_locked", "This person's account is locked.")
        held = self.roles_of(person.id)
        problem = check_role_combination(held | {role})
        if problem:
            raise AdminInputError("invalid_role", problem[0].upper() + problem[1:] + ".")
        now = int(self._clock())
        try:
            with self._sessions.begin() as session:
                row = session.scalar(
                    select(AdminRoleRow).where(AdminRoleRow.person_id == person.id, AdminRoleRow.role == role)
                )
                if row is None:
                    row = AdminRoleRow(person_id=person.id, role=role, granted_by=granted_by, granted_at=now)
                    session.add(row)
                    session.flush()
                return _grant(row)
        except IntegrityError:  # granted concurrently: the same result
            return next(g for g in self._grants(person.id) if g.role == role)

    def _grants(self, person_id: str) -> list[AdminGrant]:
        with self._sessions() as session:
            rows = session.scalars(
                select(AdminRoleRow).where(AdminRoleRow.person_id == person_id).order_by(AdminRoleRow.role)
            )
            return [_grant(row) for row in rows]

    # -- clients (platforms) ------------------------------------------------------------------------

    def list_clients(self, actor: Actor, query: str = "", offset: int = 0, limit: int = 50) -> Page[Client]:
        self.authorize(actor, "clients.read")
        offset, limit = _bounds(offset, limit)
        return _page(self._clients.search(query, offset, limit + 1), offset, limit)

    def get_client(self, actor: Actor, client_id: str) -> Client:
        self.authorize(actor, "clients.read")
        client = self._clients.find_any(client_id)
        if client is None:
            raise NotFound("client")
        return client

    def create_client(self, actor: Actor, metadata: Mapping[str, Any]) -> tuple[Client, str | None]:
        """Register a platform; returns it and its generated secret (to be shown once)."""
        self.authorize(actor, "clients.write")
        fields = self._check_client_metadata(actor, metadata, existing=None)
        if self._clients.find_any(fields["client_id"]) is not None:
            raise AdminInputError("duplicate", "A client with this client_id is already registered.")
        client, secret = self._clients.register(fields_to_metadata(metadata))
        self._record(actor, "admin.client.created", client_id=client.client_id)
        return client, secret

    def update_client(
        self, actor: Actor, client_id: str, metadata: Mapping[str, Any]
    ) -> tuple[Client, str | None]:
        """Replace a platform's metadata (its secret stays; a secret is generated if the new method
        needs one and it had none). A disabled client stays disabled."""
        self.authorize(actor, "clients.write")
        existing = self.get_client(actor, client_id)
        metadata = {**kept_metadata(existing), **fields_to_metadata(metadata), "client_id": client_id}
        self._check_client_metadata(actor, metadata, existing=existing)
        client, secret = self._clients.register(metadata)
        if existing.disabled:
            self._clients.set_disabled(client_id, True)
            client = self.get_client(actor, client_id)
        self._record(actor, "admin.client.updated", client_id=client_id)
        return client, secret

    def set_client_disabled(self, actor: Actor, client_id: str, disabled: bool) -> Client:
        """Disable (its tokens are revoked: introspection and userinfo refuse them at once) or enable."""
        self.authorize(actor, "clients.write")
        self.get_client(actor, client_id)
        self._clients.set_disabled(client_id, disabled)
        revoked = self._tokens.revoke_client(client_id) if disabled else 0
        self._record(
            actor,
            "admin.client.disabled" if disabled else "admin.client.enabled",
            client_id=client_id,
            details={"tokens_revoked": revoked} if disabled else None,
        )
        return self.get_client(actor, client_id)

    def rotate_client_secret(self, actor: Actor, client_id: str) -> str:
        """A new secret, returned once; the old one stops working at once."""
        self.authorize(actor, "clients.rotate_secret")
        self.get_client(actor, client_id)
        try:
            secret = self._clients.rotate_secret(client_id)
        except ClientMetadataError as exc:
            raise AdminInputError("invalid_request", "This client has no secret to rotate.") from exc
        self._record(actor, "admin.client.secret_rotated", client_id=client_id)
        return secret

    def _check_client_metadata(
        self, actor: Actor, metadata: Mapping[str, Any], existing: Client | None
    ) -> dict[str, Any]:
        if not isinstance(metadata, Mapping):
            raise AdminInputError("invalid_client_metadata", "The client metadata must be an object.")
        if "client_secret" in metadata:
            raise AdminInputError(
                "invalid_client_metadata", "Secrets are generated by the provider; rotate to get a new one."
            )
        try:
            fields = self._clients.validate(metadata)
        except ClientMetadataError as exc:
            raise AdminInputError("invalid_client_metadata", str(exc)) from None
        wanted = {s for s in fields["client_metadata"]["scope"].split() if s.startswith(ADMIN_SCOPE_PREFIX)}
        held = {s for s in (existing.scope if existing else ()) if s.startswith(ADMIN_SCOPE_PREFIX)}
        if wanted != held:
            # A client that may obtain admin scopes is an admin: only a super admin grants that.
            self.authorize(actor, "clients.grant_admin_scopes")
            unknown = wanted - {f"{ADMIN_SCOPE_PREFIX}{r}" for r in ROLES}
            if unknown:
                raise AdminInputError(
                    "invalid_client_metadata", f"Unknown admin scope: {', '.join(sorted(unknown))}."
                )
        return fields

    # -- initial access tokens (dynamic registration) ----------------------------------------------

    def issue_initial_token(
        self, actor: Actor, label: str = "", ttl_seconds: int = 86400, max_uses: int = 1
    ) -> tuple[InitialAccessToken, str]:
        self.authorize(actor, "initial_tokens.manage")
        try:
            token, value = self._require_registration().issue_initial_token(
                created_by=f"admin:{actor.id}", label=label, ttl_seconds=ttl_seconds, max_uses=max_uses
            )
        except RegistrationError as exc:
            raise AdminInputError(exc.code, str(exc)) from None
        self._record(actor, "admin.initial_token.issued", details={"id": token.id, "max_uses": max_uses})
        return token, value

    def list_initial_tokens(self, actor: Actor, include_inactive: bool = False) -> list[InitialAccessToken]:
        self.authorize(actor, "initial_tokens.manage")
        return self._require_registration().list_initial_tokens(include_inactive=include_inactive)

    def revoke_initial_token(self, actor: Actor, token_id: str) -> bool:
        self.authorize(actor, "initial_tokens.manage")
        revoked = bool(self._require_registration().revoke_initial_token(token_id))
        if revoked:
            self._record(actor, "admin.initial_token.revoked", details={"id": token_id})
        return revoked

    def _require_registration(self) -> RegistrationService:
        if self._registration is None:
            raise AdminInputError("unavailable", "Dynamic client registration is not configured.")
        return self._registration

    # -- persons ------------------------------------------------------------------------------------

    def search_persons(self, actor: Actor, query: str, offset: int = 0, limit: int = 50) -> Page[Person]:
        """Search by name, username, mobile number or resident ID number (blind index, exact)."""
        self.authorize(actor, "persons.read")
        offset, limit = _bounds(offset, limit)
        found = self._persons.search(query, offset, limit + 1)
        self._record(
            actor,
            "admin.person.searched",
            details={"query": self._audit.pseudonym(query) if query.strip() else "", "results": len(found)},
        )
        return _page(found, offset, limit)

    def view_person(self, actor: Actor, person_id: str) -> PersonDetail:
        """A person's record as an admin sees it (ID number masked); recorded as a read of their data."""
        self.authorize(actor, "persons.read")
        person = self._persons.get(person_id)
        if person is None:
            raise NotFound("person")
        self._record(actor, "data.read", subject=person.id, purpose="admin", details={"view": "person"})
        return PersonDetail(
            person=person,
            roles=self.roles_of(person.id),
            sessions=sorted(self._sso.sessions_of(person.id), key=lambda s: -s.created_at),
            login_locked=self._throttle.is_locked(person.username),
            authorisations=self._entities.authorisations_of_person(person.id, active_only=False),
        )

    def lock_person(self, actor: Actor, person_id: str) -> Person:
        """Lock the account: no login; every session ends (back-channel logout included)."""
        self.authorize(actor, "persons.write")
        person = self._persons.set_disabled(person_id, True)
        if person is None:
            raise NotFound("person")
        ended = self._end_sessions(person_id, None)
        self._record(actor, "admin.person.locked", subject=person_id, details={"sessions_ended": ended})
        return person

    def unlock_person(self, actor: Actor, person_id: str) -> Person:
        """Unlock the account and lift a login lock-out from failed passwords."""
        self.authorize(actor, "persons.write")
        person = self._persons.set_disabled(person_id, False)
        if person is None:
            raise NotFound("person")
        self._throttle.unlock(person.username)
        self._record(actor, "admin.person.unlocked", subject=person_id)
        return person

    def reset_mfa(self, actor: Actor, person_id: str) -> Person:
        """Remove the second factor (a lost phone); the person enrols again at the next login."""
        self.authorize(actor, "persons.write")
        person = self._persons.get(person_id)
        if person is None:
            raise NotFound("person")
        self._mfa.reset(person_id)
        self._record(actor, "admin.person.mfa_reset", subject=person_id)
        return person

    def end_sessions(self, actor: Actor, person_id: str, sid: str | None = None) -> int:
        """End one session (`sid`) or all of a person's sessions; returns how many ended."""
        self.authorize(actor, "persons.write")
        if self._persons.get(person_id) is None:
            raise NotFound("person")
        ended = self._end_sessions(person_id, sid)
        if sid is not None and not ended:
            raise NotFound("session")
        self._record(actor, "admin.person.sessions_ended", subject=person_id, details={"ended": ended})
        return ended

    def _end_sessions(self, person_id: str, sid: str | None) -> int:
        ended = 0
        for session in self._sso.sessions_of(person_id):
            if sid is None or session.sid == sid:
                self._logout.end_session(session.sid, person_id)
                ended += 1
        return ended

    def _resolve_person(self, ref: str) -> Person:
        """A person by id, resident ID number (blind index) or exact username."""
        ref = (ref or "").strip()[:128]
        person = None
        if ref:
            if looks_like_resident_id(ref):
                person = self._persons.find_by_id_number(ref)
            person = person or self._persons.get(ref)
            if person is None:
                matches = [p for p in self._persons.search(ref, 0, 5) if p.username == ref]
                person = matches[0] if matches else None
        if person is None:
            raise NotFound("person")
        return person

    # -- legal entities -----------------------------------------------------------------------------

    def list_entities(self, actor: Actor, offset: int = 0, limit: int = 50) -> Page[LegalEntity]:
        self.authorize(actor, "entities.read")
        offset, limit = _bounds(offset, limit)
        return _page(self._entities.list_entities(offset, limit + 1), offset, limit)

    def view_entity(self, actor: Actor, entity_id: str) -> EntityDetail:
        self.authorize(actor, "entities.read")
        entity = self._entities.get_entity(entity_id)
        if entity is None:
            raise NotFound("legal entity")
        return EntityDetail(entity, self._entities.authorisations_of_entity(entity_id, active_only=False))

    def find_entity(self, actor: Actor, uscc: str) -> LegalEntity | None:
        self.authorize(actor, "entities.read")
        return self._entity_call(self._entities.find_entity_by_uscc, uscc)

    def create_entity(
        self, actor: Actor, uscc: str, name: str, entity_type: str = "enterprise"
    ) -> LegalEntity:
        self.authorize(actor, "entities.write")
        entity = self._entity_call(self._entities.create_entity, uscc, name, entity_type)
        self._record(actor, "admin.entity.created", details={"entity": entity.id})
        return entity

    def verify_entity(self, actor: Actor, entity_id: str) -> LegalEntity:
        return self._entity_transition(actor, entity_id, self._entities.verify_entity, "verified")

    def suspend_entity(self, actor: Actor, entity_id: str) -> LegalEntity:
        return self._entity_transition(actor, entity_id, self._entities.suspend, "suspended")

    def reinstate_entity(self, actor: Actor, entity_id: str) -> LegalEntity:
        return self._entity_transition(actor, entity_id, self._entities.reinstate, "reinstated")

    def set_representative(self, actor: Actor, entity_id: str, person_ref: str) -> AgentAuthorisation:
        self.authorize(actor, "entities.write")
        person = self._resolve_person(person_ref)
        granted = self._entity_call(
            self._entities.set_legal_representative, entity_id, person.id, f"admin:{actor.id}"
        )
        self._record(
            actor, "admin.entity.representative_set", subject=person.id, details={"entity": entity_id}
        )
        return granted

    def grant_agent(
        self,
        actor: Actor,
        entity_id: str,
        person_ref: str,
        powers: str | list[str],
        valid_until: int | None,
        role: str = "agent",
    ) -> AgentAuthorisation:
        self.authorize(actor, "entities.write")
        person = self._resolve_person(person_ref)
        if role not in (Role.AGENT.value, Role.ENTITY_ADMIN.value):
            raise AdminInputError("invalid_role", "Authority is granted as agent or entity_admin.")
        granted = self._entity_call(
            self._entities.grant_agent,
            entity_id,
            person.id,
            powers,
            valid_until,
            None,
            actor.id,
            role=Role(role),
        )
        self._record(
            actor,
            "admin.entity.agent_granted",
            subject=person.id,
            details={"entity": entity_id, "role": role, "powers": " ".join(granted.powers)},
        )
        return granted

    def revoke_authorisation(self, actor: Actor, authorisation_id: str) -> AgentAuthorisation:
        self.authorize(actor, "entities.write")
        revoked = self._entity_call(self._entities.revoke_authorisation, authorisation_id, None, actor.id)
        self._record(
            actor,
            "admin.entity.authorisation_revoked",
            subject=revoked.person_id,
            details={"entity": revoked.entity_id, "authorisation": authorisation_id},
        )
        return revoked

    def _entity_transition(
        self, actor: Actor, entity_id: str, change: Callable[[str], LegalEntity], what: str
    ) -> LegalEntity:
        self.authorize(actor, "entities.write")
        entity = self._entity_call(change, entity_id)
        self._record(actor, f"admin.entity.{what}", details={"entity": entity_id})
        return entity

    @staticmethod
    def _entity_call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return function(*args, **kwargs)
        except EntityError as exc:
            raise AdminInputError(exc.code, str(exc)) from None

    # -- signing keys -------------------------------------------------------------------------------

    def list_keys(self, actor: Actor) -> list[dict[str, Any]]:
        self.authorize(actor, "keys.read")
        return self._keys.list_keys()

    def rotate_keys(self, actor: Actor, alg: str | None = None) -> list[str]:
        self.authorize(actor, "keys.rotate")
        try:
            kids = self._keys.rotate(alg)
        except ValueError as exc:
            raise AdminInputError("invalid_request", str(exc)) from None
        self._record(actor, "admin.keys.rotated", details={"alg": alg or "all", "kids": kids})
        return kids

    def retire_key(self, actor: Actor, kid: str) -> dict[str, Any]:
        self.authorize(actor, "keys.rotate")
        try:
            key = self._keys.retire(kid)
        except KeyRetirementError as exc:
            raise AdminInputError("invalid_request", str(exc)) from None
        self._record(actor, "admin.keys.retired", details={"kid": kid})
        return key

    # -- the audit log ------------------------------------------------------------------------------

    def search_audit(
        self, actor: Actor, where: AuditFilter, offset: int = 0, limit: int = 50
    ) -> Page[dict[str, Any]]:
        self.authorize(actor, "audit.read")
        offset, limit = _bounds(offset, limit)
        return _page(self._audit.search(where, offset, limit + 1), offset, limit)

    def export_audit(self, actor: Actor, where: AuditFilter, fmt: str) -> Iterator[str]:
        self.authorize(actor, "audit.read")
        if fmt not in ("jsonl", "csv"):
            raise AdminInputError("invalid_request", "The export format must be jsonl or csv.")
        self._record(actor, "admin.audit.exported", details={"format": fmt, **_filter_details(where)})
        return self._audit.export(fmt, where=where)

    # -- console bootstrap --------------------------------------------------------------------------

    def ensure_console_client(self, client_id: str, redirect_uri: str, minimum_acr: str) -> Client:
        """The console's own registration: a first-party public client (PKCE), strongest level."""
        metadata = {
            "client_id": client_id,
            "client_name": "Administration console",
            "token_endpoint_auth_method": "none",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code"],
            "scope": "openid",
            "first_party": True,
            "minimum_acr": minimum_acr,
        }
        current = self._clients.find_any(client_id)
        if (
            current is not None
            and not current.disabled
            and current.redirect_uris == (redirect_uri,)
            and current.minimum_acr == minimum_acr
            and current.first_party
            and current.is_public
        ):
            return current
        try:
            client, _ = self._clients.register(metadata)
        except IntegrityError:  # several workers starting at once: one registered it
            registered = self._clients.find_any(client_id)
            assert registered is not None
            return registered
        return client

    # -- internals ----------------------------------------------------------------------------------

    def _record(
        self,
        actor: Actor,
        event: str,
        *,
        subject: str | None = None,
        client_id: str | None = None,
        purpose: str | None = None,
        outcome: str = "success",
        details: dict[str, Any] | None = None,
    ) -> None:
        self._audit.record(
            event,
            actor=actor.id if actor.kind == "person" else f"client:{actor.id}",
            subject=subject,
            client_id=client_id,
            purpose=purpose,
            address=actor.address,
            outcome=outcome,
            details=details,
        )


def fields_to_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict copy of submitted metadata (the console's form and the API's JSON body)."""
    if not isinstance(metadata, Mapping):
        raise AdminInputError("invalid_client_metadata", "The client metadata must be an object.")
    return dict(metadata)


def kept_metadata(existing: Client) -> dict[str, Any]:
    """Metadata an edit keeps unless it names it: the console's form does not carry the token
    exchange targets nor the client-credentials audiences, and an edit of the other fields must not
    drop them."""
    kept: dict[str, Any] = {}
    if existing.token_exchange:
        kept["token_exchange"] = [
            {"audience": t.audience, "scopes": list(t.scopes)} for t in existing.token_exchange
        ]
    if existing.audiences:
        kept["audiences"] = [{"audience": t.audience, "scopes": list(t.scopes)} for t in existing.audiences]
    return kept


def _grant(row: AdminRoleRow) -> AdminGrant:
    return AdminGrant(row.person_id, row.role, row.granted_by, row.granted_at)


def _filter_details(where: AuditFilter) -> dict[str, Any]:
    return {k: v for k, v in where.__dict__.items() if v is not None}
