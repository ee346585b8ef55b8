"""Fuzzing the FSPIOP, Admin, Settlement and ALS admin APIs of a demo hub with schemathesis, driven by our own
descriptions (GET /openapi.json, miniloop.api.openapi).

For every operation, schemathesis makes requests that fit the description (positive) and
requests that break it (negative), a bounded number of each (MINILOOP_FUZZ_EXAMPLES, default 3:
schemathesis takes about 0.1 s of CPU to make one FSPIOP request, and there are 76 operations).
Every answer must be:

- never a 5xx (but 501 2002 where the description says the hub does not serve the route);
- a 4xx only with the FSPIOP error body `{"errorInformation": {"errorCode", "errorDescription"}}`,
  whose code is of the client-error family (3xxx) and matches the status (404 3002, 405 3000,
  406 3001, 413 3104, 400 any other 3xxx; the Oracle API's 404 may be 3204, party not found);
- on the FSPIOP API, a request refused synchronously leaves the ledger as it was (the positions of
  every DFSP, read through the Admin API before and after);

and after each API's run, `miniloop ledger check` finds the books consistent.

On the FSPIOP API, the FSPIOP-Source and FSPIOP-Destination headers are often swapped for the
demo hub's DFSPs, and the Date mostly for the present, so that requests get past the header checks and
reach the body rules. A longer run by hand: `MINILOOP_FUZZ_EXAMPLES=500 pytest tests/test_fuzz.py`
(docs/reliability.md, "Bad input"). The sim and wallet ports are fuzzed with the same `fuzz()`
(tests/test_fuzz_sim.py), which is why it takes a few hooks.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import pytest

from tests.conftest import miniloop_cmd

schemathesis = pytest.importorskip("schemathesis")
requests = pytest.importorskip("requests")
from hypothesis import HealthCheck, Phase, given, settings, strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

EXAMPLES = int(os.environ.get("MINILOOP_FUZZ_EXAMPLES", "3"))
DFSPS = ("greenwallet", "bluewallet", "merchantbank", "budgetapp")
STATUS_CODES = {404: {"3002"}, 405: {"3000"}, 406: {"3001"}, 413: {"3104"}}
TIMEOUT_S = 15


@pytest.fixture(scope="module")
def hub(module_hubs: Any) -> Any:
    return module_hubs.start()


def _root(hub: Any, name: str) -> str:
    return hub.urls[name].removesuffix("/v2")


def answer_problem(response: Any, described: set[str] = frozenset(), *, html_refusals: bool = False,
                   codes: dict[int, set[str]] = STATUS_CODES) -> str | None:
    """What is wrong with an answer, or None. `described`: the statuses the operation's
    description names (a 501 is right where the description says the hub does not serve it; a
    502 or 504 where it says a driving call's flow answers so, with a body saying what happened).
    `html_refusals`: the description's 4XX include a page for people (the sim's login page).
    `codes`: the error codes each status may carry (STATUS_CODES; 400 any other client error)."""
    status = response.status_code
    if status == 501 and "501" in described and _outcome(response) == "501 2002":
        return None
    if status in (502, 504) and str(status) in described and _flow_body(response):
        return None
    if status >= 500:
        return f"answered {status}: {response.text[:300]!r}"
    if status < 400:
        return None
    if html_refusals and _content_type(response).startswith("text/html"):
        return None
    try:
        body = response.json()
        info = body["errorInformation"]
        code, description = info["errorCode"], info["errorDescription"]
    except (ValueError, KeyError, TypeError):
        return f"answered {status} without an FSPIOP error body: {response.text[:200]!r}"
    if set(body) != {"errorInformation"} or not isinstance(code, str) or not isinstance(description, str):
        return f"answered {status} with a malformed error body: {body!r}"
    expected = codes.get(status)
    if expected is not None and code not in expected:
        return f"answered {status} with code {code}, expected {sorted(expected)}"
    if expected is None and (not code.startswith("3") or code in ("3001", "3002")):
        return f"answered {status} with code {code}: not a client error of that status"
    return None


class Positions:
    """Every DFSP's positions, through the Admin API: what a refused FSPIOP request must not move."""

    def __init__(self, hub: Any, session: Any) -> None:
        self.admin = _root(hub, "admin")
        self.session = session

    def read(self) -> dict[str, Any]:
        return {name: self.session.get(f"{self.admin}/participants/{name}/positions", timeout=TIMEOUT_S).json()
                for name in DFSPS}

    def quiet(self) -> dict[str, Any]:
        """The positions once they stop moving (an earlier accepted request may still be at work)."""
        last = self.read()
        for _ in range(20):
            time.sleep(0.25)
            now = self.read()
            if now == last:
                return now
            last = now
        return last


