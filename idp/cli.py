"""Operator CLI (composition root): migrate, provision, create-client, create-person, seed-bulk,
rotate-keys, deliver-logouts, verify-audit, export-audit, serve. Run as `python -m idp <command>`."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from idp.domain.admin import ROLES, check_role_combination
from idp.domain.entities import EntityStatus, Role, check_powers, names_match, validate_entity_type
from idp.domain.errors import DomainError
from idp.domain.identifiers import parse_uscc
from idp.domain.models import Person
from idp.services.admin import AdminInputError
from idp.services.bulk_seed import (
    DEFAULT_BATCH,
    DEFAULT_SEED,
    BulkSeeder,
    BulkSeedError,
    SeedProgress,
    check_request,
)
from idp.services.clients import ClientMetadataError
from idp.services.entities import GRANTED_BY_REGISTER, MAX_NAME_LENGTH, EntityError
from idp.services.persons import PersonError, validate_person_data
from idp.services.provider import ProviderServices
from idp.services.registration import RegistrationError
from idp.settings import Settings
from idp.store.db import build_engine
from idp.store.migrate import SchemaNotCurrent, upgrade_database


def _services(settings: Settings) -> ProviderServices:
    from idp.app import build_services

    try:
        return build_services(settings)
    except SchemaNotCurrent as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Unified identity authentication provider: operator commands."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        ctx.obj = Settings.from_env()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command()
@click.pass_obj
def migrate(settings: Settings) -> None:
    """Bring the database schema up to date (Alembic upgrade head)."""
    upgrade_database(settings.database_url)
    click.echo("database is up to date")


def provision_document(services: ProviderServices, document: Any) -> list[str]:
    """Create or update clients, persons and legal entities from one JSON document; idempotent.

    The whole document is checked before anything is written. Returns printable lines."""
    if not isinstance(document, dict):
        raise click.ClickException(
            "the document must be a JSON object with 'clients', 'persons' and/or 'legal_entities'"
        )
    unknown = set(document) - {"clients", "persons", "legal_entities"}
    if unknown:
        raise click.ClickException(f"unknown top-level keys: {', '.join(sorted(unknown))}")
    _validate_document(services, document)
    entities = _check_legal_entities(services, document)
    lines: list[str] = []
    for index, metadata in enumerate(document.get("clients", [])):
        if not isinstance(metadata, dict):
            raise click.ClickException(f"clients[{index}] must be an object")
        try:
            client, secret = services.clients.register(metadata)
        except ClientMetadataError as exc:
            raise click.ClickException(f"clients[{index}]: {exc}") from None
        lines.append(f"client {client.client_id}" + (f" secret={secret}" if secret else ""))
    for index, data in enumerate(document.get("persons", [])):
        if not isinstance(data, dict):
            raise click.ClickException(f"persons[{index}] must be an object")
        try:
            person = services.persons.upsert({k: v for k, v in data.items() if k != "admin_roles"})
        except PersonError as exc:
            raise click.ClickException(f"persons[{index}]: {exc}") from None
        for role in data.get("admin_roles", []):
            try:
                services.admin.bootstrap_role(person.id, role, by="provision")
            except AdminInputError as exc:
                raise click.ClickException(f"persons[{index}]: {exc.message}") from None
        lines.append(f"person {person.username}")
    for index, entry in enumerate(entities):
        lines.append(_provision_entity(services, index, entry))
    return lines


ENTITY_KEYS = frozenset({"uscc", "name", "entity_type", "representative", "agents"})
AGENT_KEYS = frozenset({"person", "role", "powers", "valid_days"})
MAX_VALID_DAYS = 3650
PROVISION = "provision"  # the actor of provisioning in the audit log and in `granted_by`


@dataclasses.dataclass(frozen=True)
class _AgentEntry:
    username: str
    role: Role
    powers: tuple[str, ...]
    valid_days: int | None  # None: until revoked


@dataclasses.dataclass(frozen=True)
class _EntityEntry:
    uscc: str
    name: str
    entity_type: str
    representative: str
    agents: tuple[_AgentEntry, ...]


def _check_legal_entities(services: ProviderServices, document: dict[str, Any]) -> list[_EntityEntry]:
    """`legal_entities`: [{uscc, name, entity_type, representative, agents: [{person, role, powers,
    valid_days}]}], checked against the document's persons and the database before anything is written."""
    entries = document.get("legal_entities", [])
    if not isinstance(entries, list):
        raise click.ClickException("'legal_entities' must be a list")
    persons = {
        str(p["username"]).strip(): p
        for p in document.get("persons", [])
        if isinstance(p, dict) and isinstance(p.get("username"), str)
    }
    checked: list[_EntityEntry] = []
    for index, entry in enumerate(entries):
        where = f"legal_entities[{index}]"
        try:
            checked.append(_check_entity_entry(services, persons, entry))
        except (DomainError, EntityError) as exc:
            raise click.ClickException(f"{where}: {exc.message}") from None
        except ValueError as exc:
            raise click.ClickException(f"{where}: {exc}") from None
        if checked[-1].uscc in (e.uscc for e in checked[:-1]):
            raise click.ClickException(f"{where}: {checked[-1].uscc} is listed twice")
    return checked


