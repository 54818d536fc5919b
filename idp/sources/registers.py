"""Register sources over HTTP JSON: the population register (人口库) and the enterprise register (法人库).

Any failure (no connection, timeout, an error status, an answer that is not the agreed JSON) is
SourceUnavailable: a verification never succeeds because a register could not be asked.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from idp.sources.base import EntityRecord, SourceUnavailable

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)


class RegisterClient:
    """JSON over HTTP to one register: timeouts, no proxies from the environment, no redirects."""

    def __init__(self, what: str, base_url: str, token: str | None, timeout: float) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"the {what} URL must be http(s)")
        if timeout <= 0:
            raise ValueError(f"the {what} timeout must be positive")
        self.what = what
        self.base_url = base_url.rstrip("/")
        self._token = token or None
        self._timeout = timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """(status, parsed JSON) for a 2xx or 404 answer; SourceUnavailable for anything else."""
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        import requests  # here, not at the top: 5 MiB per worker that only verifications use

        # A new session per call: thread-safe, and trust_env=False keeps HTTP(S)_PROXY and .netrc out.
        with requests.Session() as session:
            session.trust_env = False
            try:
                response = session.request(
                    method,
                    self.base_url + path,
                    json=body,
                    headers=headers,
                    timeout=(self._timeout, self._timeout),  # connect, then each read
                    allow_redirects=False,
                )
            except requests.Timeout:
                raise self.unavailable(f"no answer within {self._timeout:g} s") from None
            except requests.ConnectionError as exc:
                raise self.unavailable(f"cannot connect ({_reason(exc)})") from None
            except requests.RequestException as exc:
                raise self.unavailable(type(exc).__name__) from None
        if response.status_code == 404:
            return 404, None
        if not 200 <= response.status_code < 300:
            raise self.unavailable(f"it answered HTTP {response.status_code}{_error_detail(response)}")
        try:
            return response.status_code, response.json()
        except ValueError:
            raise self.unavailable("its answer is not JSON") from None

    def unavailable(self, detail: str) -> SourceUnavailable:
        log.warning("%s at %s unavailable: %s", self.what, self.base_url, detail)
        return SourceUnavailable(f"the {self.what} is unavailable: {detail}")


class PopulationRegister:
    """Real-name verification (实名核验): does the population register hold this name with this number?"""

    name = "population_register"

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 3.0) -> None:
        self._client = RegisterClient("population register", base_url, token, timeout)

    def verify_real_name(self, name: str, id_number: str) -> bool:
        status, answer = self._client.call(
            "POST", "/v1/persons/verify", {"name": name, "id_number": id_number}
        )
        if status == 404 or not isinstance(answer, dict) or not isinstance(answer.get("match"), bool):
            raise self._client.unavailable('its answer has no boolean "match"')
        return answer["match"] is True


class EnterpriseRegister:
    """Legal-entity lookup by unified social credit code: name, type, status, legal representative."""

    name = "enterprise_register"

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 3.0) -> None:
        self._client = RegisterClient("enterprise register", base_url, token, timeout)

    def lookup_entity(self, uscc: str) -> EntityRecord | None:
        status, answer = self._client.call("GET", "/v1/entities/" + quote(uscc.strip(), safe=""))
        if status == 404:
            return None
        record = _entity_record(answer)
        if record is None:
            raise self._client.unavailable("its answer is not an entity record")
        if record.uscc != uscc.strip().upper():
            raise self._client.unavailable("it answered with another entity's record")
        return record


def _entity_record(answer: Any) -> EntityRecord | None:
    """The record if `answer` has every field as a non-empty string, else None."""
    if not isinstance(answer, dict):
        return None
    representative = answer.get("legal_representative")
    if not isinstance(representative, dict):
        return None
    values = [
        answer.get("uscc"),
        answer.get("name"),
        answer.get("entity_type"),
        answer.get("status"),
        representative.get("name"),
        representative.get("id_number"),
    ]
    if not all(isinstance(v, str) and v.strip() for v in values):
        return None
    uscc, name, entity_type, status, rep_name, rep_id_number = (str(v).strip() for v in values)
    return EntityRecord(
        uscc=uscc.upper(),
        name=name,
        entity_type=entity_type,
        status=status,
        legal_representative_name=rep_name,
        legal_representative_id_number=rep_id_number.upper(),
    )


def _reason(exc: requests.ConnectionError) -> str:
    """A short reason ("Connection refused") instead of urllib3's nested repr."""
    text = str(exc)
    for reason in ("Connection refused", "Name or service not known", "No route to host", "reset by peer"):
        if reason in text:
            return reason.lower()
    return type(exc).__name__


def _error_detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and isinstance(body.get("error_description"), str):
        return f": {body['error_description'][:200]}"
    return ""