def _content_type(response: Any) -> str:
    """The answer's Content-Type: schemathesis' answers keep headers as lists under lower-case names."""
    value = response.headers.get("content-type") or response.headers.get("Content-Type") or ""
    return value[0] if isinstance(value, list) else value


def _flow_body(response: Any) -> bool:
    """A driving call's answer about its flow: a JSON object with its state, error or error body."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and bool({"state", "error", "errorInformation"} & set(body))


def _moves_money(method: str, path: str) -> bool:
    return method in ("POST", "PUT") and path.startswith(("/transfers", "/bulkTransfers"))


def _breakable(operation: dict[str, Any]) -> bool:
    """Whether schemathesis can break the description of an operation: a string path parameter
    that breaks its rule would be another path, so it needs a body, a header, a query or a
    number in the path."""
    return "requestBody" in operation or any(
        p["in"] != "path" or p["schema"].get("type") != "string" for p in operation["parameters"])


def fuzz(hub: Any, name: str, part: int = 0, parts: int = 1,
         outcomes: Counter[str] | None = None, *, skip: tuple[str, ...] = ("/metrics",),
         adjust: Callable[[Any, Any, Any], None] | None = None,
         after: Callable[[Any], None] | None = None,
         codes: dict[int, set[str]] = STATUS_CODES) -> tuple[Counter[str], list[str]]:
    """Fuzz every operation of one API (or one of its `parts`); (requests per operation, problems).
    `outcomes` counts the answers by status and error code. `skip`: paths not fuzzed (/metrics is
    the Prometheus text, nothing to check). `adjust(case, data, mode)` changes a case before it is
    sent (`data` draws more), `after(case)` runs once it was answered, `codes` as answer_problem's
    (tests/test_fuzz_sim.py)."""
    outcomes = Counter() if outcomes is None else outcomes
    base = _root(hub, name)
    schema = schemathesis.openapi.from_url(base + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()][part::parts]
    session = requests.Session()
    positions = Positions(hub, session)
    tried: Counter[str] = Counter()
    problems: list[str] = []
    fspiop = name == "fspiop"

    described = session.get(base + "/openapi.json", timeout=TIMEOUT_S).json()["paths"]
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        if operation.path in skip:
            continue
        moves_money = fspiop and _moves_money(operation.method.upper(), operation.path)
        description = described[operation.path][operation.method.lower()]
        html_refusals = "text/html" in description["responses"].get("4XX", {}).get("content", {})
        modes = [GenerationMode.POSITIVE]
        if _breakable(description):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
            @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
            def run(case: Any, data: Any) -> None:
                if fspiop and case.headers is not None:
                    for header in ("FSPIOP-Source", "FSPIOP-Destination"):
                        if header in case.headers:
                            case.headers[header] = data.draw(st.sampled_from((case.headers[header],) + DFSPS))
                    if "Date" in case.headers and data.draw(st.integers(0, 3)):
                        case.headers["Date"] = formatdate(usegmt=True)
                if adjust is not None:
                    adjust(case, data, mode)
                before = positions.read() if moves_money else None
                try:
                    response = case.call(base_url=base, session=session, timeout=TIMEOUT_S, headers=_accept(case),
                                         allow_redirects=False)
                finally:
                    if after is not None:
                        after(case)
                tried[label] += 1
                outcomes[_outcome(response)] += 1
                problem = answer_problem(response, set(description["responses"]), html_refusals=html_refusals,
                                         codes=codes)
                if problem is None and before is not None and response.status_code >= 400:
                    if positions.read() != before:  # moved: by this request, or by an earlier one?
                        settled = positions.quiet()
                        again = case.call(base_url=base, session=session, timeout=TIMEOUT_S, headers=_accept(case))
                        if again.status_code >= 400 and positions.quiet() != settled:
                            problem = f"refused with {again.status_code}, yet the positions moved"
                assert problem is None, f"{label}: {problem}\n{case.as_curl_command()}"

            try:
                run()
            except Unsatisfiable:
                pass  # nothing to break in this operation (no parameters, no body)
            except AssertionError as exc:
                problems.append(str(exc).split("\n\nFalsifying")[0][:1500])
            except Exception as exc:  # schemathesis could not make a case of this mode
                if "negative" in str(exc).lower() or "generat" in str(exc).lower():
                    continue
                problems.append(f"{label} ({mode}): {type(exc).__name__}: {str(exc)[:500]}")
    return tried, problems


def _accept(case: Any) -> dict[str, str] | None:
    """The generated Accept header, given again: schemathesis 4 otherwise sends its own `*/*` (OpenAPI
    leaves an Accept parameter to the client), which the FSPIOP API refuses."""
    value = (case.headers or {}).get("Accept")
    return {"Accept": value} if isinstance(value, str) else None


def _outcome(response: Any) -> str:
    try:
        return f"{response.status_code} {response.json()['errorInformation']['errorCode']}"
    except (ValueError, KeyError, TypeError):
        return str(response.status_code)


def ledger_check(hub: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(miniloop_cmd("ledger", "check", "--data-dir", str(hub.data_dir), "--grace", "3600"),
                          capture_output=True, text=True, env=hub.env, timeout=120)


# the Oracle API (under /oracle on the ALS admin port) answers a lookup of a party nobody serves
# with 404 and 3204 "Party not found"
ALS_ADMIN_CODES = {**STATUS_CODES, 404: {"3002", "3204"}}
FSPIOP_PARTS = 3  # the FSPIOP API has most operations: in parts, so that xdist can share them out


@pytest.mark.parametrize(("name", "part", "parts"), [
    *(("fspiop", part, FSPIOP_PARTS) for part in range(FSPIOP_PARTS)), ("admin", 0, 1), ("settlement", 0, 1),
    ("als_admin", 0, 1)])
def test_fuzz(hub: Any, name: str, part: int, parts: int) -> None:
    started = time.monotonic()
    outcomes: Counter[str] = Counter()
    tried, problems = fuzz(hub, name, part, parts, outcomes, codes=ALS_ADMIN_CODES if name == "als_admin" else STATUS_CODES)
    total = sum(tried.values())
    summary = (f"{name} {part + 1}/{parts}: {total} requests over {len(tried)} operations "
               f"in {time.monotonic() - started:.1f} s, {len(problems)} problems")
    report = os.environ.get("MINILOOP_FUZZ_REPORT")  # a file the long run appends its numbers to
    if report:
        with open(report, "a") as out:
            out.write(summary + "\n  answers: " + ", ".join(f"{k}: {v}" for k, v in outcomes.most_common()) + "\n"
                      + "".join(f"  {p}\n" for p in problems))
    assert not problems, "\n\n".join(problems)
    assert len(tried) >= {"fspiop": 70, "admin": 20, "settlement": 14, "als_admin": 20}[name] // parts
    checked = ledger_check(hub)
    assert checked.returncode == 0, checked.stdout + checked.stderr
