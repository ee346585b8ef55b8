"""The HTML report of a scenario run: one self-contained file to read, attach to a ticket or mail.

Why self-contained: the report is read long after the run, often offline or inside a CI artefact
viewer that blocks remote content, so everything is in the one file: inline CSS, sequence
diagrams as inline SVG (miniloop.scenario.report.diagram), no script, no font, no image, no URL.
Every string that came from a run (bodies, headers, details) is escaped. The page reads top down:
the verdict, who took part, the summary table, the deviations grouped by rule, then every step
with its checks, its deviations, its sequence diagram and each message's headers and body.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from miniloop.scenario.report.diagram import sequence_svg
from miniloop.scenario.report.terminal import body_json, body_summary, deviations_by_rule, is_error, ms, step_label
from miniloop.scenario.results import Message, RunResult, StepResult

CSS = """
:root{--ok:#2e7d32;--bad:#c62828;--skip:#8d6e00;--ink:#263238;--muted:#607d8b;--line:#cfd8dc}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);margin:0 auto;
 max-width:1100px;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:0 0 6px}h3{font-size:15px;margin:14px 0 4px}
code,pre,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
pre{background:#f5f7f8;border:1px solid var(--line);border-radius:4px;padding:8px;overflow-x:auto;
 white-space:pre-wrap;word-break:break-word;margin:4px 0}
table{border-collapse:collapse;margin:6px 0 14px}th,td{border-bottom:1px solid var(--line);padding:4px 10px;
 text-align:left;vertical-align:top}th{background:#eceff1}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;border-radius:4px;padding:1px 8px;font-weight:700;color:#fff;font-size:12px;
 vertical-align:middle}
.badge.passed{background:var(--ok)}.badge.failed{background:var(--bad)}.badge.skipped{background:var(--skip)}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:8px 0}dl.meta dt{color:var(--muted)}
dl.meta dd{margin:0}.muted{color:var(--muted)}.error{color:var(--bad);font-weight:600}
section.step{border:1px solid var(--line);border-left:5px solid var(--ok);border-radius:4px;padding:10px 14px;
 margin:18px 0}
section.step.failed{border-left-color:var(--bad)}section.step.skipped{border-left-color:var(--skip)}
ul.checks,ul.devs{list-style:none;padding-left:4px;margin:6px 0}li.ok::before{content:"\\2714  ";color:var(--ok)}
li.bad::before{content:"\\2718  ";color:var(--bad)}ul.devs li{margin:3px 0}
ul.devs li::before{content:"\\26A0  ";color:var(--skip)}
.rule{border-top:1px solid var(--line);padding-top:4px}.rule p{margin:4px 0}
details>pre,details>p{margin-left:14px}.diagram{overflow-x:auto;margin:10px 0}
details{margin:2px 0}details summary{cursor:pointer;font-family:ui-monospace,Menlo,Consolas,monospace;
 font-size:12px;overflow-wrap:anywhere}h3 code{font-size:14px}details.err summary{color:var(--bad)}
