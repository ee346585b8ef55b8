"""Optional mutual TLS on the FSPIOP port, over a real demo hub: a throwaway CA, a certificate for
the hub (server and client) and some for DFSPs, all made here (tests/pki.py). The simulated
DFSPs still pay each other over TLS, a client without a certificate is refused at the handshake,
a DFSP's certificate gets in but sends only as the participant it names (the hub's own speaks for
every participant), and the hub's callbacks to an https endpoint present the hub's certificate.
The tools reach such a hub: `miniloop scenario` and `miniloop dfsp` (the hub's certificate from
hub.json, or their own) and `miniloop bench --url`. Bad files stop them with one line and exit 2.
"""

from __future__ import annotations

import re
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fspiop_dfsp import imf_date, new_msisdn
from pki import Ca

from conftest import Hub, HubLauncher, error_code, miniloop_cmd, wait_until
from miniloop.fspiop.endpoints import for_base_url

HUB_CN = "miniloop-hub"
DFSP_CN = "tlsdfsp"  # a DFSP onboarded by the tests, its certificate's CN
ALIAS_DFSP = "tlsalias"  # a DFSP named only by a DNS subjectAltName of a certificate whose CN is a company's
REF_DFSP = "tlsref"  # `miniloop dfsp`'s, with its own certificate
PAYER, PAYEE = "greenwallet", "bluewallet"  # simulated DFSPs of the demo hub


@dataclass
class Pki:
    ca: Path
    hub_cert: Path
    hub_key: Path
    dfsp_cert: Path
    dfsp_key: Path
    alias_cert: Path
    alias_key: Path
    ref_cert: Path
    ref_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca = Ca.make(tmp_path_factory.mktemp("pki"))
    hub_cert, hub_key = ca.issue(HUB_CN)
    dfsp_cert, dfsp_key = ca.issue(DFSP_CN)
    alias_cert, alias_key = ca.issue("Alias Bank Ltd", dns=("localhost", ALIAS_DFSP), file_name="alias")
    ref_cert, ref_key = ca.issue(REF_DFSP)
    return Pki(ca.path, hub_cert, hub_key, dfsp_cert, dfsp_key, alias_cert, alias_key, ref_cert, ref_key)


@pytest.fixture(scope="module")
def hub(module_hubs: HubLauncher, pki: Pki) -> Hub:
    return module_hubs.start("--tls-cert", str(pki.hub_cert), "--tls-key", str(pki.hub_key),
                             "--tls-client-ca", str(pki.ca), "--tls-callback-ca", str(pki.ca))


def client_context(pki: Pki, with_certificate: bool, cert: Path | None = None, key: Path | None = None,
                   ) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if with_certificate:
        context.load_cert_chain(cert or pki.dfsp_cert, key or pki.dfsp_key)
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


@pytest.fixture(scope="module")
def onboarded(hub: Hub, tls_dfsp: _TlsDfsp) -> Hub:
    """DFSP_CN and ALIAS_DFSP on the hub, their callbacks at the https endpoint `tls_dfsp`."""
    for name in (DFSP_CN, ALIAS_DFSP):
        hub.onboard(name)
        for endpoint_type, value in for_base_url(f"{tls_dfsp.url}/{name}").items():
            r = hub.admin.post(f"/participants/{name}/endpoints", json={"type": endpoint_type, "value": value})
            assert r.status_code == 201, r.text
    return hub


def received(tls_dfsp: _TlsDfsp, prefix: str) -> list[tuple[str, str, str | None]]:
    with tls_dfsp.lock:
        return [x for x in tls_dfsp.received if x[1].startswith(prefix)]


def lookup(client: httpx.Client, hub: Hub, source: str, msisdn: str) -> httpx.Response:
    return client.get(f"{hub.urls['fspiop']}/parties/MSISDN/{msisdn}", headers={
        "accept": "application/vnd.interoperability.parties+json;version=1", "date": imf_date(),
        "fspiop-source": source})