def _check_entity_entry(
    services: ProviderServices, persons: dict[str, dict[str, Any]], entry: object
) -> _EntityEntry:
    if not isinstance(entry, dict):
        raise ValueError("must be an object")
    unknown = set(entry) - ENTITY_KEYS
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
    if not isinstance(entry.get("uscc"), str):
        raise ValueError("uscc must be a string")
    uscc = parse_uscc(entry["uscc"]).value
    name = entry["name"].strip() if isinstance(entry.get("name"), str) else ""
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise ValueError(f"name must be 1-{MAX_NAME_LENGTH} characters")
    entity_type = validate_entity_type(entry.get("entity_type", "enterprise"))
    existing = services.entities.find_entity_by_uscc(uscc)
    if existing is not None and not names_match(existing.name, name):
        raise ValueError(f"{uscc} is registered here as {existing.name}, not {name}")
    if existing is not None and existing.status in (EntityStatus.SUSPENDED, EntityStatus.DEREGISTERED):
        raise ValueError(f"{uscc} is {existing.status.value}; nobody can be authorised to act for it")
    representative = _username(entry.get("representative"), "representative")
    _check_eligible(services, persons, representative, "representative")
    agents_data = entry.get("agents", [])
    if not isinstance(agents_data, list):
        raise ValueError("agents must be a list")
    agents: list[_AgentEntry] = []
    for number, agent in enumerate(agents_data):
        where = f"agents[{number}]"
        if not isinstance(agent, dict):
            raise ValueError(f"{where} must be an object")
        unknown = set(agent) - AGENT_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown keys: {', '.join(sorted(unknown))}")
        username = _username(agent.get("person"), f"{where}.person")
        if username == representative:
            raise ValueError(f"{where}: {username} is the legal representative and holds every power already")
        if username in (a.username for a in agents):
            raise ValueError(f"{where}: {username} is listed twice")
        _check_eligible(services, persons, username, f"{where}.person")
        role = agent.get("role", Role.AGENT.value)
        if role not in (Role.AGENT.value, Role.ENTITY_ADMIN.value):
            raise ValueError(f"{where}: role must be agent or entity_admin")
        powers = agent.get("powers")
        if not isinstance(powers, list) or not all(isinstance(p, str) for p in powers):
            raise ValueError(f"{where}: powers must be a list of strings")
        days = agent.get("valid_days")
        if days is not None and (
            isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_VALID_DAYS
        ):
            raise ValueError(f"{where}: valid_days must be a whole number of days from 1 to {MAX_VALID_DAYS}")
        try:
            agents.append(_AgentEntry(username, Role(role), check_powers(powers), days))
        except DomainError as exc:
            raise ValueError(f"{where}: {exc.message}") from None
    return _EntityEntry(uscc, name, entity_type, representative, tuple(agents))


def _username(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field} must be a username")
    return value.strip()


def _check_eligible(
    services: ProviderServices, persons: dict[str, dict[str, Any]], username: str, field: str
) -> None:
    """The person is in the document or the database, and real-name verified (only such a person can
    act for an entity): in the document with an `id_number`, or verified already."""
    existing = _find_person(services, username)
    if existing is not None and existing.disabled:
        raise ValueError(f"{field}: {username}'s account is disabled")
    if username in persons and persons[username].get("id_number"):
        return
    if existing is None and username not in persons:
        raise ValueError(f"{field}: there is no person {username} here or in this document")
    if existing is None or not existing.verified:
        raise ValueError(
            f"{field}: {username} must be real-name verified (give an id_number) to act for an entity"
        )


