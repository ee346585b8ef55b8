"""Optional mutual TLS on the FSPIOP port, over a real demo hub: a throwaway CA, a certificate for
the hub (server and client) and one for a DFSP, all made here with `cryptography`. The simulated
DFSPs still pay each other over TLS, a client without a certificate is refused at the handshake,
a DFSP's certificate gets in, and the hub's callbacks to an https endpoint present the hub's
certificate. Bad files stop `miniloop up` with one line and exit status 2.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fspiop_dfsp import imf_date, new_msisdn

from conftest import Hub, HubLauncher, wait_until
from miniloop.fspiop.endpoints import for_base_url

HUB_CN = "miniloop-hub"
DFSP_CN = "tlsdfsp"


@dataclass
class Pki:
    ca: Path
    hub_cert: Path
    hub_key: Path
    dfsp_cert: Path
    dfsp_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def _issue(cn: str, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, folder: Path,
           ) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost, good for both TLS servers and clients."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{cn}.pem", folder / f"{cn}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_path)
    return cert_path, key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_cert = (
        x509.CertificateBuilder().subject_name(_name("miniloop test CA")).issuer_name(_name("miniloop test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca = folder / "ca.pem"
    ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    hub_cert, hub_key = _issue(HUB_CN, ca_key, ca_cert, folder)
    dfsp_cert, dfsp_key = _issue(DFSP_CN, ca_key, ca_cert, folder)
    return Pki(ca, hub_cert, hub_key, dfsp_cert, dfsp_key)


@pytest.fixture(scope="module")
def hub(module_hubs: HubLauncher, pki: Pki) -> Hub:
    return module_hubs.start("--tls-cert", str(pki.hub_cert), "--tls-key", str(pki.hub_key),
                             "--tls-client-ca", str(pki.ca), "--tls-callback-ca", str(pki.ca))


def client_context(pki: Pki, with_certificate: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if with_certificate:
        context.load_cert_chain(pki.dfsp_cert, pki.dfsp_key)
    return context


# --------------------------------------------------------------------------- an https DFSP endpoint


class _Handler(BaseHTTPRequestHandler):
    server: _TlsDfsp
    protocol_version = "HTTP/1.0"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        peer = self.connection.getpeercert()  # type: ignore[attr-defined]
        subject = dict(item for rdn in (peer or {}).get("subject", ()) for item in rdn)
        with self.server.lock:
            self.server.received.append((self.command, self.path, subject.get("commonName")))
        self.send_response(200 if self.command in ("PUT", "PATCH") else 202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = do_PATCH = _handle

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _TlsDfsp(ThreadingHTTPServer):
    """A DFSP's callback server over TLS that asks the caller for a certificate from the CA."""

    daemon_threads = True

    def __init__(self, pki: Pki) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
        context.load_cert_chain(pki.dfsp_cert, pki.dfsp_key)
        context.verify_mode = ssl.CERT_REQUIRED
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.lock = threading.Lock()
        self.received: list[tuple[str, str, str | None]] = []
        self.url = f"https://127.0.0.1:{self.server_address[1]}"


@pytest.fixture(scope="module")
def tls_dfsp(pki: Pki) -> Iterator[_TlsDfsp]:
    server = _TlsDfsp(pki)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


# --------------------------------------------------------------------------- the tests


def test_a_simulated_p2p_payment_commits_over_mutual_tls(hub: Hub) -> None:
    assert hub.urls["fspiop"].startswith("https://127.0.0.1:"), hub.urls
    r = httpx.post(f"{hub.urls['sim']}/greenwallet/send", timeout=40, json={
        "from": "27710000001", "to": {"idType": "MSISDN", "id": "27720000001"}, "amount": "10", "currency": "USD"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "COMMITTED", r.text


def test_a_client_without_a_certificate_is_refused_at_the_handshake(hub: Hub, pki: Pki) -> None:
    with httpx.Client(verify=client_context(pki, with_certificate=False), timeout=10) as client:
        with pytest.raises(httpx.TransportError):
            client.get(f"{hub.urls['fspiop']}/health")
    with httpx.Client(timeout=10) as client:  # plain http on the https port gets nowhere either
        with pytest.raises(httpx.TransportError):
            client.get(hub.urls["fspiop"].replace("https://", "http://") + "/health")


def test_a_dfsp_certificate_from_the_ca_gets_in(hub: Hub, pki: Pki) -> None:
    with httpx.Client(verify=client_context(pki, with_certificate=True), timeout=10) as client:
        r = client.get(f"{hub.urls['fspiop']}/health")
    assert r.status_code == 200, r.text


def test_callbacks_to_an_https_endpoint_present_the_hubs_certificate(hub: Hub, pki: Pki, tls_dfsp: _TlsDfsp) -> None:
    hub.onboard(DFSP_CN)
    for endpoint_type, value in for_base_url(f"{tls_dfsp.url}/{DFSP_CN}").items():
        r = hub.admin.post(f"/participants/{DFSP_CN}/endpoints", json={"type": endpoint_type, "value": value})
        assert r.status_code == 201, r.text
    msisdn = new_msisdn()  # nobody's: the hub answers with an error callback
    with httpx.Client(verify=client_context(pki, with_certificate=True), timeout=10) as client:
        r = client.get(f"{hub.urls['fspiop']}/parties/MSISDN/{msisdn}", headers={
            "accept": "application/vnd.interoperability.parties+json;version=1", "date": imf_date(),
            "fspiop-source": DFSP_CN})
    assert r.status_code == 202, r.text

    def arrived() -> Any:
        with tls_dfsp.lock:
            return [x for x in tls_dfsp.received if x[1].startswith(f"/{DFSP_CN}/parties/MSISDN/{msisdn}/error")]

    (callback,) = wait_until(arrived, 15, what="the error callback over https")
    assert callback == ("PUT", f"/{DFSP_CN}/parties/MSISDN/{msisdn}/error", HUB_CN)


@pytest.mark.parametrize("case", ["missing cert", "not a certificate", "key without cert", "client ca alone",
                                  "bad client ca", "env missing callback ca"])
def test_bad_tls_files_are_one_line_and_exit_2(case: str, pki: Pki, run_cli: Any, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    missing = str(tmp_path / "nope.pem")
    args, env = {
        "missing cert": (["--tls-cert", missing, "--tls-key", str(pki.hub_key)], {}),
        "not a certificate": (["--tls-cert", str(junk), "--tls-key", str(pki.hub_key)], {}),
        "key without cert": (["--tls-key", str(pki.hub_key)], {}),
        "client ca alone": (["--tls-client-ca", str(pki.ca)], {}),
        "bad client ca": (["--tls-cert", str(pki.hub_cert), "--tls-key", str(pki.hub_key),
                           "--tls-client-ca", str(junk)], {}),
        "env missing callback ca": ([], {"MINILOOP_TLS_CALLBACK_CA": missing}),
    }[case]
    result = run_cli("up", "--headless", "--data-dir", str(tmp_path / "data"), "--fspiop-port", "0",
                     "--admin-port", "0", "--settlement-port", "0", "--als-admin-port", "0", "--sim-port", "0",
                     "--wallet-port", "0", *args, env=env, timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("miniloop: ") and "--tls-" in lines[0], result.stderr
