"""The hub-hosted auth-service, participant centralAuth: the credential rules (unit tests of
miniloop.thirdparty.credentials) and the service end to end through a real hub.

End to end, a test DFSP (tests/fspiop_dfsp.py) registers consents with `POST /consents` and asks
for verifications with `POST /thirdpartyRequests/verifications`, both with FSPIOP-Destination
centralAuth through the FSPIOP port; the switch routes them to centralAuth's endpoints, and
centralAuth's answers come back to the DFSP's TP_CB_URL_* endpoints from FSPIOP-Source
centralAuth. The software authenticator below makes real WebAuthn attestations and assertions
with `cryptography` and python-fido2's data structures.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fido2.cose import ES256
from fido2.webauthn import (
    Aaguid,
    AttestationObject,
    AttestedCredentialData,
    AuthenticatorData,
    CollectedClientData,
)
from fspiop_dfsp import watch_events, Received, Scene, TestDfsps, new_id, sync_error
from test_external_oracle import Oracle

from miniloop.fspiop.endpoints import thirdparty_for_base_url
from miniloop.thirdparty import credentials
from miniloop.thirdparty.credentials import CredentialError

CENTRAL_AUTH = "centralAuth"
TP = {"resource": "thirdparty", "version": "1.0"}  # the headers Mojaloop's third-party SDKs send
TP_CONTENT_TYPE = "application/vnd.interoperability.thirdparty+json;version=1.0"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --------------------------------------------------------------------------- a software authenticator


class SoftAuthenticator:
    """A WebAuthn authenticator in software: one P-256 credential, packed self-attestation."""

    def __init__(self, origin: str = "https://pisp.example") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(64)
        self.origin = origin
        self.rp_id_hash = hashlib.sha256(urlsplit(origin).hostname.encode()).digest()
        self.counter = 0

    def attest(self, challenge: str, fmt: str = "packed", *, rp_id_hash: bytes | None = None) -> dict[str, Any]:
        """`navigator.credentials.create` for `challenge`, as the fidoPayload a PISP sends."""
        client_data = CollectedClientData.create(
            type="webauthn.create", challenge=credentials.challenge_bytes(challenge), origin=self.origin)
        credential = AttestedCredentialData.create(
            Aaguid(bytes(16)), self.credential_id, ES256.from_cryptography_key(self.key.public_key()))
        auth_data = AuthenticatorData.create(
            rp_id_hash or self.rp_id_hash, AuthenticatorData.FLAG.UP | AuthenticatorData.FLAG.AT, self.counter,
            credential)
        statement: dict[str, Any] = {}
        if fmt == "packed":
            statement = {"alg": -7, "sig": self.key.sign(auth_data + client_data.hash, ec.ECDSA(hashes.SHA256()))}
        attestation = AttestationObject.create(fmt, auth_data, statement)
        return {"id": credentials.b64url(self.credential_id).rstrip("="), "rawId": b64(self.credential_id),
                "response": {"clientDataJSON": b64(client_data), "attestationObject": b64(attestation)},
                "type": "public-key"}

    def sign(self, challenge: str, *, counter: int | None = None) -> dict[str, Any]:
        """`navigator.credentials.get` for `challenge`, as the fidoSignedPayload a PISP sends."""
        self.counter = self.counter + 1 if counter is None else counter
        client_data = CollectedClientData.create(
            type="webauthn.get", challenge=credentials.challenge_bytes(challenge), origin=self.origin)
        auth_data = AuthenticatorData.create(self.rp_id_hash, AuthenticatorData.FLAG.UP, self.counter)
        signature = self.key.sign(auth_data + client_data.hash, ec.ECDSA(hashes.SHA256()))
        return {"id": credentials.b64url(self.credential_id).rstrip("="), "rawId": b64(self.credential_id),
                "response": {"authenticatorData": b64(auth_data), "clientDataJSON": b64(client_data),
                             "signature": b64(signature)},
                "type": "public-key"}


def verify_assertion(auth: SoftAuthenticator, fido: credentials.FidoCredential, payload: dict[str, Any],
                     challenge: str, counter: int) -> int:
    return credentials.verify_fido_assertion(
        credential_id=payload["id"], raw_id=payload["rawId"],
        authenticator_data=payload["response"]["authenticatorData"],
        client_data_json=payload["response"]["clientDataJSON"], signature=payload["response"]["signature"],
        challenge=challenge, registered_id=fido.credential_id, public_key=fido.public_key, counter=counter)


def verify_attestation(payload: dict[str, Any], challenge: str) -> credentials.FidoCredential:
    return credentials.verify_fido_attestation(
        credential_id=payload["id"], raw_id=payload["rawId"],
        client_data_json=payload["response"]["clientDataJSON"],
        attestation_object=payload["response"]["attestationObject"], challenge=challenge)


# --------------------------------------------------------------------------- the challenge


MOJALOOP_SCOPES = [
    {"address": "a84cd5b8-5883-4deb-9dec-2e86a9603922", "actions": ["ACCOUNTS_GET_BALANCE", "ACCOUNTS_TRANSFER"]},
    {"address": "b7b40dd7-ae6b-4904-9654-82d02544b327", "actions": ["ACCOUNTS_GET_BALANCE"]},
]


def test_challenge_is_base64_of_the_hex_sha256_of_the_canonical_consent() -> None:
    """Computed here independently: the canonical JSON written out by hand, hashed, hex, base64."""
    consent_id = "11a91835-cdda-418b-9c0a-e8de62fbc84c"
    by_hand = (
        '{"consentId":"11a91835-cdda-418b-9c0a-e8de62fbc84c","scopes":['
        '{"actions":["ACCOUNTS_GET_BALANCE","ACCOUNTS_TRANSFER"],"address":"a84cd5b8-5883-4deb-9dec-2e86a9603922"},'
        '{"actions":["ACCOUNTS_GET_BALANCE"],"address":"b7b40dd7-ae6b-4904-9654-82d02544b327"}]}'
    )
    expected = base64.b64encode(hashlib.sha256(by_hand.encode()).hexdigest().encode()).decode()
    assert credentials.derive_challenge(consent_id, MOJALOOP_SCOPES) == expected
    # the value Mojaloop's auth-service test suite expects for the same consent
    assert expected == "YzhmYzM5NDFkNjA3MGQzYmMzZmIzYTk5ZjgyZWVkMWUwNjdhOWQ2ZDU2YzcxYzI0ODUxZWM4YTc2NDljN2RhMA=="


def test_challenge_keeps_only_address_and_actions_of_a_scope() -> None:
    """Whatever else a scope carries and in whatever order, only {address, actions} is hashed."""
    plain = credentials.derive_challenge("46876aac-5db8-4353-bb3c-a6a905843ce7",
                                         [{"address": "dfspa.username.5678", "actions": ["ACCOUNTS_TRANSFER"]}])
    noisy = credentials.derive_challenge("46876aac-5db8-4353-bb3c-a6a905843ce7",
                                         [{"actions": ["ACCOUNTS_TRANSFER"], "extra": 1, "address": "dfspa.username.5678"}])
    assert plain == noisy == "ODNkN2RkMzlkMTA5NGFmZDUzNWU1N2I5ODk5ZmNlM2JlODJlMGFkNDk3M2I1MmE1MzcxZmQ3ZGYzZmEyNjY5MQ=="


def test_canonical_json_sorts_by_utf16_and_escapes_like_json_stringify() -> None:
    """RFC 8785's own sorting example (3.2.3), and its escaping rules."""
    value = {"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001f600": 5, "\u0080": 6, "\u00f6": 7}
    keys = ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]  # by UTF-16 code units
    assert credentials.canonical_json(value) == (
        "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + str(value[k]) for k in keys) + "}").encode()
    assert credentials.canonical_json(["\u001f", '"\\', "\u2028", None, True, -7]) == (
        '["\\u001f","\\"\\\\","\u2028",null,true,-7]').encode()
    with pytest.raises(ValueError):
        credentials.canonical_json({"amount": 1.5})