def test_callbacks_to_an_https_endpoint_present_the_hubs_certificate(onboarded: Hub, pki: Pki,
                                                                    tls_dfsp: _TlsDfsp) -> None:
    msisdn = new_msisdn()  # nobody's: the hub answers with an error callback
    with httpx.Client(verify=client_context(pki, with_certificate=True), timeout=10) as client:
        r = lookup(client, onboarded, DFSP_CN, msisdn)
    assert r.status_code == 202, r.text
    path = f"/{DFSP_CN}/parties/MSISDN/{msisdn}/error"
    (callback,) = wait_until(lambda: received(tls_dfsp, path), 15, what="the error callback over https")
    assert callback == ("PUT", path, HUB_CN)


def _prepare(client: httpx.Client, hub: Hub, source: str) -> httpx.Response:
    from fspiop_dfsp import Transfer, dumps

    transfer = Transfer(PAYER, PAYEE, amount="1")
    media = "application/vnd.interoperability.transfers+json;version=1.1"
    return client.post(f"{hub.urls['fspiop']}/transfers", content=dumps(transfer.body), headers={
        "accept": media, "content-type": media, "date": imf_date(), "fspiop-source": source,
        "fspiop-destination": PAYEE})


def test_a_dfsp_certificate_sends_only_as_the_participant_it_names(onboarded: Hub, pki: Pki) -> None:
    position = onboarded.account_value(PAYER, "POSITION")
    with httpx.Client(verify=client_context(pki, with_certificate=True), timeout=10) as client:
        assert lookup(client, onboarded, DFSP_CN, new_msisdn()).status_code == 202  # as itself: in
        r = _prepare(client, onboarded, PAYER)  # the same connection, as another DFSP: refused
    assert r.status_code == 400, r.text
    assert error_code(r) == "3100", r.text
    description = r.json()["errorInformation"]["errorDescription"]
    assert f"FSPIOP-Source {PAYER} is not named by the client certificate (it names localhost, {DFSP_CN})" \
        in description, description
    assert onboarded.account_value(PAYER, "POSITION") == position  # nothing reserved


def test_a_dns_subject_alt_name_names_a_participant_too(onboarded: Hub, pki: Pki) -> None:
    context = client_context(pki, True, pki.alias_cert, pki.alias_key)  # CN "Alias Bank Ltd", DNS tlsalias
    with httpx.Client(verify=context, timeout=10) as client:
        assert lookup(client, onboarded, ALIAS_DFSP, new_msisdn()).status_code == 202
        r = lookup(client, onboarded, DFSP_CN, new_msisdn())
    assert r.status_code == 400 and error_code(r) == "3100", r.text


def test_the_hubs_own_certificate_speaks_for_every_participant(onboarded: Hub, pki: Pki) -> None:
    context = client_context(pki, True, pki.hub_cert, pki.hub_key)
    with httpx.Client(verify=context, timeout=10) as client:
        for source in (PAYER, DFSP_CN):
            r = lookup(client, onboarded, source, new_msisdn())
            assert r.status_code == 202, (source, r.text)
        r = lookup(client, onboarded, "Hub", new_msisdn())  # but never as the Hub
    assert r.status_code == 400 and error_code(r) == "3100", r.text


def test_tls_any_source_turns_the_binding_off(hubs: HubLauncher, pki: Pki) -> None:
    hub = hubs.start("--tls-cert", str(pki.hub_cert), "--tls-key", str(pki.hub_key), "--tls-client-ca", str(pki.ca),
                     "--tls-any-source")
    with httpx.Client(verify=client_context(pki, with_certificate=True), timeout=10) as client:
        r = lookup(client, hub, PAYER, new_msisdn())
    assert r.status_code == 202, r.text


# --------------------------------------------------------------------------- the tools