svg.seq a{cursor:pointer}
svg.seq g.msg:hover text{text-decoration:underline}tr.failed td{color:var(--bad)}
"""

SKIPPED_TEXT = "Not run: an earlier step it needs failed."


def e(value: Any) -> str:
    return escape("" if value is None else str(value))


def badge(label: str) -> str:
    return f'<span class="badge {e(label.lower())}">{e(label)}</span>'


def _header(run: RunResult) -> str:
    c = run.counts()
    counts = (f"{len(run.steps)} steps: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped; "
              f"{c['deviations']} deviation{'s' if c['deviations'] != 1 else ''}")
    rows = [("Description", run.description), ("File", run.file), ("Hub", run.hub), ("Started", run.started_at),
            ("Duration", f"{ms(run.duration_s)} ms"), ("Result", counts)]
    meta = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows if v)
    verdict = badge("PASSED" if run.ok else "FAILED")
    return f"<header><h1>Scenario {e(run.scenario)} {verdict}</h1><dl class=\"meta\">{meta}</dl></header>"


def _table(head: list[str], rows: list[str]) -> str:
    th = "".join(f"<th>{e(h)}</th>" for h in head)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _participants(run: RunResult) -> str:
    rows = [f"<tr><td>{e(p.role)}</td><td class=\"mono\">{e(p.name)}</td><td>{e(p.played_by)}</td>"
            f"<td class=\"mono\">{e(p.url or '')}</td></tr>" for p in run.participants]
    return "<h2>Participants</h2>" + _table(["Role", "Name on the hub", "Played by", "Callback URL"], rows)


def _summary(run: RunResult) -> str:
    rows = []
    for s in run.steps:
        label = step_label(s)
        rows.append(f'<tr class="{e(label.lower())}"><td class="num">{s.number}</td><td>{e(s.kind)}</td>'
                    f'<td><a href="#step-{s.number}">{e(s.title)}</a></td><td>{e(label)}</td>'
                    f'<td class="num">{ms(s.duration_s)}</td><td class="num">{len(s.deviations)}</td></tr>')
    return "<h2>Steps</h2>" + _table(["#", "Kind", "Title", "Result", "ms", "Deviations"], rows)


def _deviations(run: RunResult) -> str:
    groups = deviations_by_rule(run)
    if not groups:
        return "<h2>Deviations</h2><p class=\"muted\">None: every DFSP did what the specification asks.</p>"
    out = [f"<h2>Deviations ({len(run.deviations)})</h2>"]
    for rule, found in groups:
        first = found[0][1]
        items = "".join(f'<li><a href="#step-{step.number}">step {step.number}</a> <b>{e(dev.dfsp)}</b>: '
                        f"{e(dev.detail)}</li>" for step, dev in found)
        out.append(f'<div class="rule"><h3><code>{e(rule)}</code> &times;{len(found)}</h3><p>{e(first.text)}</p>'
                   f'<p class="muted">Reference: {e(first.ref)}</p><ul>{items}</ul></div>')
    return "".join(out)


def _message_details(msg: Message, anchor: str) -> str:
    status = f" → {msg.status}" if msg.status is not None else ""
    summary = f"{ms(msg.at)} ms  {msg.sender} → {msg.receiver}  {msg.method} {msg.path}{status}"
    if short := body_summary(msg.body):
        summary += f"  ({short})"
    parts = [f"<p class=\"error\">{e(msg.note)}</p>" if msg.note else ""]
    if msg.headers:
        parts.append("<pre>" + e("\n".join(f"{k}: {v}" for k, v in msg.headers.items())) + "</pre>")
    parts.append(f"<pre>{e(body_json(msg.body))}</pre>" if msg.body not in (None, "", {}) else
                 '<p class="muted">No body.</p>')
    cls = ' class="err"' if is_error(msg) or msg.note else ""
    return f'<details id="{e(anchor)}"{cls}><summary>{e(summary)}</summary>{"".join(parts)}</details>'


def _step(step: StepResult) -> str:
    label = step_label(step)
    meta = [f"kind {step.kind}"] + ([f"id {step.id}"] if step.id else []) + ([f"line {step.line}"] if step.line else [])
    if not step.skipped:
        meta += [f"at {ms(step.started)} ms", f"took {ms(step.duration_s)} ms"]
    out = [f'<section class="step {e(label.lower())}" id="step-{step.number}">',
           f"<h2>{step.number}. {e(step.title)} {badge(label)}</h2>", f'<p class="muted">{e(" · ".join(meta))}</p>']
    if step.skipped:
        out.append(f'<p class="muted">{e(SKIPPED_TEXT)}</p>')
    if step.error:
        out.append(f'<p class="error">Error: {e(step.error)}</p>')
    if step.checks:
        items = "".join(f'<li class="{"ok" if c.ok else "bad"}">{e(c.what)}'
                        + (f' <span class="muted">— {e(c.detail)}</span>' if c.detail else "") + "</li>"
                        for c in step.checks)
        out.append(f'<h3>Checks</h3><ul class="checks">{items}</ul>')
    if step.deviations:
        items = "".join(f"<li><code>[{e(d.rule)}]</code> <b>{e(d.dfsp)}</b>: {e(d.text)} — {e(d.detail)} "
                        f'<span class="muted">({e(d.ref)})</span></li>' for d in step.deviations)
        out.append(f'<h3>Deviations</h3><ul class="devs">{items}</ul>')
    if step.messages:
        anchor = f"step-{step.number}-msg"
        svg = sequence_svg(step.messages, anchor=anchor, label=f"messages of step {step.number}")
        details = "".join(_message_details(m, f"{anchor}-{i}") for i, m in enumerate(step.messages, 1))
        out.append(f'<h3>Messages</h3><div class="diagram">{svg}</div>{details}')
    return "".join(out) + "</section>"


def html_report(run: RunResult) -> str:
    """The whole report as one HTML document."""
    title = f"Scenario {run.scenario}: {'passed' if run.ok else 'FAILED'}"
    body = [_header(run), _participants(run), _summary(run), _deviations(run)] + [_step(s) for s in run.steps]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{e(title)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + '\n<footer class="muted"><p>Generated by miniloop.</p></footer></body></html>\n')


def write_html(run: RunResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_report(run), encoding="utf-8")
