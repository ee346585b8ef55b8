"""The cryptography of the Third-party API as the simulated PISP and DFSPs use it.

Why apart and thin: the challenges and the GENERIC credential are what the hub's auth-service
("centralAuth") checks, so both sides must derive and sign them the same way. Everything here
comes from the auth-service's own pure helpers, miniloop.thirdparty.credentials, so the
simulators and the verifier cannot drift apart:

- **The consent challenge** (linking, OPERATIONS-APIS §5.1 step 5): `derive_challenge`, the
  standard base64 of the 64 hex digits of SHA-256 over the RFC 8785 canonical JSON of
  `{consentId, scopes}` (88 characters), as Mojaloop's auth-service derives it.
- **The transaction challenge** (§5.2 step 4): the same recipe over the PUT /quotes body:
  base64(hex(SHA-256(RFC8785(quote)))). The DFSP sends it to the PISP in
  POST /thirdpartyRequests/authorizations and to the auth-service in
  POST /thirdpartyRequests/verifications, whose spec calls it "base64 encoded bytes".
- **A GENERIC credential**: an ECDSA P-256 key pair. `publicKey` is the base64url DER
  SubjectPublicKeyInfo; a signature is ECDSA with SHA-256 over the UTF-8 bytes of the challenge
  string, DER-encoded, in base64url.
- **A FIDO credential**: `SoftAuthenticator`, a WebAuthn authenticator in software (packed
  self-attestation, ES256 assertions), whose WebAuthn challenge is the bytes the API's base64
  challenge stands for, as the auth-service expects.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256
from fido2.webauthn import AttestationObject, AttestedCredentialData, AuthenticatorData, CollectedClientData

from miniloop.thirdparty import credentials

CREDENTIAL_ID_BYTES = 64  # base64url: 86 characters, within the API's 59..118


def consent_challenge(consent_id: str, scopes: list[dict[str, Any]]) -> str:
    """The challenge a PISP signs to register a consent's credential."""
    return credentials.derive_challenge(consent_id, scopes)


def quote_challenge(quote: dict[str, Any]) -> str:
    """The challenge of a third-party transaction: base64(hex(SHA-256(CJSON(PUT /quotes body))))."""
    digest = hashlib.sha256(credentials.canonical_json(quote)).hexdigest()
    return base64.b64encode(digest.encode("ascii")).decode("ascii")


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 private key (the PISP keeps it in memory, one per link)."""
    return ec.generate_private_key(ec.SECP256R1())


def public_key_text(key: ec.EllipticCurvePrivateKey) -> str:
    """The GENERIC credential's publicKey: base64url DER SubjectPublicKeyInfo."""
    return credentials.generic_public_key_text(key)


def sign(key: ec.EllipticCurvePrivateKey, challenge: str) -> str:
    """A GENERIC signature: ECDSA-SHA256 over the challenge's UTF-8 bytes, DER, base64url."""
    return credentials.sign_generic(key, challenge)


def verify(public_key: str, challenge: str, signature: str) -> bool:
    """True if `signature` is a good GENERIC signature of `challenge` by `public_key` (for tests)."""
    try:
        credentials.verify_generic(credentials.generic_public_key(public_key), challenge, signature)
    except credentials.CredentialError:
        return False
    return True


# --- FIDO: a software WebAuthn authenticator ----------------------------------------------------


class SoftAuthenticator:
    """A WebAuthn authenticator in software, for a PISP whose links use FIDO credentials.

    Registration is a `packed` self-attestation (the credential's own key signs authData ||
    SHA-256(clientDataJSON)), assertions are ES256 with a signature counter that goes up by one
    each time. The origin is the PISP's web address, and the RP ID its host, as a browser would
    have them; the WebAuthn challenge is the bytes the API's base64 challenge stands for. Binary
    fields are standard base64, `id` base64url, as the Third-party API carries them.
    """

    def __init__(self, origin: str) -> None:
        from urllib.parse import urlsplit

        self.origin = origin
        self.rp_id_hash = hashlib.sha256((urlsplit(origin).hostname or "localhost").encode()).digest()
        self.key = new_key()
        self.credential_id = secrets.token_bytes(CREDENTIAL_ID_BYTES)
        self.counter = 0

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return bytes(CollectedClientData.create(kind, credentials.challenge_bytes(challenge), self.origin))

    def _ids(self) -> dict[str, str]:
        return {"id": base64.urlsafe_b64encode(self.credential_id).decode().rstrip("="),
                "rawId": base64.b64encode(self.credential_id).decode()}

    def register(self, challenge: str) -> dict[str, Any]:
        """The `fidoPayload` of a consent's credential: an attestation of a new key for `challenge`."""
        client_data = self._client_data("webauthn.create", challenge)
        flags = AuthenticatorData.FLAG.UP | AuthenticatorData.FLAG.UV | AuthenticatorData.FLAG.AT
        credential = AttestedCredentialData.create(bytes(16), self.credential_id,
                                                   ES256.from_cryptography_key(self.key.public_key()))
        auth_data = AuthenticatorData.create(self.rp_id_hash, flags, self.counter, credential)
        signature = self.key.sign(bytes(auth_data) + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        attestation = AttestationObject.create("packed", auth_data, {"alg": ES256.ALGORITHM, "sig": signature})
        return {**self._ids(), "response": {"clientDataJSON": base64.b64encode(client_data).decode(),
                                            "attestationObject": base64.b64encode(bytes(attestation)).decode()},
                "type": "public-key"}

    def assert_(self, challenge: str, *, bad: bool = False) -> dict[str, Any]:
        """The `fidoSignedPayload` of an authorization: an assertion over `challenge`.

        `bad` signs other data, so the signature does not verify (what a wrong key would give)."""
        self.counter += 1
        client_data = self._client_data("webauthn.get", challenge)
        auth_data = bytes(AuthenticatorData.create(self.rp_id_hash, AuthenticatorData.FLAG.UP
                                                   | AuthenticatorData.FLAG.UV, self.counter))
        signed = auth_data + hashlib.sha256(client_data + (b"not this" if bad else b"")).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return {**self._ids(), "response": {"authenticatorData": base64.b64encode(auth_data).decode(),
                                            "clientDataJSON": base64.b64encode(client_data).decode(),
                                            "signature": base64.b64encode(signature).decode()},
                "type": "public-key"}
