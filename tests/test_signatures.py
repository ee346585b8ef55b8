"""JWS signatures (FSPIOP-Signature), over the real hub: keys registered through the Admin API,
--verify-signatures checking the requests of participants that have one, the signature passed on
unchanged to the receiver, and --sign-messages signing what the hub originates.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from fspiop_dfsp import HUB, Scene, TestDfsps, Transfer, b64url, dumps, sync_error
from pki import self_signed

from miniloop.fspiop import signature

EXPIRY_WAIT_S = 12.0


def new_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def pem(key: Any) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def jws(key: rsa.RSAPrivateKey, protected: dict[str, Any], body: bytes) -> str:
    """An FSPIOP-Signature written by hand (not with the hub's own code), RS256 unless `protected` says."""
    protected_text = b64url(json.dumps(protected).encode())
    hash_ = {"RS384": hashes.SHA384, "RS512": hashes.SHA512}.get(protected.get("alg"), hashes.SHA256)
    sig = key.sign(f"{protected_text}.{b64url(body)}".encode(), padding.PKCS1v15(), hash_())
    return json.dumps({"signature": b64url(sig), "protectedHeader": protected_text})


def protected_for(method: str, uri: str, source: str, destination: str | None, alg: str = "RS256") -> dict[str, Any]:
    protected = {"alg": alg, "FSPIOP-URI": uri, "FSPIOP-HTTP-Method": method, "FSPIOP-Source": source}
    if destination:
        protected["FSPIOP-Destination"] = destination
    return protected


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    return {"a": new_key(), "b": new_key()}


@pytest.fixture(scope="module")
def signed(module_hubs: Any, test_dfsps: TestDfsps) -> Iterator[Scene]:
    """A hub started with --verify-signatures and --sign-messages."""
    hub = module_hubs.start("--verify-signatures", "--sign-messages", empty=True)
    hub.setup_currency()
    scene = Scene(hub, test_dfsps)
    yield scene
    scene.close()


def register(scene: Scene, name: str, key: Any) -> None:
    r = scene.hub.admin.put(f"/participants/{name}/jwsKey", json={"publicKey": pem(key)})
    assert r.status_code == 200, r.text
    assert r.json() == {"publicKey": pem(key)}


def signed_prepare(scene: Scene, transfer: Transfer, key: rsa.RSAPrivateKey, *,
                   protected: dict[str, Any] | None = None, body: bytes | None = None) -> Any:
    raw = dumps(transfer.body)
    header = jws(key, protected or protected_for("POST", "/transfers", transfer.payer, transfer.payee), raw)
    return scene.fspiop.post("/transfers", transfer.payer, transfer.payee, None, content=body or raw,
                             headers={"fspiop-signature": header})


def test_signed_prepare_is_accepted_and_the_payee_gets_the_same_signature(signed: Scene, keys: Any) -> None:
    payer, payee = signed.dfsp("payer"), signed.dfsp("payee")
    register(signed, payer, keys["a"])
    transfer = Transfer(payer, payee)
    mark = signed.dfsps.mark(payee)
    r = signed_prepare(signed, transfer, keys["a"])
    assert r.status_code == 202, r.text
    forwarded = signed.dfsps.wait_for(payee, "POST", "/transfers", since=mark, exact=True)
    sent = jws(keys["a"], protected_for("POST", "/transfers", payer, payee), dumps(transfer.body))
    # RSA PKCS#1 v1.5 is deterministic: the same input gives the same header
    assert forwarded.headers["fspiop-signature"] == sent
    # the end-to-end signature verifies at the receiver, over the bytes it received
    signature.verify(forwarded.headers["fspiop-signature"], keys["a"].public_key(), method="POST",
                     uri="/transfers", source=payer, destination=payee, body=forwarded.raw)
    # the payee registered no key: its unsigned fulfil is not checked
    mark = signed.dfsps.mark(payer)
    r = signed.fulfil(transfer)
    assert r.status_code == 200, r.text
    assert signed.dfsps.callback(payer, transfer.path, since=mark).body["transferState"] == "COMMITTED"


def test_a_certificate_is_taken_as_its_public_key(signed: Scene, keys: Any) -> None:
    """An X.509 certificate (as Mojaloop's connection manager hands out) registers its RSA key."""
    payer, payee = signed.dfsp("payer"), signed.dfsp("payee")
    r = signed.hub.admin.put(f"/participants/{payer}/jwsKey", json={"publicKey": self_signed(keys["a"])})
    assert r.status_code == 200, r.text
    assert r.json() == {"publicKey": pem(keys["a"])}  # stored as the key
    r = signed_prepare(signed, Transfer(payer, payee), keys["b"])  # another key's signature: refused
    assert r.status_code == 400 and sync_error(r)[0] == "3105", r.text
    assert signed.position(payer) == 0
    mark = signed.dfsps.mark(payee)
    transfer = Transfer(payer, payee)
    r = signed_prepare(signed, transfer, keys["a"])  # the certificate's key's: accepted, forwarded
    assert r.status_code == 202, r.text
    assert signed.dfsps.wait_for(payee, "POST", "/transfers", since=mark, exact=True).body["transferId"] == transfer.id


def test_a_dfsp_without_a_key_is_not_checked(signed: Scene) -> None:
    payer, payee = signed.dfsp("payer"), signed.dfsp("payee")
    signed.reserve(Transfer(payer, payee))  # unsigned, accepted, forwarded


@pytest.mark.parametrize("case", [
    "unsigned", "wrong key", "tampered body", "other URI", "other method", "other source",
    "other destination", "no destination", "alg none", "garbage header", "not base64url",
])
def test_a_bad_signature_is_refused_with_3105_and_changes_nothing(signed: Scene, keys: Any, case: str) -> None:
    payer, payee = signed.dfsp("payer"), signed.dfsp("payee")
    register(signed, payer, keys["a"])
    transfer = Transfer(payer, payee)
    raw = dumps(transfer.body)
    good = protected_for("POST", "/transfers", payer, payee)
    body = raw
    if case == "unsigned":
        header = None
    elif case == "wrong key":
        header = jws(keys["b"], good, raw)
    elif case == "tampered body":
        header = jws(keys["a"], good, raw)
        body = raw.replace(b'"amount":"10"', b'"amount":"11"')
        assert body != raw
    elif case == "garbage header":
        header = "not json"
    elif case == "not base64url":
        header = json.dumps({"signature": "!!!", "protectedHeader": "###"})
    else:
        protected = dict(good)
        if case == "other URI":
            protected["FSPIOP-URI"] = "/quotes"
        elif case == "other method":
            protected["FSPIOP-HTTP-Method"] = "PUT"
        elif case == "other source":
            protected["FSPIOP-Source"] = payee
        elif case == "other destination":
            protected["FSPIOP-Destination"] = payer
        elif case == "no destination":
            del protected["FSPIOP-Destination"]
        elif case == "alg none":
            protected["alg"] = "none"
        header = jws(keys["a"], protected, raw)
    mark = signed.dfsps.mark(payee)
    r = signed.fspiop.post("/transfers", payer, payee, None, content=body, headers={"fspiop-signature": header})
    assert r.status_code == 400, r.text
    code, description = sync_error(r)
    assert code == "3105", description
    assert description.startswith("Invalid signature")
    assert signed.position(payer) == 0
    # nothing was recorded: the same transfer, signed correctly, is a new one, not a duplicate
    r = signed_prepare(signed, transfer, keys["a"])
    assert r.status_code == 202, r.text
    forwarded = signed.dfsps.wait_for(payee, "POST", "/transfers", since=mark, exact=True)
    assert forwarded.body["transferId"] == transfer.id
    assert len([q for q in signed.dfsps.received(payee)[mark:] if q.method == "POST"]) == 1


def test_verification_off_checks_nothing_even_with_a_key(scene: Scene, keys: Any) -> None:
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    register(scene, payer, keys["a"])
    scene.reserve(Transfer(payer, payee))  # unsigned, accepted
    r = scene.hub.admin.get("/hub/jwsKey")  # and the hub signs nothing
    assert r.status_code == 400 and r.json()["errorInformation"]["errorCode"] == "3200", r.text


@pytest.mark.parametrize("body, code", [
    ({"publicKey": "not a key"}, "3100"),
    ({"publicKey": ""}, "3100"),
    ({"publicKey": 42}, "3100"),
    ({}, "3101"),
    ({"publicKey": "x", "other": 1}, "3101"),
    ("short", "3100"),
    ("ec", "3100"),
    ("private", "3100"),
    ("short certificate", "3100"),
    ("ec certificate", "3100"),
    ({"publicKey": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, "3100"),
])
def test_a_bad_key_is_refused(signed: Scene, body: Any, code: str) -> None:
    name = signed.dfsp("dfsp")
    if body == "short":
        body = {"publicKey": pem(new_key(1024))}
    elif body == "ec":
        body = {"publicKey": pem(ec.generate_private_key(ec.SECP256R1()))}
    elif body == "short certificate":
        body = {"publicKey": self_signed(new_key(1024))}
    elif body == "ec certificate":
        body = {"publicKey": self_signed(ec.generate_private_key(ec.SECP256R1()))}
    elif body == "private":
        body = {"publicKey": new_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()).decode()}
    r = signed.hub.admin.put(f"/participants/{name}/jwsKey", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["errorInformation"]["errorCode"] == code, r.text
    r = signed.hub.admin.get(f"/participants/{name}/jwsKey")
    assert r.json()["errorInformation"]["errorCode"] == "3200", r.text


def test_keys_of_unknown_participants_and_the_hub(signed: Scene, keys: Any) -> None:
    for method in ("get", "put", "delete"):
        kwargs = {"json": {"publicKey": pem(keys["a"])}} if method == "put" else {}
        r = getattr(signed.hub.admin, method)("/participants/nosuchdfsp/jwsKey", **kwargs)
        assert r.status_code == 400 and r.json()["errorInformation"]["errorCode"] == "3200", (method, r.text)
    r = signed.hub.admin.put("/participants/Hub/jwsKey", json={"publicKey": pem(keys["a"])})
    assert r.status_code == 400 and r.json()["errorInformation"]["errorCode"] == "3000", r.text


def test_a_removed_key_is_no_longer_checked(signed: Scene, keys: Any) -> None:
    payer, payee = signed.dfsp("payer"), signed.dfsp("payee")
    register(signed, payer, keys["a"])
    r = signed.prepare(Transfer(payer, payee))
    assert sync_error(r)[0] == "3105"
    r = signed.hub.admin.get(f"/participants/{payer}/jwsKey")
    assert r.status_code == 200 and r.json() == {"publicKey": pem(keys["a"])}
    assert signed.hub.admin.delete(f"/participants/{payer}/jwsKey").status_code == 204
    signed.reserve(Transfer(payer, payee))


def test_other_resources_are_checked_too(signed: Scene, keys: Any) -> None:
    """A GET (empty body) and a callback (PUT), signed and unsigned."""
    payer, payee = signed.dfsp("payer"), signed.dfsp("payee")
    register(signed, payer, keys["a"])
    transfer = Transfer(payer, payee)
    assert signed_prepare(signed, transfer, keys["a"]).status_code == 202
    r = signed.fspiop.get(transfer.path, payer)
    assert sync_error(r)[0] == "3105"
    header = jws(keys["a"], protected_for("GET", transfer.path, payer, None), b"")
    r = signed.fspiop.get(transfer.path, payer, headers={"fspiop-signature": header})
    assert r.status_code == 202, r.text


def test_the_hubs_expiry_error_is_signed_with_the_hubs_key(signed: Scene) -> None:
    payer, payee = signed.dfsp("payer"), signed.dfsp("payee")
    transfer = Transfer(payer, payee, expires_in=2)
    signed.reserve(transfer)
    error = signed.dfsps.error_callback(payer, transfer.path, timeout=EXPIRY_WAIT_S)
    assert error.error_code == "3303" and error.source == HUB, error
    r = signed.hub.admin.get("/hub/jwsKey")
    assert r.status_code == 200, r.text
    hub_key = signature.public_key_from_pem(r.json()["publicKey"])
    assert hub_key.key_size == 2048
    signature.verify(error.headers["fspiop-signature"], hub_key, method="PUT", uri=transfer.path + "/error",
                     source=HUB, destination=payer, body=error.raw)
    protected = json.loads(signature._unb64url(json.loads(error.headers["fspiop-signature"])["protectedHeader"]))
    assert protected["FSPIOP-URI"] == error.headers["fspiop-uri"] == transfer.path + "/error"
    key_file = signed.hub.data_dir / signature.HUB_KEY_FILE
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600


def test_keys_survive_a_restart(hubs: Any, test_dfsps: TestDfsps, keys: Any) -> None:
    hub = hubs.start("--verify-signatures", "--sign-messages", empty=True)
    hub.setup_currency()
    scene = Scene(hub, test_dfsps)
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    register(scene, payer, keys["a"])
    hub_pem = hub.admin.get("/hub/jwsKey").json()["publicKey"]
    scene.close()
    hub.stop()
    hub.start()
    scene = Scene(hub, test_dfsps)
    try:
        assert hub.admin.get(f"/participants/{payer}/jwsKey").json() == {"publicKey": pem(keys["a"])}
        assert hub.admin.get("/hub/jwsKey").json()["publicKey"] == hub_pem
        assert sync_error(scene.prepare(Transfer(payer, payee)))[0] == "3105"
        assert signed_prepare(scene, Transfer(payer, payee), keys["a"]).status_code == 202
    finally:
        scene.close()


def test_the_env_variable_turns_verification_on(hubs: Any, test_dfsps: TestDfsps, keys: Any) -> None:
    hub = hubs.start(empty=True, env={"MINILOOP_VERIFY_SIGNATURES": "true"})
    hub.setup_currency()
    scene = Scene(hub, test_dfsps)
    try:
        payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
        register(scene, payer, keys["a"])
        assert sync_error(scene.prepare(Transfer(payer, payee)))[0] == "3105"
    finally:
        scene.close()


@pytest.mark.parametrize("alg", ["RS384", "RS512"])
def test_rs384_and_rs512_are_accepted(signed: Scene, keys: Any, alg: str) -> None:
    payer, payee = signed.dfsp("payer"), signed.dfsp("payee")
    register(signed, payer, keys["b"])
    transfer = Transfer(payer, payee)
    r = signed_prepare(signed, transfer, keys["b"], protected=protected_for("POST", "/transfers", payer, payee, alg))
    assert r.status_code == 202, r.text
