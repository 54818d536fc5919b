"""The LDAP source: persons in a directory (OpenLDAP, Active Directory), searched then bound as (ldap3)."""

from __future__ import annotations

import logging
import math
import ssl
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from ldap3 import NONE, SIMPLE, SUBTREE, Connection, Server, Tls
from ldap3.utils.conv import escape_filter_chars

from idp.sources.base import SourcePerson, SourceUnavailable

log = logging.getLogger(__name__)

DEFAULT_USER_FILTER = "(|(uid={identifier})(mobile={identifier})(employeeNumber={identifier}))"

# LDAP attribute -> SourcePerson field.
DEFAULT_ATTRIBUTES: Mapping[str, str] = {
    "uid": "username",
    "cn": "name",
    "mail": "email",
    "mobile": "phone_number",
    "employeeNumber": "id_number",
}

_PERSON_FIELDS = frozenset(f.name for f in fields(SourcePerson)) - {"source", "source_id"}

# Bind results that mean "these credentials do not log in" rather than "the directory is broken".
_REFUSED_BIND_RESULTS = frozenset(
    {
        "invalidCredentials",  # 49: wrong password, or (AD, ppolicy) a locked or expired account
        "inappropriateAuthentication",  # 48: e.g. an entry without a password
        "insufficientAccessRights",  # 50
        "unwillingToPerform",  # 53: e.g. an unauthenticated bind that the server disallows
    }
)


