"""Parsing and checking an authorization request (OIDC Core §3.1.2.1), one named check at a time."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

from idp.domain.models import Client
from idp.protocol.claims import SUPPORTED_SCOPES, is_resource_scope
from idp.protocol.discovery import PROMPT_VALUES
from idp.protocol.pkce import check_code_challenge

MAX_PARAM_LENGTH = 2048
SINGLE_VALUED = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "login_hint",
    "ui_locales",
    "acr_values",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
)


class AuthorizeError(Exception):
    """An error at the authorization endpoint. Redirectable only once client and redirect_uri are trusted."""

    def __init__(
        self, error: str, description: str, *, redirect_uri: str | None = None, state: str | None = None
    ):
        super().__init__(description)
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri
        self.state = state


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str
    prompt: tuple[str, ...]
    max_age: int | None
    login_hint: str | None
    ui_locales: str | None
    acr_values: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> AuthorizationRequest:
        data = json.loads(raw)
        for name in ("scope", "prompt", "acr_values"):
            data[name] = tuple(data[name])
        return cls(**data)


def read_parameters(params: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """RFC 6749 §3.1: parameters MUST NOT be included more than once; oversized values are refused."""
    values: dict[str, str] = {}
    for name in SINGLE_VALUED:
        given = list(params.get(name, ()))
        if len(given) > 1:
            raise AuthorizeError("invalid_request", f"Parameter '{name}' must not be repeated.")
        if given:
            if len(given[0]) > MAX_PARAM_LENGTH:
                raise AuthorizeError("invalid_request", f"Parameter '{name}' is too long.")
            values[name] = given[0]
    return values


def find_client(values: Mapping[str, str], lookup: Callable[[str], Client | None]) -> Client:
    client_id = values.get("client_id")
    if not client_id:
        raise AuthorizeError("invalid_request", "Missing 'client_id'.")
    client = lookup(client_id)
    if client is None:
        raise AuthorizeError("invalid_client", "The client is unknown or disabled.")
    return client


def check_redirect_uri(values: Mapping[str, str], client: Client) -> str:
    """Exact match against the registered URIs; never redirect to an unregistered one."""
    uri = values.get("redirect_uri")
    if not uri:
        raise AuthorizeError("invalid_request", "Missing 'redirect_uri'.")
    if uri not in client.redirect_uris:
        raise AuthorizeError("invalid_request", "The 'redirect_uri' is not registered for this client.")
    return uri


def build_request(values: Mapping[str, str], client: Client, redirect_uri: str) -> AuthorizationRequest:
    """The checks after which errors go back to the client's redirect_uri (with state and iss)."""
    state = values.get("state")

    def fail(error: str, description: str) -> AuthorizeError:
        return AuthorizeError(error, description, redirect_uri=redirect_uri, state=state)

    if values.get("response_type") != "code" or "code" not in client.response_types:
        raise fail("unsupported_response_type", "Only response_type=code is supported.")
    if values.get("response_mode", "query") != "query":
        raise fail("invalid_request", "Only response_mode=query is supported.")
    scope = tuple(dict.fromkeys(values.get("scope", "").split()))
    if "openid" not in scope:
        raise fail("invalid_scope", "The 'openid' scope is required.")
    unknown = [
        s for s in scope if (s not in SUPPORTED_SCOPES and not is_resource_scope(s)) or s not in client.scope
    ]
    if unknown:
        raise fail("invalid_scope", f"Scope not allowed for this client: {' '.join(unknown)}")
    problem = check_code_challenge(values.get("code_challenge"), values.get("code_challenge_method"))
    if problem:
        raise fail("invalid_request", problem)
    prompt = tuple(dict.fromkeys(values.get("prompt", "").split()))
    if set(prompt) - set(PROMPT_VALUES):
        raise fail("invalid_request", "Unsupported 'prompt' value.")
    if "none" in prompt and len(prompt) > 1:
        raise fail("invalid_request", "prompt=none cannot be combined with other values.")
    max_age: int | None = None
    if "max_age" in values:
        if not values["max_age"].isdigit() or len(values["max_age"]) > 10:
            raise fail("invalid_request", "'max_age' must be a non-negative integer.")
        max_age = int(values["max_age"])
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        state=state,
        nonce=values.get("nonce"),
        code_challenge=values["code_challenge"],
        prompt=prompt,
        max_age=max_age,
        login_hint=values.get("login_hint"),
        ui_locales=values.get("ui_locales"),
        acr_values=tuple(values.get("acr_values", "").split()),
    )
