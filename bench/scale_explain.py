"""Query plans of the lookups that must not grow with the number of persons (used by bench/scale.py).

* `parse_log` / `summarise`: auto_explain (JSON format) entries of one database in the PostgreSQL log,
  grouped per statement, each with the scans its plan used.
* `python -m bench.scale_explain --persons N --entities M` (the provider's IDP_* environment): runs
  the person, entity, consent, token, audit and outbox lookups through the real services against a
  database seeded by `seed-bulk`, with auto_explain on for its own connections, and prints each one's
  plan. Seq scans are marked; on a table that grows with the population they are the thing to fix.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

GROWING = frozenset(
    {"persons", "legal_entities", "agent_authorisations", "tokens", "audit_events", "consents",
     "recovery_codes", "admin_roles", "logout_outbox", "notifications", "ephemeral"}
)  # fmt: skip
BIG = 1000  # a scan reading this many rows of a growing table is flagged
_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+ \w+ \[\d+\] (\S+)@(\S+) LOG:  duration: [\d.]+ ms  plan:$")
_NOISE = re.compile(r"pg_catalog|pg_type|current_schema|version\(\)|standard_conforming", re.I)


def parse_log(text: str, database: str) -> list[dict[str, Any]]:
    """The auto_explain JSON plans logged for `database` (continuation lines start with a tab)."""
    plans: list[dict[str, Any]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _ENTRY.match(lines[i])
        i += 1
        if not match:
            continue
        body = []
        while i < len(lines) and lines[i].startswith("\t"):
            body.append(lines[i][1:])
            i += 1
        if match.group(2) != database:
            continue
        try:
            plans.append(json.loads("\n".join(body)))
        except ValueError:
            continue
    return plans


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def describe(plan: dict[str, Any]) -> tuple[str, bool]:
    """The scans of one plan, in words, and whether it reads many rows of a growing table (a seq scan,
    or an index scan that filters most of what it reads)."""
    parts, bad = [], False
    for node in _nodes(plan["Plan"]):
        kind = node["Node Type"]
        relation = node.get("Relation Name")
        if kind == "ModifyTable":
            parts.append(f"{node.get('Operation', 'Modify')} on {relation}")
            continue
        if relation is None and "Index Name" not in node:
            continue
        text = kind + (f" using {node['Index Name']}" if "Index Name" in node else "")
        text += f" on {relation}" if relation else ""
        rows = node.get("Actual Rows")
        removed = node.get("Rows Removed by Filter")
        if rows is not None:
            text += f" ({rows} row{'s' if rows != 1 else ''}"
            text += f", {removed:,} removed by filter)" if removed else ")"
        read = (rows or 0) + (removed or 0)
        if relation in GROWING and read >= BIG and (kind == "Seq Scan" or (removed or 0) >= BIG):
            bad = True
            text = f"READS {read:,} ROWS of a growing table: " + text
        elif kind == "Seq Scan" and relation in GROWING:
            text += " [nearly empty here, so the planner scans it]"
        parts.append(text)
    return "; ".join(parts) or "(no table)", bad


def short(query: str, width: int = 150) -> str:
    q = " ".join(query.split())
    q = re.sub(r"^SELECT (.{40,}?) FROM ", "SELECT … FROM ", q)
    q = re.sub(r"^INSERT INTO (\w+) \(.*?\) VALUES .*", r"INSERT INTO \1 (…) VALUES (…)", q)
    return q if len(q) <= width else q[: width - 1] + "…"


def summarise(plans: list[dict[str, Any]]) -> str:
    """One entry per distinct statement: how often it ran, the statement, the scans of its plan."""
    seen: dict[str, tuple[int, dict[str, Any]]] = {}
    for plan in plans:
        query = " ".join(str(plan.get("Query Text", "")).split())
        if not query or _NOISE.search(query):
            continue
        count, first = seen.get(query, (0, plan))
        seen[query] = (count + 1, first)
    lines = []
    flagged = 0
    for query, (count, plan) in sorted(seen.items(), key=lambda kv: -kv[1][0]):
        scans, bad = describe(plan)
        flagged += bad
        lines.append(f"{count:>6}x  {short(query)}\n         -> {scans}")
    lines.append(
        f"{len(seen)} distinct statements; {flagged} reading many rows of a table that grows with the population"
    )
    return "\n".join(lines)


def append_audit_event(services: Any) -> None:
    services.audit.record("scale.explain", actor="bench")
    services.audit.flush()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.scale_explain", description=__doc__)
    p.add_argument("--persons", type=int, required=True, help="seeded persons in the database")
    p.add_argument("--entities", type=int, required=True, help="seeded entities in the database")
    args = p.parse_args(argv)

    from sqlalchemy import Engine, event

    captured: list[dict[str, Any]] = []
    force_index = [False]  # while True, every statement runs with enable_seqscan off

    def on_notice(diag: Any) -> None:
        message = diag.message_primary or ""
        if "plan:" in message:
            try:
                captured.append(json.loads(message.split("plan:", 1)[1]))
            except ValueError:
                pass

    @event.listens_for(Engine, "connect")
    def _auto_explain(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.add_notice_handler(on_notice)
        with dbapi_conn.cursor() as cur:
            cur.execute("LOAD 'auto_explain'")
            for name, value in (
                ("log_min_duration", "0"), ("log_analyze", "on"), ("log_timing", "off"),
                ("log_format", "json"), ("log_level", "notice"),
            ):  # fmt: skip
                cur.execute(f"SET auto_explain.{name} = '{value}'")
        dbapi_conn.commit()

    @event.listens_for(Engine, "before_cursor_execute")
    def _seqscan(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if conn.dialect.name == "postgresql":
            cursor.execute(f"SET enable_seqscan = {'off' if force_index[0] else 'on'}")

    from idp.app import build_services
    from idp.services.bulk_seed import DEFAULT_SEED, synthetic_entity, synthetic_person
    from idp.settings import Settings

    services = build_services(Settings.from_env())
    deep = synthetic_person(DEFAULT_SEED, args.persons - 1)
    entity = synthetic_entity(DEFAULT_SEED, max(0, args.entities - 1))
    rep = entity.representative_id
    wrong = "not the password"
    calls: list[tuple[str, Callable[[], object]]] = [
        ("login by username", lambda: services.persons.authenticate(deep.username, wrong)),
        ("login by mobile number", lambda: services.persons.authenticate(deep.phone_number, wrong)),
        (
            "login by identity number (blind index)",
            lambda: services.persons.authenticate(deep.id_number, wrong),
        ),
        ("person by id (userinfo, sessions)", lambda: services.persons.get(deep.id)),
        ("second factor enabled?", lambda: services.mfa.is_enabled(deep.id)),
        ("second factor required? (representative or admin)", lambda: services.mfa.requires_mfa(rep)),
        ("admin roles of a person (each login)", lambda: services.admin.is_admin(deep.id)),
        ("entity by USCC", lambda: services.entities.find_entity_by_uscc(entity.uscc)),
        ("entities a person can act for", lambda: services.entities.acting_options(rep)),
        ("acting for an entity (every token for it)", lambda: services.entities.acting_as(rep, entity.id)),
        ("consent covers", lambda: services.consent.covers(deep.id, "bench-web", ["openid"])),
        ("token by digest (introspection, refresh)", lambda: services.tokens.find("no-such-token")),
        (
            "registration: is the email or mobile taken?",
            lambda: services.persons.contact_in_use(email=deep.email, phone_number=deep.phone_number),
        ),
        ("password reset: person by email", lambda: services.persons.find_for_recovery(deep.email)),
        ("audit: data reads about a person", lambda: services.audit.events_for_subject(deep.id)),
        ("audit: append an event", lambda: append_audit_event(services)),
        ("logout outbox: deliveries due", lambda: services.logout.deliver_due()),
        ("admin search by part of a name (not a hot path)", lambda: services.persons.search("seed-009")),
    ]
    print(
        f"Service lookups at {args.persons:,} persons, {args.entities:,} entities (auto_explain, actual rows):"
    )
    flagged = 0
    for label, call in calls:
        print(f"- {label}")
        for forced in (False, True):
            captured.clear()
            force_index[0] = forced
            call()
            force_index[0] = False
            tiny = False
            for plan in captured:
                query = " ".join(str(plan.get("Query Text", "")).split())
                if _NOISE.search(query):
                    continue
                scans, bad = describe(plan)
                flagged += bad and not forced
                tiny = tiny or "nearly empty" in scans
                if forced:
                    print(f"      with enable_seqscan off (as on a large table) -> {scans}")
                else:
                    print(f"    {short(query, 130)}\n      -> {scans}")
            if not tiny:
                break  # only a scan of a nearly empty table is worth asking again with the index
    services.audit.close()
    print(f"{flagged} plan(s) reading many rows of a table that grows with the population")
    return 0


if __name__ == "__main__":
    sys.exit(main())