def _find_person(services: ProviderServices, username: str) -> Person | None:
    return next((p for p in services.persons.search(username, 0, 200) if p.username == username), None)


def _provision_entity(services: ProviderServices, index: int, entry: _EntityEntry) -> str:
    """Create the entity if new, verify it (against the enterprise register when one is configured,
    else on the operator's word), install the representative and grant the agents; audited as
    `admin.entity.*` events with the actor `provision`. Returns the printable line."""
    entities = services.entities

    def refuse(message: str) -> click.ClickException:
        return click.ClickException(f"legal_entities[{index}]: {message}")

    def audit(event: str, entity_id: str, subject: str | None = None, **details: str) -> None:
        services.audit.record(
            f"admin.entity.{event}",
            actor=PROVISION,
            subject=subject,
            details={"entity": entity_id, **details},
        )

    line = f"entity {entry.uscc}"
    try:
        entity = entities.find_entity_by_uscc(entry.uscc)
        if entity is None:
            entity = entities.create_entity(entry.uscc, entry.name, entry.entity_type)
            audit("created", entity.id)
        verified_by_register = False
        if entity.status is EntityStatus.PENDING:
            try:
                entity = entities.verify_entity(entity.id)
                verified_by_register = True
            except EntityError as exc:
                if exc.code != "no_register":
                    raise
                entity = entities.verify_by_operator(entity.id)
            how = "register" if verified_by_register else PROVISION
            audit("verified", entity.id, by=how)
            line += (
                " verified against the enterprise register"
                if verified_by_register
                else " recorded as verified by the operator (no enterprise register configured)"
            )
        if entity.status is not EntityStatus.VERIFIED:
            raise refuse(f"the enterprise register says {entry.uscc} is {entity.status.value}")
        representative = _find_person(services, entry.representative)
        assert representative is not None  # checked, and persons are written first
        held = [
            a
            for a in entities.authorisations_of_entity(entity.id, active_only=True)
            if a.role is Role.LEGAL_REPRESENTATIVE
        ]
        if not any(a.person_id == representative.id for a in held):
            if verified_by_register or any(a.granted_by == GRANTED_BY_REGISTER for a in held):
                raise refuse(
                    f"the enterprise register does not name {entry.representative} as the legal "
                    "representative (or the name or identity number differs)"
                )
            entities.set_legal_representative(entity.id, representative.id, PROVISION)
            audit("representative_set", entity.id, representative.id)
        active = entities.authorisations_of_entity(entity.id, active_only=True)
        for agent in entry.agents:
            person = _find_person(services, agent.username)
            assert person is not None
            if any(
                a.person_id == person.id and a.role is agent.role and tuple(a.powers) == agent.powers
                for a in active
            ):
                continue  # granted already: the same role and powers, still in force
            valid_until = int(time.time()) + agent.valid_days * 86400 if agent.valid_days else None
            entities.grant_agent(
                entity.id, person.id, agent.powers, valid_until, None, by_admin=PROVISION, role=agent.role
            )
            audit("agent_granted", entity.id, person.id, role=agent.role.value, powers=" ".join(agent.powers))
    except EntityError as exc:
        raise refuse(exc.message) from None
    return line