class LdapSource:
    """Authenticates against a directory: search the entry with the service account, then bind as it.

    Each call opens its own connection and closes it: simple, thread-safe, and a directory restart
    costs nothing. Any connection failure, timeout or protocol error is SourceUnavailable: never a login.
    """

    name = "ldap"

    def __init__(
        self,
        url: str,
        base_dn: str,
        bind_dn: str | None,
        bind_password: str | None,
        *,
        user_filter: str = DEFAULT_USER_FILTER,
        attributes: Mapping[str, str] = DEFAULT_ATTRIBUTES,
        id_attribute: str | None = "entryUUID",
        timeout: float = 5.0,
        start_tls: bool = False,
        ca_certs_file: str | None = None,
    ) -> None:
        """`url` is ldap://host:port or ldaps://host:port; `bind_dn=None` searches anonymously.

        `user_filter` holds `{identifier}` where the escaped identifier goes. `attributes` maps LDAP
        attribute names to SourcePerson fields. `id_attribute` is the stable identifier of an entry
        (`entryUUID` in OpenLDAP, `objectGUID` in AD); None uses the DN. TLS (ldaps:// or `start_tls`)
        always verifies the server certificate, against `ca_certs_file` or the system store.
        """
        if "{identifier}" not in user_filter:
            raise ValueError("the LDAP user filter must contain {identifier}")
        unknown = set(attributes.values()) - _PERSON_FIELDS
        if unknown:
            raise ValueError(f"unknown person fields in the LDAP attribute mapping: {sorted(unknown)}")
        if timeout <= 0:
            raise ValueError("the LDAP timeout must be positive")
        self._base_dn = base_dn
        self._bind_dn = bind_dn or None
        self._bind_password = bind_password or None
        self._user_filter = user_filter
        self._attributes = dict(attributes)
        self._id_attribute = id_attribute
        self._timeout = timeout
        self._start_tls = start_tls
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_certs_file)
        self._server = Server(url, get_info=NONE, connect_timeout=timeout, tls=tls)
        self._url = url

    # -- the PersonSource contract ----------------------------------------------------------------

    def authenticate(self, identifier: str, password: str) -> SourcePerson | None:
        # RFC 4513 §5.1.2: a simple bind with a DN and an empty password is an *unauthenticated* bind,
        # which some servers answer with success. An empty password never reaches the directory.
        if not password or not identifier.strip():
            return None
        found = self._find_entry(identifier)
        if found is None:
            return None
        dn, attrs = found
        if not self._bind_as(dn, password):
            return None
        return self._to_person(dn, attrs)

    def lookup(self, identifier: str) -> SourcePerson | None:
        if not identifier.strip():
            return None
        found = self._find_entry(identifier)
        return None if found is None else self._to_person(*found)

    # -- steps ------------------------------------------------------------------------------------

    def _find_entry(self, identifier: str) -> tuple[str, dict[str, Any]] | None:
        """The one entry the identifier names, with the service account; None for zero or several."""
        search_filter = self._user_filter.replace("{identifier}", escape_filter_chars(identifier.strip()))
        wanted = list(self._attributes)
        if self._id_attribute:
            wanted.append(self._id_attribute)
        conn = self._connection(self._bind_dn, self._bind_password)
        try:
            self._open(conn)
            if not conn.bind():
                raise SourceUnavailable(
                    f"the LDAP directory refused the service account ({_result_name(conn)}); "
                    "check the bind DN and password"
                )
            # Size limit 2: enough to tell "exactly one" from "ambiguous" without reading a whole tree.
            conn.search(self._base_dn, search_filter, SUBTREE, attributes=wanted, size_limit=2)
            result = _result_name(conn)
            if result == "noSuchObject":
                raise SourceUnavailable(
                    f"the LDAP base DN {self._base_dn!r} does not exist or the service account cannot read it"
                )
            if result not in ("success", "sizeLimitExceeded"):
                raise SourceUnavailable(f"the LDAP search failed ({result})")
            entries = [r for r in conn.response or [] if r.get("type") == "searchResEntry"]
        except SourceUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the directory is "unavailable", never a login
            raise self._unavailable(exc) from None
        finally:
            _close(conn)
        if len(entries) != 1:
            if len(entries) > 1:
                log.warning("LDAP: an identifier matched several entries; refusing it")
            return None
        return entries[0]["dn"], dict(entries[0].get("attributes") or {})

    def _bind_as(self, dn: str, password: str) -> bool:
        """True if the directory accepts this DN and password; False if it refuses them."""
        conn = self._connection(dn, password)
        try:
            self._open(conn)
            if conn.bind():
                return True
            result = _result_name(conn)
        except SourceUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the directory is "unavailable", never a login
            raise self._unavailable(exc, password) from None
        finally:
            _close(conn)
        if result in _REFUSED_BIND_RESULTS:
            return False
        raise SourceUnavailable(f"the LDAP directory could not check the password ({result})")

    def _to_person(self, dn: str, attrs: dict[str, Any]) -> SourcePerson:
        values: dict[str, str | None] = {}
        for ldap_name, person_field in self._attributes.items():
            values[person_field] = _first_text(_attribute(attrs, ldap_name))
        if values.get("id_number"):
            values["id_number"] = str(values["id_number"]).upper()  # GB 11643: canonical upper-case X
        source_id = dn
        if self._id_attribute:
            found = _first_text(_attribute(attrs, self._id_attribute))
            if not found:
                raise SourceUnavailable(
                    f"the LDAP entry has no {self._id_attribute} attribute; configure the id attribute"
                )
            source_id = found
        return SourcePerson(source=self.name, source_id=source_id, **values)

    # -- connections ------------------------------------------------------------------------------

    def _connection(self, user: str | None, password: str | None) -> Connection:
        return Connection(
            self._server,
            user=user,
            password=password,
            authentication=SIMPLE if user else None,
            auto_bind=False,
            read_only=True,
            # ldap3 2.9 packs the receive timeout as whole seconds (SO_RCVTIMEO); `_open` then sets the
            # socket's own timeout to the exact value, which fires first.
            receive_timeout=max(1, math.ceil(self._timeout)),
            raise_exceptions=False,
            auto_referrals=False,
        )

    def _open(self, conn: Connection) -> None:
        conn.open()
        if conn.socket is not None:
            conn.socket.settimeout(self._timeout)
        if self._start_tls and not conn.start_tls():
            raise SourceUnavailable(f"the LDAP directory refused StartTLS ({_result_name(conn)})")

    def _unavailable(self, exc: Exception, *secrets: str | None) -> SourceUnavailable:
        detail = f"{type(exc).__name__}: {exc}"
        for secret in (self._bind_password, *secrets):
            if secret:
                detail = detail.replace(secret, "***")
        log.warning("LDAP directory %s unavailable: %s", self._url, detail)
        return SourceUnavailable(f"the LDAP directory at {self._url} is unavailable: {detail}")


def _result_name(conn: Connection) -> str:
    result = conn.result or {}
    return str(result.get("description") or result.get("result") or "no answer")


def _attribute(attrs: dict[str, Any], name: str) -> Any:
    """An attribute by name, case-insensitively (LDAP attribute names are case-insensitive)."""
    if name in attrs:
        return attrs[name]
    lowered = name.lower()
    for key, value in attrs.items():
        if key.lower() == lowered:
            return value
    return None


def _first_text(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return value.hex()
    text = str(value).strip()
    return text or None


def _close(conn: Connection) -> None:
    try:
        conn.unbind()
    except Exception:  # noqa: BLE001, S110 - closing a broken connection; the caller has its answer already
        pass
