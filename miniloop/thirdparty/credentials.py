"""Third-party credentials: the challenge a consent's credential signs, and the checks of GENERIC
(ECDSA P-256) and FIDO (WebAuthn) credentials and of the challenges they sign.

Pure functions with no I/O, so the auth-service (miniloop.services.auth_service), simulated PISPs
and tests all use the same rules. Every failure is a `CredentialError` whose message says what
was wrong in a sentence safe to log or publish: it never holds a key, a signature or a challenge.

The challenge of a consent, as Mojaloop's auth-service derives it (`deriveChallenge`):

    challenge = base64( hex( SHA-256( RFC8785( {"consentId": ID, "scopes": [{"address", "actions"}, ...]} ))))

a string: the standard base64 encoding of the 64 lowercase hex digits of the SHA-256 of the
RFC 8785 (JCS) canonical JSON of the consent id and its scopes, each scope cut down to its
address and actions. A challenge always stands for the bytes it encodes (`challenge_bytes`):

- FIDO: the WebAuthn challenge is those bytes, so `clientDataJSON.challenge` (base64url) must
  decode to them, as Mojaloop's fido2-lib expectation `challenge` requires. The same holds for
  the challenge of `POST /thirdpartyRequests/verifications`, which the spec calls "base64 encoded
  bytes".
- GENERIC: the signature is ECDSA P-256 with SHA-256 over the UTF-8 bytes of the challenge
  string itself (the Third-party API's "sign(SHA256(challenge))", and Mojaloop's
  `verifySignature`: `createVerify('SHA256').update(challenge)`), DER-encoded (a raw 64-byte
  r||s, as WebCrypto makes, is accepted too), in base64url. The public key is the base64url
  DER SubjectPublicKeyInfo of a P-256 key (a raw 65-byte uncompressed point is accepted too).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from fido2 import cbor
from fido2.attestation import Attestation
from fido2.attestation.base import InvalidAttestation
from fido2.cose import CoseKey, UnsupportedKey
from fido2.webauthn import AttestationObject, AuthenticatorData, CollectedClientData

SCOPES_MAX = 256  # the API's limits on a consent
ACTIONS_MAX = 32
ADDRESS_MAX = 1023
CHALLENGE_TEXT_MAX = 1024  # a verification's challenge, as text (base64 of at most 768 bytes)
PUBLIC_KEY_BYTES_MAX = 256  # a P-256 SubjectPublicKeyInfo is 91 bytes
SIGNATURE_BYTES_MAX = 256  # a DER P-256 signature is at most 72 bytes
FIDO_FIELD_BYTES_MAX = 2048  # the largest FIDO field the API allows is 2048 base64 characters
COUNTER_MAX = 2**32 - 1

_BASE64 = re.compile(r"\A[A-Za-z0-9+/_-]*={0,2}\Z")
_JCS_DEPTH_MAX = 16
_JS_SAFE_INTEGER = 2**53 - 1


class CredentialError(ValueError):
    """A credential, signature or challenge that does not verify; the message says why."""


# --------------------------------------------------------------------------- the challenge


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) canonical JSON of strings, integers, booleans, None, lists and dicts.

    Members sorted by the UTF-16 code units of their names, no whitespace, strings escaped as
    ECMAScript's JSON.stringify does. Floats are refused (nothing the auth-service hashes has one)
    and so are integers beyond 2^53, which JSON.stringify cannot write exactly.
    """
    out: list[str] = []
    _jcs(value, out, 0)
    return "".join(out).encode("utf-8")


