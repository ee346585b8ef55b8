"""A scenario run as JUnit XML, the one test-result format every CI server reads.

Why: a fintech runs its scenarios in Jenkins or GitLab CI; with JUnit XML each step shows up as
a test case there, a failed step with its failed checks and the rules its DFSP broke, and the
messages of the step as the test's output. One <testsuite> per run, one <testcase> per step.
Built with ElementTree, and characters XML 1.0 cannot hold are dropped so the file always parses.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from miniloop.scenario.report.terminal import body_json, body_summary, message_line
from miniloop.scenario.results import RunResult, StepResult

_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
MESSAGE_MAX = 1000  # characters of a failure's message attribute


def clean(text: object) -> str:
    """`text` without the characters XML 1.0 forbids (control characters, lone surrogates)."""
    return _NOT_XML.sub("", str(text))


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def problems(step: StepResult) -> list[str]:
    """What went wrong in a step, one line each: the error, failed checks, deviations."""
    lines = [f"error: {step.error}"] if step.error else []
    lines += [f"check failed: {c.what}" + (f" — {c.detail}" if c.detail else "") for c in step.checks if not c.ok]
    lines += [f"deviation [{d.rule}] {d.dfsp}: {d.text} — {d.detail} ({d.ref})" for d in step.deviations]
    return lines


def step_output(step: StepResult) -> str:
    """The step's messages as text: one line per message, its key fields, then its body."""
    lines: list[str] = []
    for msg in step.messages:
        lines.append(message_line(msg).strip())
        if summary := body_summary(msg.body):
            lines.append(f"    {summary}")
        for name, value in msg.headers.items():
            lines.append(f"    {name}: {value}")
        if msg.body not in (None, "", {}):
            lines += ["    " + line for line in body_json(msg.body).splitlines()]
    return "\n".join(lines)


def _testcase(run: RunResult, step: StepResult) -> ET.Element:
    case = ET.Element("testcase", classname=clean(f"scenario.{run.scenario}"),
                      name=clean(f"{step.number:02d} {' '.join(step.title.split())}"), time=_seconds(step.duration_s))
    found = problems(step)
    if step.skipped:
        ET.SubElement(case, "skipped", message="not run: an earlier step it needs failed")
    elif step.error:
        error = ET.SubElement(case, "error", message=clean(step.error)[:MESSAGE_MAX], type="error")
        error.text = clean("\n".join(found))
    elif not step.ok:
        kind = step.deviations[0].rule if step.deviations else "expectation"
        failure = ET.SubElement(case, "failure", message=clean("; ".join(found))[:MESSAGE_MAX], type=clean(kind))
        failure.text = clean("\n".join(found))
    if step.messages:
        ET.SubElement(case, "system-out").text = clean(step_output(step))
    return case


def junit_xml(run: RunResult) -> str:
    """The run as a JUnit XML document: <testsuites> holding one <testsuite name="scenario:<name>">."""
    errors = sum(1 for s in run.steps if s.error and not s.skipped)
    skipped = sum(1 for s in run.steps if s.skipped)
    failures = sum(1 for s in run.steps if not s.ok and not s.skipped and not s.error)
    counts = {"tests": str(len(run.steps)), "failures": str(failures), "errors": str(errors),
              "skipped": str(skipped), "time": _seconds(run.duration_s)}
    root = ET.Element("testsuites", name="miniloop scenarios", **counts)
    suite = ET.SubElement(root, "testsuite", name=clean(f"scenario:{run.scenario}"), **counts,
                          timestamp=clean(run.started_at))
    properties = ET.SubElement(suite, "properties")
    for name, value in (("file", run.file), ("hub", run.hub), ("description", run.description)):
        ET.SubElement(properties, "property", name=name, value=clean(value))
    for p in run.participants:
        ET.SubElement(properties, "property", name=f"dfsp.{clean(p.role)}", value=clean(f"{p.name} ({p.played_by})"))
    suite.extend(_testcase(run, step) for step in run.steps)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(run: RunResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(run), encoding="utf-8")

