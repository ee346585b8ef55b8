"""FSPIOP-Signature (JWS, the API's Signature v1.1): checking a DFSP's, and signing the hub's own.

Optional and off by default (docs/reliability.md, "Security"). The header's value is the JSON
`{"signature": <b64url>, "protectedHeader": <b64url(JSON)>}`; the protected header names the
algorithm (RS256, RS384 or RS512 over an RSA key of at least 2048 bits) and the FSPIOP-URI,
FSPIOP-HTTP-Method, FSPIOP-Source and (when the sender knew it) FSPIOP-Destination of the message,
which must be the message's own. The signing input is `protectedHeader + "." + b64url(body)`, the
body exactly as sent (empty for a GET).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from contextlib import suppress
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from miniloop.fspiop.errors import FspiopError

MIN_KEY_BITS = 2048
HUB_KEY_FILE = "hub-jws-key.pem"
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "RS256": hashes.SHA256, "RS384": hashes.SHA384, "RS512": hashes.SHA512,
}
_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
_HEADER_MAX = 8192  # a real header is a few hundred characters


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    if not isinstance(text, str) or not text or "=" in text:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_from_pem(pem: Any) -> rsa.RSAPublicKey:
    """An RSA public key of at least 2048 bits from PEM text: a public key (SubjectPublicKeyInfo,
    `-----BEGIN PUBLIC KEY-----`) or an X.509 certificate (`-----BEGIN CERTIFICATE-----`, as
    Mojaloop's connection manager hands out), whose public key is taken; ValueError saying what is
    wrong. A certificate is not verified (no chain, no dates): only its key is used."""
    if not isinstance(pem, str) or not pem.strip():
        raise ValueError("publicKey must be a PEM-encoded RSA public key or X.509 certificate")
    if _CERTIFICATE in pem:
        try:
            key = x509.load_pem_x509_certificate(pem.strip().encode()).public_key()
        except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError):
            raise ValueError("publicKey is not a PEM-encoded X.509 certificate") from None
    else:
        try:
            key = serialization.load_pem_public_key(pem.strip().encode())
        except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError):
            raise ValueError("publicKey is not a PEM-encoded public key or X.509 certificate") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("publicKey must be an RSA key (RS256, RS384, RS512)")
    if key.key_size < MIN_KEY_BITS:
        raise ValueError(f"publicKey is {key.key_size} bits; at least {MIN_KEY_BITS} are required")
    return key


def pem_of(key: rsa.RSAPublicKey) -> str:
    """The key as SubjectPublicKeyInfo PEM, the form it is stored and shown in."""
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _invalid(why: str) -> FspiopError:
    return FspiopError("3105", why)  # described as "Invalid signature - <why>"


def verify(header: str | None, key: rsa.RSAPublicKey, *, method: str, uri: str, source: str,
           destination: str | None, body: bytes, query: str = "") -> None:
    """Raise 3105 unless `header` is a valid FSPIOP-Signature by `key` over this message."""
    if not header:
        raise _invalid("fspiop-signature is required")
    if len(header) > _HEADER_MAX:
        raise _invalid("fspiop-signature is too long")
    try:
        outer = json.loads(header)
        signature = _unb64url(outer["signature"])
        protected_text = outer["protectedHeader"]
        protected = json.loads(_unb64url(protected_text))
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise _invalid("fspiop-signature is not {signature, protectedHeader} in base64url") from None
    if not isinstance(protected, dict):
        raise _invalid("the protected header is not a JSON object")
    protected = {k: v for k, v in protected.items() if isinstance(v, str)}  # anything else matches nothing
    algorithm = _HASHES.get(protected.get("alg", ""))
    if algorithm is None:
        raise _invalid("alg must be RS256, RS384 or RS512")
    uris = {uri, f"{uri}?{query}"} if query else {uri}
    if protected.get("FSPIOP-URI") not in uris:
        raise _invalid("FSPIOP-URI of the protected header is not this request's")
    if str(protected.get("FSPIOP-HTTP-Method", "")).upper() != method.upper():
        raise _invalid("FSPIOP-HTTP-Method of the protected header is not this request's")
    if protected.get("FSPIOP-Source") != source:
        raise _invalid("FSPIOP-Source of the protected header is not this request's")
    if (destination or "FSPIOP-Destination" in protected) and protected.get("FSPIOP-Destination") != destination:
        raise _invalid("FSPIOP-Destination of the protected header is not this request's")
    signing_input = f"{protected_text}.{b64url(body)}".encode()
    try:
        key.verify(signature, signing_input, padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise _invalid("the signature does not verify with the sender's registered key") from None


def sign(key: rsa.RSAPrivateKey, *, method: str, uri: str, source: str, destination: str | None,
         body: bytes, alg: str = "RS256") -> str:
    """The FSPIOP-Signature header value for this message, signed with `key`."""
    protected: dict[str, str] = {"alg": alg, "FSPIOP-URI": uri, "FSPIOP-HTTP-Method": method.upper(),
                                 "FSPIOP-Source": source}
    if destination:
        protected["FSPIOP-Destination"] = destination
    protected_text = b64url(json.dumps(protected, separators=(",", ":")).encode())
    signature = key.sign(f"{protected_text}.{b64url(body)}".encode(), padding.PKCS1v15(), _HASHES[alg]())
    return json.dumps({"signature": b64url(signature), "protectedHeader": protected_text}, separators=(",", ":"))


def hub_key(data_dir: Path) -> rsa.RSAPrivateKey:
    """The hub's own signing key: `hub-jws-key.pem` in the data directory, made (RSA 2048, mode
    0600) the first time it is asked for."""
    path = data_dir / HUB_KEY_FILE
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=MIN_KEY_BITS)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        tmp = data_dir / (HUB_KEY_FILE + ".tmp")
        with suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey) or loaded.key_size < MIN_KEY_BITS:
        raise ValueError(f"{path} is not an RSA private key of at least {MIN_KEY_BITS} bits")
    return loaded