def _jcs(value: Any, out: list[str], depth: int) -> None:
    if depth > _JCS_DEPTH_MAX:
        raise ValueError("the value is nested too deeply to canonicalise")
    if value is None:
        out.append("null")
    elif value is True or value is False:
        out.append("true" if value else "false")
    elif isinstance(value, str):
        out.append(_jcs_string(value))
    elif isinstance(value, int):
        if abs(value) > _JS_SAFE_INTEGER:
            raise ValueError("an integer beyond 2^53 has no exact canonical form")
        out.append(str(value))
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _jcs(item, out, depth + 1)
        out.append("]")
    elif isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise ValueError("object member names must be strings")
        out.append("{")
        for index, key in enumerate(sorted(value, key=lambda k: k.encode("utf-16-be", "surrogatepass"))):
            if index:
                out.append(",")
            out.append(_jcs_string(key))
            out.append(":")
            _jcs(value[key], out, depth + 1)
        out.append("}")
    else:
        raise ValueError(f"{type(value).__name__} has no canonical JSON form here")


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _jcs_string(text: str) -> str:
    parts = ['"']
    for char in text:
        code = ord(char)
        if char in _SHORT_ESCAPES:
            parts.append(_SHORT_ESCAPES[char])
        elif code < 0x20 or 0xD800 <= code <= 0xDFFF:  # control characters; lone surrogates
            parts.append(f"\\u{code:04x}")
        else:
            parts.append(char)
    parts.append('"')
    return "".join(parts)


def derive_challenge(consent_id: str, scopes: Sequence[Mapping[str, Any]]) -> str:
    """The challenge a consent's credential signs at registration (see the module docstring)."""
    if not isinstance(consent_id, str) or not consent_id:
        raise ValueError("consentId must be a non-empty string")
    if not 1 <= len(scopes) <= SCOPES_MAX:
        raise ValueError(f"a consent has 1 to {SCOPES_MAX} scopes")
    cut = []
    for scope in scopes:
        address, actions = scope.get("address"), scope.get("actions")
        if not isinstance(address, str) or not 1 <= len(address) <= ADDRESS_MAX:
            raise ValueError(f"a scope's address is 1 to {ADDRESS_MAX} characters")
        if not isinstance(actions, (list, tuple)) or not 1 <= len(actions) <= ACTIONS_MAX:
            raise ValueError(f"a scope has 1 to {ACTIONS_MAX} actions")
        cut.append({"address": address, "actions": list(actions)})
    digest = hashlib.sha256(canonical_json({"consentId": consent_id, "scopes": cut})).hexdigest()
    challenge = base64.b64encode(digest.encode("ascii")).decode("ascii")
    assert len(challenge) == 88, challenge  # 64 hex digits, base64: always 88 characters
    return challenge


def challenge_bytes(challenge: str) -> bytes:
    """The bytes a challenge string stands for: its base64 (or base64url) decoding."""
    if not isinstance(challenge, str) or not 1 <= len(challenge) <= CHALLENGE_TEXT_MAX:
        raise CredentialError(f"the challenge must be 1 to {CHALLENGE_TEXT_MAX} characters of base64")
    return _b64decode(challenge, "challenge", CHALLENGE_TEXT_MAX)