# --------------------------------------------------------------------------- GENERIC credentials


def test_generic_signature_verifies_with_its_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    challenge = credentials.derive_challenge(new_id(), MOJALOOP_SCOPES)
    public_key = credentials.generic_public_key(credentials.generic_public_key_text(key))
    credentials.verify_generic(public_key, challenge, credentials.sign_generic(key, challenge))
    # a raw r||s signature (WebCrypto's form) and a raw uncompressed point key are accepted too
    r, s = decode_dss_signature(key.sign(challenge.encode(), ec.ECDSA(hashes.SHA256())))
    raw_point = key.public_key().public_numbers()
    point = b"\x04" + raw_point.x.to_bytes(32, "big") + raw_point.y.to_bytes(32, "big")
    credentials.verify_generic(credentials.generic_public_key(credentials.b64url(point)), challenge,
                               credentials.b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big")))


def test_generic_signature_by_another_key_or_of_another_challenge_fails() -> None:
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    challenge = credentials.derive_challenge(new_id(), MOJALOOP_SCOPES)
    public_key = credentials.generic_public_key(credentials.generic_public_key_text(key))
    for signature in (credentials.sign_generic(other, challenge), credentials.sign_generic(key, challenge + "x"),
                      credentials.b64url(os.urandom(64)), credentials.b64url(b"\x30\x06\x02\x01\x01\x02\x01\x01")):
        with pytest.raises(CredentialError):
            credentials.verify_generic(public_key, challenge, signature)


BAD_PUBLIC_KEYS: dict[str, Callable[[], str]] = {
    "p384": lambda: credentials.generic_public_key_text(ec.generate_private_key(ec.SECP384R1())),
    "random-point": lambda: credentials.b64url(b"\x04" + os.urandom(64)),
    "random-bytes": lambda: credentials.b64url(os.urandom(91)),
    "not-base64": lambda: "not base64!",
    "empty": lambda: "",
}


@pytest.mark.parametrize("case", sorted(BAD_PUBLIC_KEYS))
def test_generic_public_key_must_be_a_p256_key(case: str) -> None:
    with pytest.raises(CredentialError):
        credentials.generic_public_key(BAD_PUBLIC_KEYS[case]())


# --------------------------------------------------------------------------- FIDO credentials


@pytest.mark.parametrize("fmt", ["packed", "none"])
def test_fido_attestation_for_the_challenge_registers_the_credential(fmt: str) -> None:
    auth = SoftAuthenticator()
    challenge = credentials.derive_challenge(new_id(), MOJALOOP_SCOPES)
    fido = verify_attestation(auth.attest(challenge, fmt), challenge)
    assert fido.credential_id == auth.credential_id
    assert fido.counter == 0 and fido.origin == auth.origin
    # the stored key verifies the authenticator's assertions; the counter goes up
    challenge2 = b64(os.urandom(32))
    assert verify_assertion(auth, fido, auth.sign(challenge2), challenge2, 0) == 1


def test_fido_attestation_of_another_challenge_or_rp_fails() -> None:
    auth = SoftAuthenticator()
    challenge = credentials.derive_challenge(new_id(), MOJALOOP_SCOPES)
    other = credentials.derive_challenge(new_id(), MOJALOOP_SCOPES)
    with pytest.raises(CredentialError, match="challenge"):
        verify_attestation(auth.attest(other), challenge)
    with pytest.raises(CredentialError, match="RP ID"):
        verify_attestation(auth.attest(challenge, rp_id_hash=hashlib.sha256(b"evil.example").digest()), challenge)
    payload = auth.attest(challenge)
    payload["id"] = credentials.b64url(os.urandom(64))
    with pytest.raises(CredentialError, match="id"):
        verify_attestation(payload, challenge)
    bad = auth.attest(challenge)
    obj = bytearray(base64.b64decode(bad["response"]["attestationObject"]))
    obj[-5] ^= 0xFF  # inside the packed signature
    bad["response"]["attestationObject"] = b64(bytes(obj))
    with pytest.raises(CredentialError):
        verify_attestation(bad, challenge)


def test_fido_assertion_with_a_bad_signature_or_a_stale_counter_fails() -> None:
    auth = SoftAuthenticator()
    challenge = credentials.derive_challenge(new_id(), MOJALOOP_SCOPES)
    fido = verify_attestation(auth.attest(challenge), challenge)
    signed = b64(os.urandom(32))
    payload = auth.sign(signed, counter=5)
    assert verify_assertion(auth, fido, payload, signed, 4) == 5
    with pytest.raises(CredentialError, match="counter"):
        verify_assertion(auth, fido, payload, signed, 5)  # replayed: the counter did not go up
    with pytest.raises(CredentialError, match="challenge"):
        verify_assertion(auth, fido, payload, b64(os.urandom(32)), 4)
    stranger = SoftAuthenticator()
    stranger.credential_id = auth.credential_id
    with pytest.raises(CredentialError, match="signature"):
        verify_assertion(auth, fido, stranger.sign(signed, counter=9), signed, 4)


# --------------------------------------------------------------------------- end to end: helpers


def tp_dfsp(scene: Scene, prefix: str = "dfsp") -> str:
    """A DFSP with its FSPIOP endpoints and the Third-party API's, at the test DFSP server."""
    name = scene.dfsp(prefix)
    for endpoint_type, value in thirdparty_for_base_url(scene.dfsps.base_url(name), "dfsp").items():
        r = scene.hub.admin.post(f"/participants/{name}/endpoints", json={"type": endpoint_type, "value": value})
        assert r.status_code == 201, r.text
    return name


def send(scene: Scene, method: str, path: str, source: str, body: Any = None, *,
         destination: str = CENTRAL_AUTH, status: int = 202) -> None:
    r = scene.fspiop.send(method, path, source, destination, body, **TP)
    assert r.status_code == status, r.text


def scopes() -> list[dict[str, Any]]:
    return [{"address": "dfspa.alice.1234", "actions": ["ACCOUNTS_TRANSFER", "ACCOUNTS_GET_BALANCE"]},
            {"address": "dfspa.alice.5678", "actions": ["ACCOUNTS_STATEMENT"]}]


def consent_body(consent_id: str, credential: dict[str, Any]) -> dict[str, Any]:
    return {"consentId": consent_id, "consentRequestId": new_id(), "scopes": scopes(),
            "credential": credential, "status": "ISSUED"}


def generic_consent(key: ec.EllipticCurvePrivateKey, consent_id: str | None = None) -> dict[str, Any]:
    consent_id = consent_id or new_id()
    challenge = credentials.derive_challenge(consent_id, scopes())
    return consent_body(consent_id, {
        "credentialType": "GENERIC", "status": "PENDING",
        "genericPayload": {"publicKey": credentials.generic_public_key_text(key),
                           "signature": credentials.sign_generic(key, challenge)}})


def register(scene: Scene, dfsp: str, body: dict[str, Any]) -> Received:
    """POST /consents to centralAuth; its answer, PUT /consents/{ID} or its /error."""
    mark = scene.dfsps.mark(dfsp)
    send(scene, "POST", "/consents", dfsp, body)
    return scene.dfsps.answer(dfsp, f"/consents/{body['consentId']}", since=mark)


def verify(scene: Scene, dfsp: str, consent_id: str, challenge: str, signed: dict[str, Any],
           request_id: str | None = None) -> Received:
    """POST /thirdpartyRequests/verifications to centralAuth; its answer."""
    request_id = request_id or new_id()
    body = {"verificationRequestId": request_id, "challenge": challenge, "consentId": consent_id, **signed}
    mark = scene.dfsps.mark(dfsp)
    send(scene, "POST", "/thirdpartyRequests/verifications", dfsp, body)
    return scene.dfsps.answer(dfsp, f"/thirdpartyRequests/verifications/{request_id}", since=mark)


def generic_signed(key: ec.EllipticCurvePrivateKey, challenge: str) -> dict[str, Any]:
    return {"signedPayloadType": "GENERIC", "genericSignedPayload": credentials.sign_generic(key, challenge)}


def assert_from_central_auth(request: Received, to: str) -> None:
    """What Mojaloop's switch would forward from its auth-service: FSPIOP-Source centralAuth,
    FSPIOP-Destination the DFSP, the third-party media type, FSPIOP-URI/-HTTP-Method of the message."""
    h = request.headers
    assert (h.get("fspiop-source"), h.get("fspiop-destination")) == (CENTRAL_AUTH, to), request
    assert h.get("content-type") == TP_CONTENT_TYPE, request
    assert (h.get("fspiop-uri"), h.get("fspiop-http-method")) == (request.path, request.method), request
    assert h.get("date") and h.get("traceparent"), request


# --------------------------------------------------------------------------- end to end


def test_central_auth_is_a_participant_with_third_party_endpoints(scene: Scene) -> None:
    """The hub creates centralAuth at start: active, no accounts, its endpoints on the ALS admin port."""
    r = scene.hub.admin.get(f"/participants/{CENTRAL_AUTH}")
    assert r.status_code == 200, r.text
    assert r.json()["isActive"] == 1 and r.json()["accounts"] == []
    endpoints = {e["type"]: e["value"] for e in scene.hub.admin.get(f"/participants/{CENTRAL_AUTH}/endpoints").json()}
    base = scene.hub.urls["als_admin"] + "/authService"
    assert endpoints["TP_CB_URL_CONSENT_POST"] == base + "/consents"
    assert endpoints["TP_CB_URL_TRANSACTION_REQUEST_VERIFY_POST"] == base + "/thirdpartyRequests/verifications"
    assert endpoints["TP_CB_URL_CONSENT_PUT_ERROR"] == base + "/consents/{{ID}}/error"


def test_generic_consent_is_verified_registered_in_the_als_and_verifies_signatures(scene: Scene) -> None:
    """Account linking and a transfer's signature check, as the DFSP sees them."""
    dfsp = tp_dfsp(scene)
    key = ec.generate_private_key(ec.SECP256R1())
    body = generic_consent(key)
    consent_id = body["consentId"]

    answer = register(scene, dfsp, body)
    assert answer.path == f"/consents/{consent_id}", answer
    assert_from_central_auth(answer, dfsp)
    assert answer.body == {"scopes": body["scopes"], "credential": {**body["credential"], "status": "VERIFIED"}}

    # the ALS knows centralAuth as the consent's authoritative source
    mark = scene.dfsps.mark(dfsp)
    r = scene.fspiop.get(f"/participants/CONSENT/{consent_id}", dfsp)
    assert r.status_code == 202, r.text
    found = scene.dfsps.answer(dfsp, f"/participants/CONSENT/{consent_id}", since=mark)
    assert found.body == {"fspId": CENTRAL_AUTH}, found

    challenge = b64(os.urandom(32))  # a DFSP's challenge: base64 of SHA-256(CJSON(quote)), say
    verified = verify(scene, dfsp, consent_id, challenge, generic_signed(key, challenge))
    assert not verified.path.endswith("/error"), verified
    assert_from_central_auth(verified, dfsp)
    assert verified.body == {"authenticationResponse": "VERIFIED"}

    refused = verify(scene, dfsp, consent_id, challenge, generic_signed(key, b64(os.urandom(32))))
    assert refused.error_code == "6201", refused
    assert_from_central_auth(refused, dfsp)


def test_consent_with_a_bad_credential_gets_6200(scene: Scene) -> None:
    dfsp = tp_dfsp(scene)
    key = ec.generate_private_key(ec.SECP256R1())
    body = generic_consent(key)
    body["credential"]["genericPayload"]["signature"] = credentials.sign_generic(key, "another challenge")
    answer = register(scene, dfsp, body)
    assert answer.path == f"/consents/{body['consentId']}/error", answer
    assert answer.error_code == "6200", answer
    assert_from_central_auth(answer, dfsp)
    # nothing was stored: the same id can be registered with a good credential
    good = register(scene, dfsp, generic_consent(key, body["consentId"]))
    assert good.error_code is None and good.body["credential"]["status"] == "VERIFIED", good


def test_consent_resent_gets_the_same_answer_and_a_conflicting_one_6001(scene: Scene) -> None:
    dfsp, other = tp_dfsp(scene), tp_dfsp(scene)
    key = ec.generate_private_key(ec.SECP256R1())
    body = generic_consent(key)
    first = register(scene, dfsp, body)
    again = register(scene, dfsp, body)
    assert again.body == first.body and again.error_code is None
    conflict = register(scene, other, generic_consent(key, body["consentId"]))
    assert conflict.error_code == "6001", conflict


def test_fido_consent_and_assertions(scene: Scene) -> None:
    """A FIDO credential: attestation at registration, assertions at transfers, the counter kept."""
    dfsp = tp_dfsp(scene)
    auth = SoftAuthenticator()
    consent_id = new_id()
    fido_payload = auth.attest(credentials.derive_challenge(consent_id, scopes()))
    body = consent_body(consent_id, {"credentialType": "FIDO", "status": "PENDING", "fidoPayload": fido_payload})
    answer = register(scene, dfsp, body)
    assert answer.error_code is None, answer
    assert answer.body["credential"] == {**body["credential"], "status": "VERIFIED"}

    challenge = b64(os.urandom(32))
    signed = {"signedPayloadType": "FIDO", "fidoSignedPayload": auth.sign(challenge)}
    assert verify(scene, dfsp, consent_id, challenge, signed).body == {"authenticationResponse": "VERIFIED"}
    # the same assertion again, as a new request: the counter did not go up
    replayed = verify(scene, dfsp, consent_id, challenge, signed)
    assert replayed.error_code == "6201" and "counter" in replayed.body["errorInformation"]["errorDescription"]
    # a GENERIC signature cannot stand for a FIDO credential
    mismatch = verify(scene, dfsp, consent_id, challenge, generic_signed(ec.generate_private_key(ec.SECP256R1()),
                                                                           challenge))
    assert mismatch.error_code == "6201", mismatch
    next_challenge = b64(os.urandom(32))
    again = verify(scene, dfsp, consent_id, next_challenge,
                   {"signedPayloadType": "FIDO", "fidoSignedPayload": auth.sign(next_challenge)})
    assert again.body == {"authenticationResponse": "VERIFIED"}


def test_revoked_consent_is_refused_and_revocation_is_announced(scene: Scene) -> None:
    """DELETE /consents/{ID}: REVOKED with revokedAt, PATCH to the DFSP; later verifications 6103.
    The ALS still names centralAuth, which answers for the consent."""
    dfsp = tp_dfsp(scene)
    key = ec.generate_private_key(ec.SECP256R1())
    body = generic_consent(key)
    consent_id = body["consentId"]
    assert register(scene, dfsp, body).error_code is None

    mark = scene.dfsps.mark(dfsp)
    send(scene, "DELETE", f"/consents/{consent_id}", dfsp)
    patch = scene.dfsps.wait_for(dfsp, "PATCH", f"/consents/{consent_id}", since=mark, exact=True)
    assert_from_central_auth(patch, dfsp)
    assert patch.body["status"] == "REVOKED" and patch.body["revokedAt"].endswith("Z"), patch

    challenge = b64(os.urandom(32))
    refused = verify(scene, dfsp, consent_id, challenge, generic_signed(key, challenge))
    assert refused.error_code == "6103", refused

    mark = scene.dfsps.mark(dfsp)
    scene.fspiop.get(f"/participants/CONSENT/{consent_id}", dfsp)
    assert scene.dfsps.answer(dfsp, f"/participants/CONSENT/{consent_id}", since=mark).body == {"fspId": CENTRAL_AUTH}


def test_revocation_asked_by_a_pisp_is_told_to_both(scene: Scene) -> None:
    """A DELETE from someone else than the consent's DFSP (its PISP): both hear of the revocation."""
    dfsp, pisp = tp_dfsp(scene), tp_dfsp(scene, "pisp")
    body = generic_consent(ec.generate_private_key(ec.SECP256R1()))
    consent_id = body["consentId"]
    assert register(scene, dfsp, body).error_code is None
    marks = {name: scene.dfsps.mark(name) for name in (dfsp, pisp)}
    send(scene, "DELETE", f"/consents/{consent_id}", pisp)
    patches = [scene.dfsps.wait_for(name, "PATCH", f"/consents/{consent_id}", since=marks[name], exact=True)
               for name in (dfsp, pisp)]
    for name, patch in zip((dfsp, pisp), patches):
        assert_from_central_auth(patch, name)
    assert patches[0].body == patches[1].body and patches[0].body["status"] == "REVOKED"
    # asked again: the same revocation time, nothing else changes
    mark = scene.dfsps.mark(pisp)
    send(scene, "DELETE", f"/consents/{consent_id}", pisp)
    again = scene.dfsps.wait_for(pisp, "PATCH", f"/consents/{consent_id}", since=mark, exact=True)
    assert again.body == patches[1].body


def test_revocation_by_patch_from_the_dfsp(scene: Scene) -> None:
    """A DFSP-initiated unlink: PATCH /consents/{ID} {status: REVOKED, revokedAt} to centralAuth."""
    dfsp, other = tp_dfsp(scene), tp_dfsp(scene)
    key = ec.generate_private_key(ec.SECP256R1())
    body = generic_consent(key)
    consent_id = body["consentId"]
    assert register(scene, dfsp, body).error_code is None
    revoked_at = "2030-01-02T03:04:05.678Z"
    mark = scene.dfsps.mark(other)
    send(scene, "PATCH", f"/consents/{consent_id}", other, {"status": "REVOKED", "revokedAt": revoked_at}, status=200)
    assert scene.dfsps.error_callback(other, f"/consents/{consent_id}", since=mark).error_code == "6103"
    send(scene, "PATCH", f"/consents/{consent_id}", dfsp, {"status": "REVOKED", "revokedAt": revoked_at}, status=200)
    challenge = b64(os.urandom(32))
    refused = verify(scene, dfsp, consent_id, challenge, generic_signed(key, challenge))
    assert refused.error_code == "6103" and revoked_at in refused.body["errorInformation"]["errorDescription"]


def test_an_external_consent_oracle_is_asked_over_http(hubs: Any, test_dfsps: TestDfsps) -> None:
    """With another oracle registered for CONSENT, centralAuth registers each consent there
    (`POST /participants/CONSENT/{ID} {fspId: centralAuth}`); if it cannot, the DFSP gets 6003 and
    nothing is stored."""
    hub = hubs.start(empty=True)
    hub.setup_currency()
    scene = Scene(hub, test_dfsps)
    oracle = Oracle()
    threading.Thread(target=oracle.serve_forever, daemon=True).start()
    try:
        (builtin,) = hub.als.get("/oracles", params={"type": "CONSENT"}).json()
        r = hub.als.put(f"/oracles/{builtin['oracleId']}", json={"endpoint": {"value": oracle.url, "endpointType": "URL"}})
        assert r.status_code == 204, r.text
        dfsp = tp_dfsp(scene)
        key = ec.generate_private_key(ec.SECP256R1())

        oracle.failing = True
        body = generic_consent(key)
        refused = register(scene, dfsp, body)
        assert refused.error_code == "6003", refused
        oracle.failing = False
        answer = register(scene, dfsp, body)  # nothing was stored: the same consent again
        assert answer.error_code is None, answer
        assert ("POST", f"/participants/CONSENT/{body['consentId']}", {"fspId": CENTRAL_AUTH}) in oracle.calls

        mark = scene.dfsps.mark(dfsp)
        scene.fspiop.get(f"/participants/CONSENT/{body['consentId']}", dfsp)
        assert scene.dfsps.answer(dfsp, f"/participants/CONSENT/{body['consentId']}", since=mark).body == {
            "fspId": CENTRAL_AUTH}
    finally:
        scene.close()
        oracle.shutdown()
        oracle.server_close()


def test_consents_outlive_a_restart_on_new_ports(hubs: Any, test_dfsps: TestDfsps, tmp_path: Any) -> None:
    """centralAuth's endpoints follow the ALS admin port of each run; its consents are in the ledger."""
    data_dir = tmp_path / "hub"
    first = hubs.start(empty=True, data_dir=data_dir)
    first.setup_currency()
    scene = Scene(first, test_dfsps)
    dfsp = tp_dfsp(scene)
    key = ec.generate_private_key(ec.SECP256R1())
    body = generic_consent(key)
    assert register(scene, dfsp, body).error_code is None
    scene.close()
    assert first.stop() == 0

    second = hubs.start(empty=True, data_dir=data_dir)
    scene = Scene(second, test_dfsps)
    try:
        endpoints = {e["type"]: e["value"] for e in second.admin.get(f"/participants/{CENTRAL_AUTH}/endpoints").json()}
        assert endpoints["TP_CB_URL_CONSENT_POST"] == second.urls["als_admin"] + "/authService/consents"
        assert [p["name"] for p in second.admin.get("/participants").json()].count(CENTRAL_AUTH) == 1
        challenge = b64(os.urandom(32))
        answer = verify(scene, dfsp, body["consentId"], challenge, generic_signed(key, challenge))
        assert answer.body == {"authenticationResponse": "VERIFIED"}, answer
    finally:
        scene.close()


def test_verification_of_an_unknown_or_foreign_consent_is_6103(scene: Scene) -> None:
    dfsp, other = tp_dfsp(scene), tp_dfsp(scene)
    key = ec.generate_private_key(ec.SECP256R1())
    body = generic_consent(key)
    assert register(scene, dfsp, body).error_code is None
    challenge = b64(os.urandom(32))
    assert verify(scene, dfsp, new_id(), challenge, generic_signed(key, challenge)).error_code == "6103"
    assert verify(scene, other, body["consentId"], challenge, generic_signed(key, challenge)).error_code == "6103"


def test_malformed_messages_are_refused_at_once(scene: Scene) -> None:
    """Through the switch, a broken body is refused by the switch (400/3100). At centralAuth's own
    endpoint, its checks answer 400 as well: the headers, and a POST /consents without a credential
    (the PISP's form, not for the auth-service); the switch gives the DFSP 1001 for such refusals."""
    dfsp = tp_dfsp(scene)
    r = scene.fspiop.send("POST", "/thirdpartyRequests/verifications", dfsp, CENTRAL_AUTH,
                          {"verificationRequestId": new_id(), "challenge": "abc", "consentId": new_id(),
                           "signedPayloadType": "GENERIC"}, **TP)
    assert r.status_code == 400 and sync_error(r)[0] == "3100", r.text

    url = "/authService/consents"
    body = {"consentId": new_id(), "consentRequestId": new_id(), "scopes": scopes(), "status": "ISSUED"}
    sent = scene.fspiop.headers_for("POST", url, dfsp, CENTRAL_AUTH, **TP)
    r = scene.hub.als.post(url, headers=sent, content=json.dumps(body))
    assert r.status_code == 400 and sync_error(r) == ("3102", "Missing mandatory element - credential is required")
    r = scene.hub.als.post(url, headers={k: v for k, v in sent.items() if k != "fspiop-source"},
                           content=json.dumps(body))
    assert r.status_code == 400 and sync_error(r)[0] == "3102", r.text
    r = scene.hub.als.delete(f"/authService/consents/{new_id()}x",
                             headers=scene.fspiop.headers_for("DELETE", url, dfsp, CENTRAL_AUTH, **TP))
    assert r.status_code == 400 and sync_error(r)[0] == "3101", r.text


def test_events_tell_the_story_without_secrets(scene: Scene) -> None:
    dfsp = tp_dfsp(scene)
    key = ec.generate_private_key(ec.SECP256R1())
    body = generic_consent(key)
    consent_id, request_id = body["consentId"], new_id()
    challenge = b64(os.urandom(32))
    signed = generic_signed(key, challenge)

    def act() -> None:
        assert register(scene, dfsp, body).error_code is None
        verify(scene, dfsp, consent_id, challenge, signed, request_id)
        mark = scene.dfsps.mark(dfsp)
        send(scene, "DELETE", f"/consents/{consent_id}", dfsp)
        scene.dfsps.wait_for(dfsp, "PATCH", f"/consents/{consent_id}", since=mark, exact=True)

    events = watch_events(scene.hub.urls["nats"], [
        f"ml.event.consent.{consent_id}.verified", f"ml.event.consent.{consent_id}.revoked",
        f"ml.event.thirdpartyVerification.{request_id}.verified"], 3, act)
    by_type = {e["type"]: e for e in events}
    assert set(by_type) == {"consent.verified", "consent.revoked", "thirdpartyVerification.verified"}
    assert by_type["consent.verified"]["credentialType"] == "GENERIC"
    assert by_type["consent.verified"]["destination"] == dfsp
    assert by_type["thirdpartyVerification.verified"]["consentId"] == consent_id
    text = json.dumps(events)
    for secret in (body["credential"]["genericPayload"]["publicKey"], body["credential"]["genericPayload"]["signature"],
                   signed["genericSignedPayload"], challenge):
        assert secret not in text


