"""`seed(app, data)`: departments and licences for the demo, idempotent (existing ones are kept)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from sqlalchemy import select

from adapters.certificates.licences import LicenceError, check_issuer_code, issue_licence
from adapters.certificates.models import Issuer, Licence


def seed(app: Flask, data: Mapping[str, Any]) -> dict[str, int]:
    """`{"issuers": [{"code", "name"}], "licences": [{"issuer", "licence_type", "number", ...}]}`;
    returns how many of each were added. A licence that does not validate raises LicenceError."""
    db = app.extensions["certificates"].db
    added = {"issuers": 0, "licences": 0}
    with db.transaction() as session:
        for item in data.get("issuers", []):
            code = check_issuer_code(str(item["code"]))
            issuer = session.get(Issuer, code)
            if issuer is None:
                session.add(Issuer(code=code, name=str(item["name"])[:100]))
                added["issuers"] += 1
            else:
                issuer.name = str(item["name"])[:100]
        session.flush()
        for item in data.get("licences", []):
            exists = session.scalar(
                select(Licence.id).where(
                    Licence.licence_type == item.get("licence_type"), Licence.number == item.get("number")
                )
            )
            if exists:
                continue
            if "issuer" not in item:
                raise LicenceError(400, "invalid_request", "each seeded licence names its issuer")
            issue_licence(session, str(item["issuer"]), dict(item))
            added["licences"] += 1
    return added