def _check_admin_roles(entry: dict[str, Any]) -> None:
    roles = entry.get("admin_roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise PersonError("admin_roles must be a list of role names")
    problem = check_role_combination(set(roles))
    if problem:
        raise PersonError(f"admin_roles: {problem}")


def _validate_document(services: ProviderServices, document: dict[str, Any]) -> None:
    """Check every entry before writing any, so a bad document changes nothing."""
    checks: tuple[tuple[str, Callable[[dict[str, Any]], object]], ...] = (
        ("clients", services.clients.validate),
        ("persons", validate_person_data),
    )
    for section, check in checks:
        entries = document.get(section, [])
        if not isinstance(entries, list):
            raise click.ClickException(f"'{section}' must be a list")
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise click.ClickException(f"{section}[{index}] must be an object")
            try:
                check(entry)
                if section == "persons":
                    _check_admin_roles(entry)
            except (ClientMetadataError, PersonError) as exc:
                raise click.ClickException(f"{section}[{index}]: {exc}") from None


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def provision(settings: Settings, file: Path) -> None:
    """Create or update clients and persons from FILE.json (RFC 7591 client metadata names)."""
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{file} is not valid JSON: {exc}") from None
    for line in provision_document(_services(settings), document):
        click.echo(line)


@cli.command("create-client")
@click.option("--client-id", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--post-logout-redirect-uri", "post_logout", multiple=True)
@click.option("--backchannel-logout-uri")
@click.option("--grant-type", "grant_types", multiple=True, default=("authorization_code", "refresh_token"))
@click.option("--auth-method", default="client_secret_basic")
@click.option("--scope", default="openid profile")
@click.option("--name", "client_name", default="")
@click.option("--first-party", is_flag=True)
@click.option("--access-token-format", default="jwt", type=click.Choice(["jwt", "opaque"]))
@click.option("--id-token-alg", default="RS256", type=click.Choice(["RS256", "ES256"]))
@click.pass_obj
def create_client(settings: Settings, **options: Any) -> None:
    """Register (or update) one client; a generated secret is printed once."""
    metadata: dict[str, Any] = {
        "client_id": options["client_id"],
        "client_name": options["client_name"] or options["client_id"],
        "redirect_uris": list(options["redirect_uris"]),
        "post_logout_redirect_uris": list(options["post_logout"]),
        "grant_types": list(options["grant_types"]),
        "token_endpoint_auth_method": options["auth_method"],
        "scope": options["scope"],
        "first_party": options["first_party"],
        "access_token_format": options["access_token_format"],
        "id_token_signed_response_alg": options["id_token_alg"],
    }
    if options["backchannel_logout_uri"]:
        metadata["backchannel_logout_uri"] = options["backchannel_logout_uri"]
    if "authorization_code" not in metadata["grant_types"]:
        metadata["response_types"] = []
    for line in provision_document(_services(settings), {"clients": [metadata]}):
        click.echo(line)


@cli.command("create-person")
@click.option("--username", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name")
@click.option("--id-number")
@click.option("--email")
@click.option("--phone-number")
@click.pass_obj
def create_person(settings: Settings, **options: Any) -> None:
    """Create (or update) one person with a local password."""
    data = {k: v for k, v in options.items() if v is not None}
    for line in provision_document(_services(settings), {"persons": [data]}):
        click.echo(line)


@cli.command("seed-bulk")
@click.option(
    "--persons", type=int, required=True, help="Seeded persons wanted in total (existing ones are kept)."
)
@click.option(
    "--entities", type=int, default=0, show_default=True, help="Seeded legal entities wanted in total."
)
@click.option(
    "--password",
    help="The password of every seeded person (hashed once; synthetic load data only). Prompted if absent.",
)
@click.option("--batch", type=int, default=DEFAULT_BATCH, show_default=True, help="Rows per transaction.")
@click.option(
    "--seed",
    "rng_seed",
    type=int,
    default=DEFAULT_SEED,
    show_default=True,
    help="What the data derives from.",
)
@click.pass_obj
def seed_bulk(
    settings: Settings, persons: int, entities: int, password: str | None, batch: int, rng_seed: int
) -> None:
    """Seed synthetic, valid persons and legal entities for load tests (COPY on PostgreSQL).

    Persons `seed-00000000`... share one password hash; entity j is represented by person j. Counts are
    totals: rows seeded before are found and kept, so the command can be re-run or extended. See
    idp/services/bulk_seed.py."""
    try:
        check_request(persons, entities, batch, rng_seed)
    except BulkSeedError as exc:
        raise click.ClickException(str(exc)) from None
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    services = _services(settings)
    engine = build_engine(settings.database_url)
    last = [0.0]

    def report(p: SeedProgress) -> None:
        now = time.monotonic()
        if p.done == p.total or now - last[0] >= 2.0:
            last[0] = now
            click.echo(
                f"{p.kind}: {p.done:,}/{p.total:,} ({p.done / p.total:.0%}), {p.rows_per_second:,.0f} rows/s"
            )

    try:
        result = BulkSeeder(engine, services.persons).seed(
            persons=persons, entities=entities, password=password, seed=rng_seed, batch=batch, progress=report
        )
    except BulkSeedError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    for kind, before, added, seconds in (
        ("persons", result.persons_before, result.persons_added, result.person_seconds),
        ("entities", result.entities_before, result.entities_added, result.entity_seconds),
    ):
        rate = f", {added / seconds:,.0f} rows/s" if added and seconds > 0 else ""
        click.echo(
            f"{kind}: {before:,} seeded before, {added:,} added in {seconds:.1f} s ({result.method}{rate})"
        )
    if result.persons_added or result.entities_added:
        services.audit.record(
            "seed.bulk_loaded",
            actor="cli",
            details={
                "persons_added": result.persons_added,
                "entities_added": result.entities_added,
                "seed": rng_seed,
            },
        )
        services.audit.flush()


@cli.command("rotate-keys")
@click.option("--alg", type=click.Choice(["RS256", "ES256"]), default=None, help="Only this algorithm.")
@click.pass_obj
def rotate_keys(settings: Settings, alg: str | None) -> None:
    """Publish new signing keys now; they sign after the overlap; old keys stay published until expiry."""
    services = _services(settings)
    services.keys.ensure_keys()
    for kid in services.keys.rotate(alg):
        click.echo(f"new key {kid}")


@cli.command("list-keys")
@click.pass_obj
def list_keys(settings: Settings) -> None:
    """Show every signing key and its state."""
    for key in _services(settings).keys.list_keys():
        click.echo(json.dumps(key, sort_keys=True))


@cli.command("deliver-logouts")
@click.option("--loop", is_flag=True, help="Keep delivering until interrupted.")
@click.option("--interval", default=1.0, show_default=True)
@click.pass_obj
def deliver_logouts(settings: Settings, loop: bool, interval: float) -> None:
    """Deliver queued back-channel logout tokens (retries with backoff)."""
    services = _services(settings)
    while True:
        delivered, failed = services.logout.deliver_due()
        click.echo(f"delivered={delivered} failed={failed}")
        if not loop:
            return
        time.sleep(interval)


@cli.command("purge-expired")
@click.option(
    "--older-than",
    default=86400,
    show_default=True,
    type=click.IntRange(min=0),
    help="Keep tokens that expired less than this many seconds ago.",
)
@click.option("--batch", default=10_000, show_default=True, type=click.IntRange(min=1, max=1_000_000))
@click.pass_obj
def purge_expired(settings: Settings, older_than: int, batch: int) -> None:
    """Delete expired tokens, and expired entries of the database ephemeral store (Redis expires its
    own); run it from cron, e.g. hourly. Deletes in batches, one short transaction each."""
    services = _services(settings)
    tokens = services.tokens.purge_expired(older_than=older_than, batch=batch)
    ephemeral = services.ephemeral.purge_expired()
    click.echo(f"tokens={tokens} ephemeral={ephemeral}")


@cli.command()
@click.option("--to", "recipient", help="Only messages to this email address or mobile number.")
@click.option("--limit", default=10, show_default=True, help="How many of the newest messages.")
@click.pass_obj
def notifications(settings: Settings, recipient: str | None, limit: int) -> None:
    """Development: show the newest messages of the database notifier (registration and reset links)."""
    from idp.services.notifier import DatabaseNotifier

    notifier = _services(settings).notifier
    if not isinstance(notifier, DatabaseNotifier):
        raise click.ClickException("only the development (database) notifier records messages")
    for message in reversed(notifier.recent(recipient, limit)):
        sent = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(message.created_at))
        click.echo(f"--- #{message.id} {sent} UTC to {message.recipient}: {message.subject}")
        click.echo(message.body)


@cli.command("unlock-login")
@click.argument("identifier")
@click.pass_obj
def unlock_login(settings: Settings, identifier: str) -> None:
    """Lift the sign-in lock and delay of an account identifier (username, ID number or mobile number)."""
    _services(settings).throttle.unlock(identifier)
    click.echo("unlocked")


@cli.command("issue-initial-token")
@click.option("--label", default="", help="Whom the token is for (shown in the list and the audit log).")
@click.option("--ttl", default=86400, show_default=True, help="Lifetime in seconds (60 to 2592000).")
@click.option("--max-uses", default=1, show_default=True, help="Registrations it allows (1 to 1000).")
@click.pass_obj
def issue_initial_token(settings: Settings, label: str, ttl: int, max_uses: int) -> None:
    """Issue an initial access token for dynamic client registration (RFC 7591); printed once."""
    services = _services(settings)
    try:
        token, value = services.registration.issue_initial_token(
            "cli", label=label, ttl_seconds=ttl, max_uses=max_uses
        )
    except RegistrationError as exc:
        raise click.ClickException(exc.message) from None
    services.audit.record(
        "initial_token.issued",
        actor="cli",
        details={"token_id": token.id, "label": token.label, "max_uses": token.max_uses, "ttl": ttl},
    )
    services.audit.flush()
    expires = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(token.expires_at))
    click.echo(f"initial token {token.id} expires {expires} max_uses={token.max_uses} token={value}")


@cli.command("list-initial-tokens")
@click.option("--all", "include_inactive", is_flag=True, help="Also revoked, expired and used-up tokens.")
@click.pass_obj
def list_initial_tokens(settings: Settings, include_inactive: bool) -> None:
    """Show the initial access tokens (never their values), newest first."""
    now = time.time()
    for token in _services(settings).registration.list_initial_tokens(include_inactive=include_inactive):
        click.echo(json.dumps({**dataclasses.asdict(token), "active": token.is_active(now)}, sort_keys=True))


@cli.command("revoke-initial-token")
@click.argument("token_id")
@click.pass_obj
def revoke_initial_token(settings: Settings, token_id: str) -> None:
    """Revoke an initial access token at once (clients already registered with it stay)."""
    services = _services(settings)
    if not services.registration.revoke_initial_token(token_id):
        raise click.ClickException(f"no initial token {token_id!r} to revoke (unknown or revoked already)")
    services.audit.record("initial_token.revoked", actor="cli", details={"token_id": token_id})
    services.audit.flush()
    click.echo(f"revoked {token_id}")


@cli.command("verify-audit")
@click.pass_obj
def verify_audit(settings: Settings) -> None:
    """Recompute the audit hash chain; exit 1 naming the first changed, inserted or deleted event."""
    result = _services(settings).audit.verify()
    if not result.ok:
        click.echo(f"audit chain broken at event {result.first_bad_id}: {result.reason}")
        sys.exit(1)
    click.echo(f"audit chain intact: {result.count} events (head {result.head})")


@cli.command("export-audit")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--event", help="Only events of this kind (e.g. data.read).")
@click.option("--since", type=int, help="Only events at or after this time (epoch milliseconds).")
@click.option("--until", type=int, help="Only events before this time (epoch milliseconds).")
@click.pass_obj
def export_audit(
    settings: Settings, fmt: str, event: str | None, since: int | None, until: int | None
) -> None:
    """Write audit events in chain order to standard output."""
    for line in _services(settings).audit.export(fmt, since=since, until=until, event=event):
        click.echo(line)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.pass_obj
def serve(settings: Settings, host: str, port: int) -> None:
    """Serve the provider with the development server (production: gunicorn wsgi:app)."""
    from werkzeug.serving import run_simple

    from idp.app import create_app

    try:
        app = create_app(settings)
    except SchemaNotCurrent as exc:
        raise click.ClickException(str(exc)) from None
    run_simple(host, port, app, threaded=True)


@cli.command("grant-role")
@click.argument("person")
@click.argument("role", type=click.Choice(ROLES))
@click.pass_obj
def grant_role(settings: Settings, person: str, role: str) -> None:
    """Give PERSON (id, resident ID number or username) an admin ROLE, e.g. the first super_admin.
    The person signs in to /admin with a second factor (enrolled at the next sign-in)."""
    services = _services(settings)
    try:
        grant = services.admin.bootstrap_role(person, role, by="cli")
    except AdminInputError as exc:
        raise click.ClickException(exc.message) from None
    services.audit.flush()
    click.echo(f"granted {grant.role} to {grant.person_id}")


@cli.command("list-admins")
@click.pass_obj
def list_admins(settings: Settings) -> None:
    """Every person holding an admin role, with the roles."""
    services = _services(settings)
    for person, roles in services.admin.all_admins():
        click.echo(f"{person.id}  {person.username}  {' '.join(roles)}")


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
