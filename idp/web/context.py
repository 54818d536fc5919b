"""What the blueprints need from the composition root, kept on `app.extensions["idp"]`."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from idp.domain.assurance import AssuranceLadder
from idp.protocol.server import ProviderServer
from idp.services.provider import ProviderServices
from idp.settings import Settings

SESSION_COOKIE = "idp_session"


@dataclass(frozen=True)
class WebContext:
    settings: Settings
    services: ProviderServices
    server: ProviderServer
    ladder: AssuranceLadder
    discovery: tuple[bytes, str]  # precomputed body and ETag


def web() -> WebContext:
    return current_app.extensions["idp"]  # type: ignore[no-any-return]


def web_of(app: Flask) -> WebContext:
    """The context of an app outside a request (extensions installing themselves)."""
    return app.extensions["idp"]  # type: ignore[no-any-return]
