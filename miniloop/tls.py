"""Optional (mutual) TLS, off by default (docs/reliability.md, "### Mutual TLS").

- `--tls-cert FILE --tls-key FILE`: the FSPIOP port serves HTTPS with them; the hub also presents
  them as its client certificate when it calls a DFSP's `https://` endpoint.
- `--tls-client-ca FILE`: the FSPIOP port asks every client for a certificate signed by that CA
  (mutual TLS); a client without one is refused during the TLS handshake. A request's
  FSPIOP-Source must then be named by the client's certificate (`SourceBinding`), unless
  `--tls-any-source`.
- `--tls-callback-ca FILE`: the CA the hub verifies DFSPs' https servers with (default: the system's).

The simulated DFSPs reach the hub through its FSPIOP port like anyone else: with TLS on they share
the hub's own certificate as their client certificate and trust the hub's certificate (and the
client CA). Only the other ports' plain HTTP is unchanged. The hub's own certificate speaks for
every participant (whoever holds its key runs the hub); the local tools (`miniloop scenario`,
`bench`, `dfsp`) present it too when they find the hub's TLS files in hub.json (`tool_context`).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from miniloop.config import Settings
from miniloop.errors import ConfigError, MiniloopError, StartupError
from miniloop.fspiop.errors import FspiopError


@dataclass(frozen=True)
class TlsContexts:
    server: ssl.SSLContext | None  # the FSPIOP port's; None: plain http
    callbacks: ssl.SSLContext  # the hub's client for https callback endpoints
    simulator: ssl.SSLContext | None  # the simulated DFSPs' client to the FSPIOP port; None: plain http
    binding: SourceBinding | None = None  # mutual TLS: whom each client certificate may send as


def _check_file(flag: str, path: Path) -> None:
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise StartupError(f"{flag} {path} cannot be read: {exc.strerror or exc}") from None


def contexts(settings: Settings, simulated_dfsps: bool = False) -> TlsContexts:
    """The SSL contexts the settings ask for; a missing, unreadable or bad file is a StartupError.

    `simulated_dfsps`: the hub hosts simulated DFSPs, which present the hub's certificate to its
    FSPIOP port; with --tls-client-ca that port must accept it, else every simulated payment would
    fail in the TLS handshake, long after a start that looked fine: a StartupError now instead."""
    cert, key = settings.tls_cert, settings.tls_key
    client_ca, callback_ca = settings.tls_client_ca, settings.tls_callback_ca
    if (cert is None) != (key is None):
        raise StartupError("--tls-cert and --tls-key go together: give both (the certificate and its private key)")
    if client_ca is not None and cert is None:
        raise StartupError("--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is on an HTTPS port)")
    if settings.tls_any_source and client_ca is None:
        raise StartupError("--tls-any-source goes with --tls-client-ca (it loosens mutual TLS)")
    for flag, path in (("--tls-cert", cert), ("--tls-key", key), ("--tls-client-ca", client_ca),
                       ("--tls-callback-ca", callback_ca)):
        if path is not None:
            _check_file(flag, path)

    server = simulator = binding = None
    if cert is not None and key is not None:
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        _load_chain(server, cert, key)
        if client_ca is not None:
            _load_ca(server, "--tls-client-ca", client_ca)
            server.verify_mode = ssl.CERT_REQUIRED
            if not settings.tls_any_source:
                binding = SourceBinding(_first_certificate(cert))
        simulator = _hub_client_context(cert, key, client_ca)
        if client_ca is not None and simulated_dfsps:
            refused = handshake_refusal(server, simulator)
            if refused is not None:
                raise StartupError(f"--tls-client-ca {client_ca} does not accept --tls-cert {cert}, which the simulated "
                                   f"DFSPs present to the FSPIOP port ({refused}): issue the hub's certificate "
                                   "from that CA, or start with --empty")

    callbacks = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if callback_ca is not None:
        _load_ca(callbacks, "--tls-callback-ca", callback_ca)
    if cert is not None and key is not None:
        _load_chain(callbacks, cert, key)
    return TlsContexts(server, callbacks, simulator, binding)


def handshake_refusal(server: ssl.SSLContext, client: ssl.SSLContext) -> str | None:
    """Why a TLS handshake between the two contexts fails, or None when it succeeds: the real
    handshake, in memory, so that it checks exactly what a connection to the port would."""
    server_in, server_out, client_in, client_out = (ssl.MemoryBIO() for _ in range(4))
    server_side = server.wrap_bio(server_in, server_out, server_side=True)
    client_side = client.wrap_bio(client_in, client_out)
    done: set[str] = set()
    for _ in range(8):  # TLS 1.3 takes two round trips; a few more for TLS 1.2
        for name, side, out, peer_in in (("client", client_side, client_out, server_in),
                                         ("server", server_side, server_out, client_in)):
            try:
                side.do_handshake()
                done.add(name)
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                return _reason(exc)
            peer_in.write(out.read())
        if len(done) == 2:
            try:  # TLS 1.3: the server checks the client's certificate after the client is done
                server_side.read(1)
            except ssl.SSLWantReadError:
                return None
            except ssl.SSLError as exc:
                return _reason(exc)
    return "the handshake did not finish"


def _hub_client_context(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    """A client of the hub's FSPIOP port on the hub's machine (the simulated DFSPs, and the local
    tools through `tool_context`): the hub's own certificate as its client certificate; it trusts
    the hub's certificate itself (also a self-signed one) and the client CA. No host name check:
    it connects to the address the hub listens on, which need not be the name in its certificate."""
    context = _trusting_hub(cert, client_ca)
    _load_chain(context, cert, key)
    return context


def _trusting_hub(cert: Path, client_ca: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.check_hostname = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    _load_ca(context, "--tls-cert", cert)
    if client_ca is not None:
        _load_ca(context, "--tls-client-ca", client_ca)
    return context


def _first_certificate(path: Path) -> bytes:
    """The DER of the first certificate in a PEM file (the leaf; its chain may follow)."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(serialization.Encoding.DER)
    except (OSError, ValueError) as exc:
        raise StartupError(f"--tls-cert {path}: not a PEM certificate ({_reason(exc)})") from None


