"""The other services over the wire: the item from the catalogue, the applicant's e-certificates from the
certificate service through token exchange (RFC 8693), each verified before it is attached (Art. 7, 11)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests

from adapters.cases.applicants import Applicant
from adapters.rp_kit import ProviderError, RelyingParty, TokenExchangeError

READ_SCOPE = "certificates:read"


class UpstreamUnavailable(Exception):
    """A service the case depends on failed or could not be reached (HTTP 502); nothing was written."""

    def __init__(self, service: str, description: str, label: str, error: str = "bad_gateway") -> None:
        super().__init__(f"{service}: {description}")
        self.service, self.description, self.label, self.error = service, description, label, error


class ItemNotFound(Exception):
    """The catalogue has no active item with this code (HTTP 404)."""


@dataclass(frozen=True)
class RequiredMaterial:
    name: str
    required: bool
    licence_type: str | None  # set: an e-certificate the service fetches instead of an upload


@dataclass(frozen=True)
class Item:
    """What the case needs from the catalogue's item (事项)."""

    code: str
    name: str
    department: str
    committed_limit_days: int
    materials: tuple[RequiredMaterial, ...]

    @property
    def certificates(self) -> tuple[RequiredMaterial, ...]:
        return tuple(m for m in self.materials if m.licence_type)


@dataclass(frozen=True)
class AttachedLicence:
    material: str
    licence_type: str
    licence_id: str
    number: str
    type_name: str
    issuer: str
    issuer_name: str | None
    verification: dict[str, Any]


@dataclass(frozen=True)
class Gathered:
    """The e-certificates attached, and one line per required one that could not be (a correction)."""

    attached: tuple[AttachedLicence, ...]
    missing: tuple[str, ...]


class CatalogueClient:
    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url, self.timeout = base_url, timeout

    def fetch_item(self, code: str) -> Item:
        label = "事项目录服务暂时无法访问，请稍后再试。"
        try:
            response = requests.get(f"{self.base_url}/api/items/{quote(code, safe='')}", timeout=self.timeout)
        except requests.RequestException as exc:
            raise UpstreamUnavailable("catalogue", f"unreachable: {type(exc).__name__}", label) from None
        if response.status_code in (400, 404):
            raise ItemNotFound(code)
        body = json_of(response, "catalogue", label)
        try:
            if body.get("status", "active") != "active":
                raise ItemNotFound(code)
            materials = tuple(
                RequiredMaterial(
                    str(m["name"]),
                    bool(m.get("required", True)),
                    str(m["licence_type"]) if m.get("licence_type") else None,
                )
                for m in body.get("materials", [])
            )
            return Item(
                str(body["code"]),
                str(body["name"]),
                str(body.get("department") or ""),
                int(body["committed_limit_days"]),
                materials,
            )
        except (KeyError, TypeError, ValueError):
            raise UpstreamUnavailable("catalogue", "the item is malformed", label) from None


class CertificateClient:
    """Reads the applicant's licences with an exchanged token meant for the certificate service only."""

    def __init__(self, rp: RelyingParty, base_url: str, audience: str, timeout: float) -> None:
        self.rp, self.base_url, self.audience, self.timeout = rp, base_url, audience, timeout

    def gather(self, item: Item, subject_token: str | None, applicant: Applicant) -> Gathered:
        wanted = item.certificates
        if not wanted:
            return Gathered((), ())
        licences, problem = self._licences(subject_token)
        attached: list[AttachedLicence] = []
        missing: list[str] = []
        for material in wanted:
            assert material.licence_type is not None
            found, why = (None, problem) if problem else self._pick(material, licences, applicant)
            if found:
                attached.append(found)
            elif material.required:
                missing.append(f"{material.name}（电子证照 {material.licence_type}）：{why}")
        return Gathered(tuple(attached), tuple(missing))

    def _licences(self, subject_token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """The applicant's licences, or a reason they cannot be read that the applicant can fix."""
        if not subject_token:
            return [], "登录会话中没有可用于读取电子证照的访问令牌，请重新登录"
        label = "无法读取您的电子证照：统一身份认证平台暂时无法访问，请稍后再试。"
        try:
            token = self.rp.exchange_token(subject_token, audience=self.audience, scope=READ_SCOPE)
        except TokenExchangeError as exc:
            raise UpstreamUnavailable(
                "provider",
                f"token exchange refused: {exc}",
                f"统一身份认证平台未允许本服务代您读取电子证照（{exc.error}），请重新登录并同意读取证照后再试。",
                error="token_exchange_refused",
            ) from None
        except ProviderError as exc:
            raise UpstreamUnavailable("provider", str(exc), label) from None
        body = self._call("GET", "/api/licences", token=str(token["access_token"]))
        if body is None:
            return [], "经办人未获授权读取本单位的电子证照（需 certificates:read 权限）"
        licences = body.get("licences")
        return (licences if isinstance(licences, list) else []), None

    def _pick(
        self, material: RequiredMaterial, licences: list[dict[str, Any]], applicant: Applicant
    ) -> tuple[AttachedLicence | None, str]:
        """The first licence of the type that is valid and verifies; else why none could be attached."""
        why = "未查到该类型的电子证照，请向发证机关申领后补正"
        for licence in licences:
            if not isinstance(licence, dict) or licence.get("type") != material.licence_type:
                continue
            if applicant.kind == "entity" and licence.get("holder_id") != applicant.id:
                continue
            if licence.get("status") != "valid":
                why = f"电子证照 {licence.get('number')} 状态为{STATUS_WORDS.get(str(licence.get('status')), '无效')}"
                continue
            verdict = self._call("POST", "/api/verify", json={"licence": licence.get("signature") or ""})
            if not verdict or verdict.get("valid") is not True:
                problems = "; ".join(str(p) for p in (verdict or {}).get("problems", []))
                why = f"电子证照 {licence.get('number')} 未通过核验（{problems or '签名无效'}）"
                continue
            verification: dict[str, Any] = {
                "valid": True,
                "status": verdict.get("status"),
                "problems": [],
                "verified_at": datetime.now(UTC).isoformat(),
            }
            return (
                AttachedLicence(
                    material.name,
                    str(material.licence_type),
                    str(licence["id"]),
                    str(licence.get("number") or ""),
                    str(licence.get("type_name") or material.licence_type),
                    str(licence.get("issuer") or ""),
                    licence.get("issuer_name"),
                    verification,
                ),
                "",
            )
        return None, why

    def _call(
        self, method: str, path: str, *, token: str | None = None, json: Any = None
    ) -> dict[str, Any] | None:
        """The JSON answer; None for a 403 (the holder's grant does not reach); 502 for anything else."""
        label = "电子证照服务暂时无法访问，请稍后再试。"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = requests.request(
                method, f"{self.base_url}{path}", headers=headers, json=json, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise UpstreamUnavailable("certificates", f"unreachable: {type(exc).__name__}", label) from None
        if response.status_code == 403:
            return None
        return json_of(response, "certificates", label)


STATUS_WORDS = {"revoked": "已撤销", "expired": "已过期"}


def json_of(response: requests.Response, service: str, label: str) -> dict[str, Any]:
    if response.status_code != 200:
        raise UpstreamUnavailable(service, f"answered HTTP {response.status_code}", label)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise UpstreamUnavailable(service, "answered something that is not a JSON object", label)
    return body
