"""My entities and agents: whom I can act for; as a legal representative, grant and revoke agents."""

from __future__ import annotations

import datetime
import logging

from flask import Blueprint, Response, abort, render_template, request

from idp.domain.entities import (
    ActingAs,
    AgentAuthorisation,
    CannotActForEntity,
    InvalidEntityData,
    Role,
    names_match,
)
from idp.domain.errors import DomainError
from idp.domain.identifiers import parse_resident_id
from idp.services.entities import EntityError
from idp.web.account import back_to, field, signed_in, when
from idp.web.context import web

bp = Blueprint("account_entities", __name__)
log = logging.getLogger(__name__)

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))


@bp.route("/account/entities", methods=["GET"])
def overview() -> str:
    return render_overview(error=None, status=200)  # type: ignore[return-value]


@bp.route("/account/entities/grant", methods=["POST"])
def grant() -> Response | str:
    """The representative authorises an agent, named by real name and resident identity number."""
    ctx = web()
    _session, person = signed_in(ctx)
    entity_id = field("entity_id")
    if not represents(person.id, entity_id):
        abort(404)
    try:
        id_number = parse_resident_id(field("id_number")).value
        valid_until = end_of_day(field("valid_until"))
    except (DomainError, ValueError):
        return render_overview(error="bad_input", status=400)
    agent = ctx.services.persons.find_by_id_number(id_number)
    if agent is None or not names_match(agent.name or "", field("name")):
        return render_overview(error="no_such_person", status=400)  # one answer for both: no probing
    try:
        ctx.services.entities.grant_agent(entity_id, agent.id, field("powers"), valid_until, person.id)
    except (EntityError, InvalidEntityData, CannotActForEntity) as exc:
        log.info("agent grant refused: %s", getattr(exc, "code", "error"))
        return render_overview(error=str(exc), status=400)
    return back_to("account_entities.overview", done="granted")


@bp.route("/account/entities/revoke", methods=["POST"])
def revoke() -> Response | str:
    """The representative revokes an agent; an agent may give up their own authority."""
    ctx = web()
    _session, person = signed_in(ctx)
    try:
        ctx.services.entities.revoke_authorisation(field("authorisation_id"), person.id)
    except EntityError as exc:
        if exc.code == "not_found":
            abort(404)
        return render_overview(error=str(exc), status=400)
    return back_to("account_entities.overview", done="revoked")


def describe_option(option: ActingAs, own: AgentAuthorisation | None) -> dict[str, object]:
    return {
        "entity": option,
        "authorisation_id": own.id if own else None,
        "until": when(own.valid_until) if own and own.valid_until else None,
    }


def represents(person_id: str, entity_id: str) -> bool:
    return any(
        option.entity_id == entity_id and option.role == Role.LEGAL_REPRESENTATIVE
        for option in web().services.entities.acting_options(person_id)
    )


def end_of_day(text: str) -> int:
    """The last second of a date (YYYY-MM-DD) in China Standard Time; must be in the future."""
    day = datetime.date.fromisoformat(text.strip())
    moment = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), SHANGHAI)
    epoch = int(moment.timestamp())
    if epoch <= datetime.datetime.now(datetime.UTC).timestamp():
        raise ValueError("date in the past")
    return epoch


def render_overview(error: str | None, status: int) -> Response:
    ctx = web()
    _session, person = signed_in(ctx)
    options = ctx.services.entities.acting_options(person.id)
    mine = {
        a.entity_id: a for a in ctx.services.entities.authorisations_of_person(person.id, active_only=True)
    }
    represented = []
    for option in options:
        if option.role != Role.LEGAL_REPRESENTATIVE:
            continue
        agents = []
        for authorisation in ctx.services.entities.authorisations_of_entity(
            option.entity_id, active_only=True
        ):
            if authorisation.role == Role.LEGAL_REPRESENTATIVE:
                continue
            holder = ctx.services.persons.get(authorisation.person_id)
            agents.append(
                {
                    "id": authorisation.id,
                    "name": (holder.name or holder.username) if holder else "",
                    "id_number": holder.id_number_masked if holder else "",
                    "role": authorisation.role,
                    "powers": " ".join(authorisation.powers),
                    "until": when(authorisation.valid_until) if authorisation.valid_until else None,
                }
            )
        represented.append({"entity": option, "agents": agents})
    page = Response(
        render_template(
            "account_entities.html",
            options=[describe_option(option, mine.get(option.entity_id)) for option in options],
            represented=represented,
            error=error,
            done=request.args.get("done") if request.args.get("done") in ("granted", "revoked") else None,
        )
    )
    page.status_code = status
    return page
