"""What a scenario run found: the messages it saw, the checks it made, the deviations it reported.

Why a module of its own: the engine fills these in and every output (the terminal, JUnit XML,
the HTML report) reads them, so the engine and the reports meet here and nowhere else. Plain
dataclasses, no I/O; `to_json` gives the whole run as one JSON-ready dict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

HUB = "hub"  # the name the reports give the switch in sequence diagrams


@dataclass
class Message:
    """One HTTP message of the run, as the engine saw it.

    `sender` and `receiver` are participant names (the DFSPs' names on the hub) or `HUB`.
    `status` is the synchronous answer (202, 200, 400 ...) when the engine knows it.
    `note` is a short remark the diagram shows under the arrow, e.g. "refused by the hub: 3102".
    """

    at: float  # seconds since the run began
    sender: str
    receiver: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)  # names lowercased
    body: Any = None
    status: int | None = None
    note: str = ""

    @property
    def title(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def error_code(self) -> str | None:
        info = self.body.get("errorInformation") if isinstance(self.body, dict) else None
        return str(info.get("errorCode")) if isinstance(info, dict) and info.get("errorCode") else None


@dataclass
class Check:
    """One expectation of a step: `what` was expected, `ok` whether it held, `detail` what was seen."""

    what: str
    ok: bool
    detail: str = ""


@dataclass
class Deviation:
    """A DFSP did something the specification does not allow.

    `rule` is a stable id (e.g. "callback-content-type"), `text` the rule in one sentence, `ref`
    where the specification says it, `detail` what this DFSP did.
    """

    dfsp: str
    rule: str
    text: str
    ref: str
    detail: str


@dataclass
class StepResult:
    number: int  # 1-based
    kind: str  # lookup, quote, transfer, send, admin, request, wait, check
    title: str  # what the step did, in words
    id: str | None = None  # the step's `id` in the file, if it has one
    line: int | None = None  # the line of the step in the scenario file
    checks: list[Check] = field(default_factory=list)
    deviations: list[Deviation] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    error: str | None = None  # the step could not be carried out at all (e.g. a hub that is down)
    started: float = 0.0  # seconds since the run began
    duration_s: float = 0.0
    skipped: bool = False  # not run because an earlier step it needs failed

    @property
    def ok(self) -> bool:
        return self.error is None and not self.skipped and all(c.ok for c in self.checks) and not self.deviations


@dataclass
class Participant:
    """A DFSP of the run: who plays it and where it listens."""

    role: str  # the key under [dfsps] in the scenario file
    name: str  # its participant name on the hub
    played_by: str  # engine | simulator | reference | external
    url: str | None = None  # an external or reference DFSP's own callback URL


@dataclass
class RunResult:
    scenario: str  # its name (file stem)
    description: str
    file: str
    hub: str  # the FSPIOP URL of the hub the run used
    started_at: str  # ISO 8601, UTC
    duration_s: float = 0.0
    participants: list[Participant] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    @property
    def deviations(self) -> list[Deviation]:
        return [d for step in self.steps for d in step.deviations]

    def counts(self) -> dict[str, int]:
        """Steps passed, failed and skipped, and deviations found."""
        return {
            "passed": sum(1 for s in self.steps if s.ok),
            "failed": sum(1 for s in self.steps if not s.ok and not s.skipped),
            "skipped": sum(1 for s in self.steps if s.skipped),
            "deviations": len(self.deviations),
        }

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        for step, source in zip(data["steps"], self.steps, strict=True):
            step["ok"] = source.ok
        return data
