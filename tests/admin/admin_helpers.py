"""Helpers of the admin tests: admins per role with TOTP, the console sign-in, service-account tokens.

A module of its own (not conftest) so that `from admin_helpers import ...` is unambiguous beside the
other test folders' conftest modules."""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path

import pyotp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "protocol"))

from flows import ISSUER, basic, hidden_inputs  # noqa: E402

from idp.domain.admin import Actor  # noqa: E402
from idp.domain.identifiers import compute_resident_id_check  # noqa: E402

PASSWORD = "admin password 0123"


def resident_id(serial: int) -> str:
    first17 = f"11010519800101{serial:03d}"
    return first17 + compute_resident_id_check(first17)


@dataclass
class AdminUser:
    role: str | None
    person_id: str
    username: str
    password: str
    id_number: str
    totp_secret: str
    recovery_codes: list[str] = field(default_factory=list)

    def actor(self, services, *, auth_time: float | None = None) -> Actor:
        """The service-level actor of this person, authenticated `auth_time` (default: now)."""
        return services.admin.actor_for_person(
            self.person_id,
            auth_time=int(time.time() if auth_time is None else auth_time),
            acr="urn:cn:gov:loa:3",
            address="127.0.0.1",
        )


def make_user(services, username: str, serial: int, role: str | None) -> AdminUser:
    number = resident_id(serial)
    person = services.persons.upsert(
        {"username": username, "password": PASSWORD, "name": f"管理员{serial}", "id_number": number}
    )
    secret = services.mfa.begin_enrolment(person.id).secret
    # the current step: still inside the window if a step boundary passes before the check
    codes = services.mfa.confirm_enrolment(person.id, pyotp.TOTP(secret).now())
    if role is not None:
        services.admin.bootstrap_role(person.id, role, by="test")
    return AdminUser(role, person.id, username, PASSWORD, number, secret, list(codes))


def local(location: str) -> str:
    """The provider's own absolute URLs (the console's callback) as paths, so the test client keeps
    sending the cookies it holds for its default host."""
    return location.removeprefix(ISSUER)


def console_login(client, user: AdminUser, start: str = "/admin/", *, max_steps: int = 12):
    """Drive the browser flow from `start` through the provider's login and second factor (a
    recovery code, so repeated logins never collide on a TOTP time step); returns the last response."""
    response = client.get(start)
    for _ in range(max_steps):
        if response.status_code in (301, 302, 303):
            response = client.get(local(response.headers["Location"]))
            continue
        html = response.get_data(as_text=True)
        form = re.search(r'<form[^>]*action="([^"]*)"', html)
        if response.status_code != 200 or form is None:
            return response
        fields = hidden_inputs(html)
        if 'name="password"' in html and 'name="identifier"' in html:
            fields.update(identifier=user.username, password=user.password)
        elif 'name="code"' in html:
            fields["code"] = user.recovery_codes.pop()
        else:
            return response
        response = client.post(unescape(form.group(1)), data=fields)
    raise AssertionError("too many steps")


def service_account_token(client, services, scope: str, client_id: str = "automation") -> str:
    """An access token for a service account (client credentials) allowed `scope`."""
    secret = "automation-secret-0123456789-0123456789"
    services.clients.register(
        {
            "client_id": client_id,
            "client_name": "Automation",
            "client_secret": secret,
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": scope,
        }
    )
    response = client.post(
        "/token", data={"grant_type": "client_credentials", "scope": scope}, headers=basic(client_id, secret)
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]
