"""Resource scopes, `<service>:<permission>` (e.g. certificates:read): a permission at another service."""

from __future__ import annotations

import re

# Requested at login by a client registered for it and consented to by the person, carried to the
# service by token exchange (RFC 8693), or granted to a service account for another service by client
# credentials with `audience`. admin:* scopes are never requested or granted this way.
RESOURCE_SCOPE = re.compile(r"[a-z][a-z0-9_-]{0,63}:[a-z][a-z0-9_.-]{0,63}\Z")


def is_resource_scope(scope: str) -> bool:
    return RESOURCE_SCOPE.match(scope) is not None and not scope.startswith("admin:")