def _b64decode(text: str, field: str, max_bytes: int) -> bytes:
    """Standard or URL-safe base64, padded or not (Node's Buffer.from(.., 'base64') takes both)."""
    if not isinstance(text, str) or not text or not _BASE64.match(text):
        raise CredentialError(f"{field} is not base64")
    if len(text) > (max_bytes * 4) // 3 + 4:
        raise CredentialError(f"{field} is longer than {max_bytes} bytes")
    core = text.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        decoded = base64.b64decode(core + "=" * (-len(core) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise CredentialError(f"{field} is not base64") from None
    if not decoded:
        raise CredentialError(f"{field} is empty")
    return decoded


def b64url(data: bytes) -> str:
    """base64url with padding: the API's BinaryString."""
    return base64.urlsafe_b64encode(data).decode("ascii")


# --------------------------------------------------------------------------- GENERIC credentials


def generic_public_key(text: str) -> bytes:
    """The DER SubjectPublicKeyInfo of a GENERIC credential's `publicKey`; P-256 keys only."""
    raw = _b64decode(text, "publicKey", PUBLIC_KEY_BYTES_MAX)
    try:
        if len(raw) == 65 and raw[0] == 4:
            key: Any = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        else:
            key = serialization.load_der_public_key(raw)
    except (ValueError, TypeError):
        raise CredentialError("publicKey is not a DER SubjectPublicKeyInfo or an uncompressed P-256 point") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CredentialError("publicKey must be an ECDSA P-256 key")
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def verify_generic(public_key_der: bytes, challenge: str, signature: str) -> None:
    """Check a GENERIC signature: ECDSA P-256 / SHA-256 over the UTF-8 challenge string."""
    if not isinstance(challenge, str) or not 1 <= len(challenge) <= CHALLENGE_TEXT_MAX:
        raise CredentialError(f"the challenge must be 1 to {CHALLENGE_TEXT_MAX} characters")
    key = serialization.load_der_public_key(public_key_der)
    assert isinstance(key, ec.EllipticCurvePublicKey)  # generic_public_key made it
    raw = _b64decode(signature, "signature", SIGNATURE_BYTES_MAX)
    try:
        decode_dss_signature(raw)
        der = raw
    except ValueError:
        if len(raw) != 64:
            raise CredentialError("the signature is neither DER nor a raw 64-byte r||s") from None
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        key.verify(der, challenge.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise CredentialError("the signature does not verify with the consent's public key") from None


def sign_generic(private_key: ec.EllipticCurvePrivateKey, challenge: str) -> str:
    """A GENERIC signature of `challenge` (base64url DER): what a PISP sends. For simulators and tests."""
    return b64url(private_key.sign(challenge.encode("utf-8"), ec.ECDSA(hashes.SHA256())))


def generic_public_key_text(private_key: ec.EllipticCurvePrivateKey) -> str:
    """A GENERIC credential's `publicKey` (base64url DER SubjectPublicKeyInfo). For simulators and tests."""
    return b64url(private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


# --------------------------------------------------------------------------- FIDO credentials


@dataclass(frozen=True, slots=True)
class FidoCredential:
    """What the auth-service keeps of a registered WebAuthn credential."""

    credential_id: bytes
    public_key: bytes  # the COSE_Key, CBOR-encoded, as the authenticator gave it
    counter: int
    origin: str  # of the registration's clientDataJSON (kept for the record, as Mojaloop does)


def verify_fido_attestation(*, credential_id: str, raw_id: str | None, client_data_json: str,
                            attestation_object: str, challenge: str) -> FidoCredential:
    """Check a WebAuthn registration (`fidoPayload`) against the consent's derived challenge.

    As Mojaloop's auth-service (fido2-lib, factor "either") does: the client data is a
    `webauthn.create` for this challenge; the origin is taken from the client data and the RP ID
    hash must be the SHA-256 of its host; the user was present; the attestation statement
    verifies (none, packed, fido-u2f, tpm, android-safetynet, apple; no trust anchors are checked,
    there is no metadata service); the credential id is the one the payload names.
    """
    client_data = _client_data(client_data_json, "webauthn.create", challenge)
    try:
        attestation = AttestationObject(_b64decode(attestation_object, "attestationObject", FIDO_FIELD_BYTES_MAX))
    except CredentialError:
        raise
    except Exception:  # CBOR or structure: whatever the parser meets
        raise CredentialError("attestationObject is not a WebAuthn attestation object") from None
    auth_data = attestation.auth_data
    _check_authenticator_data(auth_data, client_data.origin)
    if auth_data.credential_data is None:
        raise CredentialError("the attestation holds no attested credential data")
    _check_credential_id(auth_data.credential_data.credential_id, credential_id, raw_id)
    key = auth_data.credential_data.public_key
    if isinstance(key, UnsupportedKey):
        raise CredentialError("the credential's public key algorithm is not supported")
    fmt = str(attestation.fmt)[:24]
    try:
        Attestation.for_type(attestation.fmt)().verify(attestation.att_stmt, auth_data, client_data.hash)
    except InvalidAttestation as exc:
        raise CredentialError(f"the {fmt!r} attestation does not verify: {_short(exc)}") from None
    except Exception:
        raise CredentialError(f"the {fmt!r} attestation statement is malformed") from None
    return FidoCredential(auth_data.credential_data.credential_id, cbor.encode(dict(key)), auth_data.counter,
                          client_data.origin)


def verify_fido_assertion(*, credential_id: str, raw_id: str | None, authenticator_data: str,
                          client_data_json: str, signature: str, challenge: str,
                          registered_id: bytes, public_key: bytes, counter: int) -> int:
    """Check a WebAuthn assertion (`fidoSignedPayload`) by the registered credential; return the
    authenticator's new signature counter.

    The client data is a `webauthn.get` for this challenge; the RP ID hash is the SHA-256 of its
    origin's host; the user was present; the credential is the registered one; the signature over
    authenticatorData || SHA-256(clientDataJSON) verifies with its public key; and the counter
    went up (unless the authenticator keeps none: 0 then and at registration).
    """
    client_data = _client_data(client_data_json, "webauthn.get", challenge)
    try:
        auth_data = AuthenticatorData(_b64decode(authenticator_data, "authenticatorData", FIDO_FIELD_BYTES_MAX))
    except CredentialError:
        raise
    except Exception:
        raise CredentialError("authenticatorData is not WebAuthn authenticator data") from None
    _check_authenticator_data(auth_data, client_data.origin)
    _check_credential_id(registered_id, credential_id, raw_id)
    sig = _b64decode(signature, "signature", SIGNATURE_BYTES_MAX * 4)
    try:
        CoseKey.parse(cbor.decode(public_key)).verify(bytes(auth_data) + client_data.hash, sig)
    except InvalidSignature:
        raise CredentialError("the assertion's signature does not verify with the consent's public key") from None
    except Exception:
        raise CredentialError("the assertion's signature is malformed") from None
    if (auth_data.counter or counter) and auth_data.counter <= counter:
        raise CredentialError("the authenticator's signature counter did not increase (a cloned authenticator?)")
    return int(auth_data.counter)


def _client_data(text: str, kind: str, challenge: str) -> CollectedClientData:
    try:
        client_data = CollectedClientData(_b64decode(text, "clientDataJSON", FIDO_FIELD_BYTES_MAX))
    except CredentialError:
        raise
    except Exception:
        raise CredentialError("clientDataJSON is not WebAuthn client data") from None
    if client_data.type != kind:
        raise CredentialError(f"clientDataJSON.type must be {kind!r}")
    expected = challenge_bytes(challenge)
    if len(client_data.challenge) != len(expected) or not _equal(client_data.challenge, expected):
        raise CredentialError("clientDataJSON.challenge is not the expected challenge")
    origin = client_data.origin
    if not isinstance(origin, str) or not _host_of(origin):
        raise CredentialError("clientDataJSON.origin must be an http(s) origin")
    return client_data


def _check_authenticator_data(auth_data: AuthenticatorData, origin: str) -> None:
    if not _equal(auth_data.rp_id_hash, hashlib.sha256(_host_of(origin).encode("utf-8")).digest()):
        raise CredentialError("the RP ID hash is not the SHA-256 of the origin's host")
    if not auth_data.is_user_present():
        raise CredentialError("the User Present flag is not set")


def _check_credential_id(registered: bytes, credential_id: str, raw_id: str | None) -> None:
    for field, text in (("id", credential_id), ("rawId", raw_id)):
        if text is not None and not _equal(_b64decode(text, field, FIDO_FIELD_BYTES_MAX), registered):
            raise CredentialError(f"{field} is not the credential's id")


def _host_of(origin: str) -> str:
    try:
        parts = urlsplit(origin)
    except ValueError:
        return ""
    if parts.scheme not in ("https", "http"):
        return ""
    return parts.hostname or ""


def _equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(bytes(a), bytes(b))


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 80 else text[:79] + "…"
