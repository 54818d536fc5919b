"""Departments' seals: ES256 keys made on first use, the public JWKS, and the JWS over a licence."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from adapters.certificates.models import Issuer, IssuerKey, Licence
from adapters.certificates.sealing import KeySealer, is_sealed

ALG = "ES256"
LICENCE_TYP = "licence+jws"  # RFC 7515 §4.1.9: what the signed object is


class SignatureProblem(Exception):
    """The licence's signature cannot be trusted; the message says why (safe to show anyone)."""


def canonical_metadata(licence: Licence) -> dict[str, Any]:
    """What the department signs: the fields that make the licence what it is, nothing mutable."""
    return {
        "id": licence.id,
        "type": licence.licence_type,
        "number": licence.number,
        "holder_type": licence.holder_type,
        "holder_id": licence.holder_id,
        "holder_name": licence.holder_name,
        "issuer": licence.issuer_code,
        "valid_from": licence.valid_from.isoformat(),
        "valid_until": licence.valid_until.isoformat() if licence.valid_until else None,
    }


def canonical_bytes(metadata: dict[str, Any]) -> bytes:
    """One byte string per metadata: sorted keys, no spaces, UTF-8 (Chinese names stay readable)."""
    return json.dumps(metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_licence(session: Session, licence: Licence) -> str:
    """The compact JWS of the issuing department's current key over the licence's metadata."""
    key_row = current_key(session, licence.issuer_code)
    key = private_key(session, key_row)
    header = {"alg": ALG, "kid": key_row.kid, "typ": LICENCE_TYP}
    return jws.serialize_compact(header, canonical_bytes(canonical_metadata(licence)), key, algorithms=[ALG])


def current_key(session: Session, issuer_code: str) -> IssuerKey:
    """The department's signing key, generated on first use. Two nodes racing both insert a key, but
    only one `UPDATE ... WHERE current_kid IS NULL` wins; the loser's key is retired unused."""
    issuer = session.get(Issuer, issuer_code)
    if issuer is None:
        raise LookupError(f"no issuing department {issuer_code!r}")
    if issuer.current_kid is None:
        candidate = _new_key(session, issuer_code)
        won = session.execute(
            update(Issuer)
            .where(Issuer.code == issuer_code, Issuer.current_kid.is_(None))
            .values(current_kid=candidate.kid)
            .execution_options(synchronize_session=False)
        )
        if not won.rowcount:  # type: ignore[attr-defined]
            candidate.retired_at = datetime.now(UTC)
        session.refresh(issuer)
    key = session.get(IssuerKey, issuer.current_kid)
    if key is None:
        raise LookupError(f"the key {issuer.current_kid!r} of {issuer_code!r} is missing")
    return key


def rotate_key(session: Session, issuer_code: str) -> IssuerKey:
    """A new current key for the department; the old one is retired but stays published."""
    issuer = session.get(Issuer, issuer_code)
    if issuer is None:
        raise LookupError(f"no issuing department {issuer_code!r}")
    if issuer.current_kid and (old := session.get(IssuerKey, issuer.current_kid)) is not None:
        old.retired_at = datetime.now(UTC)
    key = _new_key(session, issuer_code)
    issuer.current_kid = key.kid
    session.flush()
    return key


def _sealer(session: Session) -> KeySealer:
    return session.info["key_sealer"]  # type: ignore[no-any-return]  # Database's sessionmaker sets it


def private_key(session: Session, row: IssuerKey) -> ECKey:
    return ECKey.import_key(json.loads(_sealer(session).open(row.kid, row.private_jwk)))


def prepare_keys(session: Session) -> int:
    """At start: seal the private keys that rows written before sealing existed hold in plain form,
    and check that every sealed one opens under this KEK (a wrong CERTS_KEK stops the start with a
    clear SealingError, not a failure at the first licence). Returns how many were sealed."""
    sealer, sealed = _sealer(session), 0
    for row in session.scalars(select(IssuerKey)):
        if is_sealed(row.private_jwk):
            sealer.open(row.kid, row.private_jwk)
        else:
            row.private_jwk = sealer.seal(row.kid, row.private_jwk)
            sealed += 1
    return sealed


def _new_key(session: Session, issuer_code: str) -> IssuerKey:
    key = ECKey.generate_key("P-256", private=True)
    kid = f"{issuer_code}.{key.thumbprint()[:16]}"  # kid per department: who signed is visible at a glance
    row = IssuerKey(
        kid=kid,
        issuer_code=issuer_code,
        private_jwk=_sealer(session).seal(kid, json.dumps(key.as_dict(private=True))),
        created_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    return row


def public_jwks(session: Session) -> dict[str, Any]:
    """Every department key ever used, public parts only (RFC 7517 §5)."""
    keys = []
    for row in session.scalars(select(IssuerKey).order_by(IssuerKey.issuer_code, IssuerKey.created_at)):
        public = private_key(session, row).as_dict(private=False)
        keys.append({**public, "kid": row.kid, "alg": ALG, "use": "sig"})
    return {"keys": keys}


def verify_signature(session: Session, value: str) -> dict[str, Any]:
    """The signed metadata of a licence JWS, once the header, the department key and the signature are
    checked. Raises SignatureProblem."""
    try:
        header = dict(jws.extract_compact(value.encode()).headers())
    except (JoseError, ValueError, UnicodeError):
        raise SignatureProblem("this is not a signed licence (compact JWS)") from None
    if header.get("alg") != ALG:
        raise SignatureProblem(f"the signature algorithm {str(header.get('alg'))[:20]!r} is not accepted")
    kid = header.get("kid")
    row = session.get(IssuerKey, kid) if isinstance(kid, str) and len(kid) <= 64 else None
    if row is None:
        raise SignatureProblem("the licence is signed with a key no department publishes")
    public = private_key(session, row).as_dict(private=False)
    try:
        payload = jws.deserialize_compact(value, ECKey.import_key(public), algorithms=[ALG]).payload
        metadata = json.loads(payload)
    except (JoseError, ValueError, UnicodeError):
        raise SignatureProblem("the department's signature does not match the licence") from None
    if not isinstance(metadata, dict) or metadata.get("issuer") != row.issuer_code:
        raise SignatureProblem("the licence names another department than the one whose key signed it")
    return metadata