# --------------------------------------------------------------------------- binding FSPIOP-Source


class SourceBinding:
    """Mutual TLS: a request's FSPIOP-Source must be named by the client's certificate, by its
    subject CN or one of its DNS subjectAltNames, exactly (docs/reliability.md, "Mutual TLS").

    The hub's own certificate (byte for byte the --tls-cert; the simulated DFSPs present it, and so
    may the operator's tools on the hub's machine) speaks for every participant: whoever holds its
    private key runs the hub and controls every participant through the Admin API anyway. The
    Hub itself is never a valid source (Directory.require_active refuses it first).

    The names are read once per connection (the certificate cannot change on it) and kept in
    Sanic's per-connection `conn_info.ctx`."""

    ANY: frozenset[str] = frozenset({"*"})  # the hub's own certificate

    def __init__(self, hub_certificate: bytes) -> None:
        self._hub_certificate = hub_certificate

    def check(self, request: Any, source: str) -> None:
        """3100 unless the client certificate of `request`'s connection names `source`."""
        names = self.names(request)
        if names is self.ANY or source in names:
            return
        shown = ", ".join(sorted(names)[:4]) or "nothing"
        shown = shown if len(shown) <= 48 else shown[:47] + "…"  # errorDescription holds 128 characters
        raise FspiopError("3100", f"FSPIOP-Source {source} is not named by the client certificate (it names {shown})")

    def names(self, request: Any) -> frozenset[str]:
        info = getattr(request, "conn_info", None)
        ctx = getattr(info, "ctx", None)
        names = getattr(ctx, "fspiop_source_names", None)
        if names is None:
            names = self._names_of(request.transport.get_extra_info("ssl_object"))
            if ctx is not None:
                ctx.fspiop_source_names = names
        return names

    def _names_of(self, ssl_object: Any) -> frozenset[str]:
        if ssl_object is None:  # never with --tls-client-ca (every connection is TLS): refuse
            return frozenset()
        if ssl_object.getpeercert(binary_form=True) == self._hub_certificate:
            return self.ANY
        return certificate_names(ssl_object.getpeercert() or {})


def certificate_names(peer: dict[str, Any]) -> frozenset[str]:
    """The subject CNs and DNS subjectAltNames of a certificate as `SSLSocket.getpeercert()` gives it."""
    common = [value for rdn in peer.get("subject", ()) for name, value in rdn if name == "commonName"]
    dns = [value for kind, value in peer.get("subjectAltName", ()) if kind == "DNS"]
    return frozenset(common + dns)


# --------------------------------------------------------------------------- the tools' client side


def runtime_info(settings: Settings) -> dict[str, str | None] | None:
    """What hub.json records about TLS, for the local tools: absolute paths of the hub's files."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    return {"cert": str(settings.tls_cert.resolve()), "key": str(settings.tls_key.resolve()),
            "clientCa": str(settings.tls_client_ca.resolve()) if settings.tls_client_ca else None}


def tool_context(cert: Path | None, key: Path | None, ca: Path | None,
                 hub: dict[str, Any] | None = None) -> ssl.SSLContext | None:
    """The SSL context of a tool calling the hub's FSPIOP port (`miniloop scenario`, `bench`, `dfsp`).

    `cert`/`key` (--tls-cert/--tls-key): its client certificate; `ca` (--tls-ca): the CA it trusts
    the hub's certificate with, host name checked. `hub`: the `tls` entry of the hub.json of a
    local hub: what was not given is taken from it (the hub's own certificate as the client's, and
    the trust of the simulated DFSPs). None: nothing to change (plain http, or https with the
    system's CAs). A bad file is a ConfigError: one line, exit status 2."""
    if (cert is None) != (key is None):
        raise ConfigError("--tls-cert and --tls-key go together: give both (the client certificate and its key)")
    for flag, path in (("--tls-cert", cert), ("--tls-key", key), ("--tls-ca", ca)):
        if path is not None:
            _check_file(flag, path)
    hub_files = None
    if hub and hub.get("cert") and hub.get("key"):
        hub_files = (Path(hub["cert"]), Path(hub["key"]), Path(hub["clientCa"]) if hub.get("clientCa") else None)
        if ca is None:  # trust the hub as the simulated DFSPs do; present the hub's certificate or its own
            try:
                context = _trusting_hub(hub_files[0], hub_files[2])
                if cert is None:
                    _load_chain(context, hub_files[0], hub_files[1])
            except MiniloopError as exc:
                raise ConfigError(f"the hub's TLS files named in its hub.json cannot be used: {exc}") from None
            if cert is not None and key is not None:
                _load_chain(context, cert, key)
            return context
    if ca is None and cert is None:
        return None
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca) if ca else None)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"--tls-ca {ca}: not a PEM CA certificate ({_reason(exc)})") from None
    if cert is not None and key is not None:
        _load_chain(context, cert, key)
    elif hub_files is not None:
        _load_chain(context, hub_files[0], hub_files[1])
    return context


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