def test_scenario_run_on_a_mutual_tls_hub_uses_the_hubs_certificate(onboarded: Hub, pki: Pki, run_cli: Any) -> None:
    """The conformance pack: the engine's payer and the reference DFSP send FSPIOP to the hub
    over mutual TLS with the certificate hub.json names (the hub's own)."""
    assert onboarded.info["tls"] == {"cert": str(pki.hub_cert.resolve()), "key": str(pki.hub_key.resolve()),
                                     "clientCa": str(pki.ca.resolve())}
    r = run_cli("scenario", "run", "conformance", "--data-dir", str(onboarded.data_dir), timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "Scenario passed." in r.stdout, r.stdout[-3000:]


def test_scenario_run_with_a_certificate_that_names_other_dfsps_is_refused(onboarded: Hub, pki: Pki,
                                                                           run_cli: Any) -> None:
    """Its own certificate instead of the hub's: the engine's DFSPs are not named by it."""
    r = run_cli("scenario", "run", "conformance", "--data-dir", str(onboarded.data_dir), "--tls-cert",
                str(pki.dfsp_cert), "--tls-key", str(pki.dfsp_key), "--tls-ca", str(pki.ca), timeout=120)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    assert "is not named by the client certificate" in r.stdout, r.stdout[-3000:]


def test_bench_reaches_a_mutual_tls_hub(onboarded: Hub, pki: Pki, run_cli: Any, tmp_path: Path) -> None:
    import json

    out = tmp_path / "bench.json"
    r = run_cli("bench", "--duration", "3", "--concurrency", "4", "--url", onboarded.urls["fspiop"],
                "--admin-url", onboarded.urls["admin"], "--als-url", onboarded.urls["als_admin"],
                "--tls-cert", str(pki.hub_cert), "--tls-key", str(pki.hub_key), "--tls-ca", str(pki.ca),
                "--json", str(out), timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    (result,) = json.loads(out.read_text())["results"]
    assert result["completed"] > 0 and result["errors"] == {}, result


def test_miniloop_dfsp_answers_over_mutual_tls_with_its_own_certificate(onboarded: Hub, pki: Pki, tls_dfsp: _TlsDfsp,
                                                                       cli_env: dict[str, str]) -> None:
    msisdn = new_msisdn()
    process = subprocess.Popen(
        miniloop_cmd("dfsp", "--name", REF_DFSP, "--hub", onboarded.urls["fspiop"], "--port", "0", "--party",
                     f"MSISDN/{msisdn}", "--tls-cert", str(pki.ref_cert), "--tls-key", str(pki.ref_key),
                     "--tls-ca", str(pki.ca)),
        env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "reference DFSP tlsref listening on http://127.0.0.1:PORT ..."
        found = re.search(r"listening on (http://\S+)", line)
        assert found, line + (process.stderr.read() if process.poll() is not None and process.stderr else "")
        onboarded.onboard(REF_DFSP)
        for endpoint_type, value in for_base_url(found.group(1)).items():
            r = onboarded.admin.post(f"/participants/{REF_DFSP}/endpoints", json={"type": endpoint_type, "value": value})
            assert r.status_code == 201, r.text
        media = "application/vnd.interoperability.participants+json;version=1.1"
        with httpx.Client(verify=client_context(pki, True, pki.ref_cert, pki.ref_key), timeout=10) as client:
            r = client.post(f"{onboarded.urls['fspiop']}/participants/MSISDN/{msisdn}",
                            json={"fspId": REF_DFSP, "currency": "USD"}, headers={
                                "accept": media, "content-type": media, "date": imf_date(), "fspiop-source": REF_DFSP})
        assert r.status_code == 202, r.text
        with httpx.Client(verify=client_context(pki, with_certificate=True), timeout=10) as client:
            assert lookup(client, onboarded, DFSP_CN, msisdn).status_code == 202
        # the hub asks tlsref; tlsref's PUT /parties reaches the hub over mutual TLS, which forwards it
        path = f"/{DFSP_CN}/parties/MSISDN/{msisdn}"
        (callback,) = wait_until(lambda: received(tls_dfsp, path), 15, what="the party, from the reference DFSP")
        assert callback == ("PUT", path, HUB_CN)
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.parametrize("case", ["missing cert", "not a certificate", "key without cert", "client ca alone",
                                  "bad client ca", "env missing callback ca", "any source without client ca",
                                  "client ca refusing the hub's certificate"])
def test_bad_tls_files_are_one_line_and_exit_2(case: str, pki: Pki, run_cli: Any, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    missing = str(tmp_path / "nope.pem")
    (tmp_path / "other").mkdir()
    other_ca = Ca.make(tmp_path / "other", "another CA").path
    args, env = {
        "missing cert": (["--tls-cert", missing, "--tls-key", str(pki.hub_key)], {}),
        "not a certificate": (["--tls-cert", str(junk), "--tls-key", str(pki.hub_key)], {}),
        "key without cert": (["--tls-key", str(pki.hub_key)], {}),
        "client ca alone": (["--tls-client-ca", str(pki.ca)], {}),
        "bad client ca": (["--tls-cert", str(pki.hub_cert), "--tls-key", str(pki.hub_key),
                           "--tls-client-ca", str(junk)], {}),
        "env missing callback ca": ([], {"MINILOOP_TLS_CALLBACK_CA": missing}),
        "any source without client ca": (["--tls-cert", str(pki.hub_cert), "--tls-key", str(pki.hub_key),
                                          "--tls-any-source"], {}),
        # the simulated DFSPs present the hub's certificate: they would never get in
        "client ca refusing the hub's certificate": (["--tls-cert", str(pki.hub_cert), "--tls-key", str(pki.hub_key),
                                                      "--tls-client-ca", str(other_ca)], {}),
    }[case]
    result = run_cli("up", "--headless", "--data-dir", str(tmp_path / "data"), "--fspiop-port", "0",
                     "--admin-port", "0", "--settlement-port", "0", "--als-admin-port", "0", "--sim-port", "0",
                     "--wallet-port", "0", *args, env=env, timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("miniloop: ") and "--tls-" in lines[0], result.stderr


def test_a_hub_without_simulated_dfsps_may_use_a_client_ca_that_refuses_its_certificate(
        hubs: HubLauncher, pki: Pki, tmp_path: Path) -> None:
    other_ca = Ca.make(tmp_path, "another CA").path
    hub = hubs.start("--tls-cert", str(pki.hub_cert), "--tls-key", str(pki.hub_key), "--tls-client-ca", str(other_ca),
                     empty=True)
    assert hub.info["tls"]["clientCa"] == str(other_ca.resolve())


@pytest.mark.parametrize(("command", "case"), [("scenario", "missing cert"), ("scenario", "bad ca"),
                                               ("dfsp", "key without cert"), ("bench", "not a certificate")])
def test_bad_tls_files_of_the_tools_are_one_line_and_exit_2(command: str, case: str, pki: Pki, run_cli: Any,
                                                           tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    missing = str(tmp_path / "nope.pem")
    args = {
        "missing cert": ["--tls-cert", missing, "--tls-key", str(pki.dfsp_key)],
        "not a certificate": ["--tls-cert", str(junk), "--tls-key", str(pki.dfsp_key)],
        "key without cert": ["--tls-key", str(pki.dfsp_key)],
        "bad ca": ["--tls-ca", str(junk)],
    }[case]
    data_dir = str(tmp_path / "data")  # no hub runs there: the files are checked before anything starts
    before = {
        "scenario": ["scenario", "run", "p2p", "--data-dir", data_dir],
        "dfsp": ["dfsp", "--hub", "https://127.0.0.1:9", "--port", "0"],
        "bench": ["bench", "--duration", "1", "--url", "https://127.0.0.1:9", "--admin-url", "http://127.0.0.1:9",
                  "--als-url", "http://127.0.0.1:9"],
    }[command]
    result = run_cli(*before, *args, timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("miniloop: ") and "--tls-" in lines[0], result.stderr
    assert "temporary demo hub" not in result.stdout


def test_bench_tls_flags_go_with_url(run_cli: Any, pki: Pki) -> None:
    r = run_cli("bench", "--tls-ca", str(pki.ca))
    assert r.returncode == 2 and r.stderr.strip() == (
        "miniloop: bench: --tls-cert, --tls-key, --tls-ca and --admin-token go with --url "
        "(the hub bench starts itself needs none)"), r.stderr
