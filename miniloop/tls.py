"""Optional (mutual) TLS, off by default (docs/reliability.md, "### Mutual TLS").

- `--tls-cert FILE --tls-key FILE`: the FSPIOP port serves HTTPS with them; the hub also presents
  them as its client certificate when it calls a DFSP's `https://` endpoint.
- `--tls-client-ca FILE`: the FSPIOP port asks every client for a certificate signed by that CA
  (mutual TLS); a client without one is refused during the TLS handshake.
- `--tls-callback-ca FILE`: the CA the hub verifies DFSPs' https servers with (default: the system's).

The simulated DFSPs reach the hub through its FSPIOP port like anyone else: with TLS on they share
the hub's own certificate as their client certificate and trust the hub's certificate (and the
client CA). Only the other ports' plain HTTP is unchanged.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from miniloop.config import Settings
from miniloop.errors import StartupError


@dataclass(frozen=True)
class TlsContexts:
    server: ssl.SSLContext | None  # the FSPIOP port's; None: plain http
    callbacks: ssl.SSLContext  # the hub's client for https callback endpoints
    simulator: ssl.SSLContext | None  # the simulated DFSPs' client to the FSPIOP port; None: plain http


def _check_file(flag: str, path: Path) -> None:
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise StartupError(f"{flag} {path} cannot be read: {exc.strerror or exc}") from None


def contexts(settings: Settings) -> TlsContexts:
    """The SSL contexts the settings ask for; a missing, unreadable or bad file is a StartupError."""
    cert, key = settings.tls_cert, settings.tls_key
    client_ca, callback_ca = settings.tls_client_ca, settings.tls_callback_ca
    if (cert is None) != (key is None):
        raise StartupError("--tls-cert and --tls-key go together: give both (the certificate and its private key)")
    if client_ca is not None and cert is None:
        raise StartupError("--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is on an HTTPS port)")
    for flag, path in (("--tls-cert", cert), ("--tls-key", key), ("--tls-client-ca", client_ca),
                       ("--tls-callback-ca", callback_ca)):
        if path is not None:
            _check_file(flag, path)

    server = simulator = None
    if cert is not None and key is not None:
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        _load_chain(server, cert, key)
        if client_ca is not None:
            _load_ca(server, "--tls-client-ca", client_ca)
            server.verify_mode = ssl.CERT_REQUIRED
        # the simulated DFSPs: the hub's own certificate as theirs; they trust the hub's certificate
        # itself (also a self-signed one) and the client CA. No host name check: they connect to the
        # address the hub listens on, which need not be the name in its certificate.
        simulator = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        simulator.check_hostname = False
        simulator.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        _load_ca(simulator, "--tls-cert", cert)
        if client_ca is not None:
            _load_ca(simulator, "--tls-client-ca", client_ca)
        _load_chain(simulator, cert, key)

    callbacks = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if callback_ca is not None:
        _load_ca(callbacks, "--tls-callback-ca", callback_ca)
    if cert is not None and key is not None:
        _load_chain(callbacks, cert, key)
    return TlsContexts(server, callbacks, simulator)


def _load_chain(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    try:
        context.load_cert_chain(cert, key, password=b"")  # an encrypted key fails here, never prompts
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise StartupError(f"--tls-cert {cert} / --tls-key {key}: not a PEM certificate and its matching "
                           f"unencrypted private key ({_reason(exc)})") from None


def _load_ca(context: ssl.SSLContext, flag: str, path: Path) -> None:
    try:
        context.load_verify_locations(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise StartupError(f"{flag} {path}: not a PEM CA certificate ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    return " ".join(str(getattr(exc, "reason", None) or exc).split()) or type(exc).__name__
