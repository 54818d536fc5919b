"""The provider over the wire: discovery (fetched once), the JWKS cache, and the token endpoint calls."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import requests
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


class ProviderError(Exception):
    """The provider could not be reached or answered something unusable."""


class TokenEndpointError(Exception):
    """An OAuth error response (RFC 6749 §5.2) from the token endpoint."""

    def __init__(self, error: str, description: str | None = None, status: int = 400) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status


class TokenExchangeError(TokenEndpointError):
    """The provider refused a token exchange (RFC 8693 §2.2.2)."""


class Provider:
    """Discovery is read once and kept; the JWKS is kept in memory and fetched again only when a token
    names an unknown `kid` (key rotation), at most once per `jwks_min_refetch_seconds`, so forged kids
    cannot cause a fetch storm."""

    def __init__(
        self,
        issuer: str,
        *,
        client_id: str,
        client_secret: str | None = None,
        timeout: float = 10.0,
        jwks_min_refetch_seconds: float = 30.0,
        http: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self._timeout = timeout
        self._min_refetch = jwks_min_refetch_seconds
        self._http = http or requests.Session()
        self._clock = clock
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self.jwks_fetches = 0

    # -- discovery and keys --------------------------------------------------------------------------

    @property
    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            document = self._get_json(f"{self.issuer}/.well-known/openid-configuration")
            if document.get("issuer") != self.issuer:  # OIDC Discovery §4.3: issuer must match exactly
                raise ProviderError(f"discovery names issuer {document.get('issuer')!r}, not {self.issuer!r}")
            self._metadata = document
        return self._metadata

    def key_for(self, kid: str) -> Key | None:
        """The provider's public key with this kid; an unknown kid refetches the JWKS (rate-limited)."""
        with self._lock:
            key = self._find(kid)
            if key is None and self._clock() - self._fetched_at >= self._min_refetch:
                self._refetch_keys()
                key = self._find(kid)
            return key

    def _find(self, kid: str) -> Key | None:
        if self._keys is None:
            return None
        return next((key for key in self._keys.keys if key.kid == kid), None)

    def _refetch_keys(self) -> None:
        self._fetched_at = self._clock()
        self.jwks_fetches += 1
        try:
            self._keys = KeySet.import_key_set(self._get_json(self.metadata["jwks_uri"]))  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise ProviderError(f"the provider's JWKS is unusable: {exc}") from exc

    # -- endpoints ----------------------------------------------------------------------------------

    def request_token(
        self, form: dict[str, str], error_class: type[TokenEndpointError] = TokenEndpointError
    ) -> dict[str, Any]:
        """POST to the token endpoint with the client's credentials; OAuth errors raise `error_class`."""
        response = self._post(self.metadata["token_endpoint"], form)
        body = self._json_of(response)
        if response.status_code != 200:
            raise error_class(
                str(body.get("error") or "server_error"), body.get("error_description"), response.status_code
            )
        if not body.get("access_token"):
            raise ProviderError("the token response holds no access_token")
        return body

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662 with the client's own credentials: a client learns only about its own tokens."""
        response = self._post(self.metadata["introspection_endpoint"], {"token": token})
        if response.status_code != 200:
            raise ProviderError(f"introspection answered HTTP {response.status_code}")
        return self._json_of(response)

    def userinfo(self, access_token: str) -> dict[str, Any]:
        response = self._http.get(
            self.metadata["userinfo_endpoint"],
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=self._timeout,
        )
        if response.status_code != 200:
            raise ProviderError(f"userinfo answered HTTP {response.status_code}")
        return self._json_of(response)

    def _post(self, url: str, form: dict[str, str]) -> requests.Response:
        headers = {"Accept": "application/json"}
        if self._client_secret:
            # RFC 6749 §2.3.1: client_secret_basic form-encodes both parts before base64
            pair = f"{quote(self.client_id, safe='')}:{quote(self._client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form = {**form, "client_id": self.client_id}  # a public client (PKCE still binds the code)
        try:
            return self._http.post(url, data=form, headers=headers, timeout=self._timeout)
        except requests.RequestException as exc:
            raise ProviderError(f"POST {url} failed: {exc}") from exc

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = self._http.get(url, timeout=self._timeout)
        except requests.RequestException as exc:
            raise ProviderError(f"GET {url} failed: {exc}") from exc
        if response.status_code != 200:
            raise ProviderError(f"GET {url} answered HTTP {response.status_code}")
        return self._json_of(response)

    @staticmethod
    def _json_of(response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ProviderError(f"{response.url} answered HTTP {response.status_code} without a JSON object")
        return body
