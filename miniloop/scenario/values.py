"""`${...}` references in scenario values, resolved when a step runs.

Why at run time: a step may use what an earlier step got back (`${q.condition}`, the quote's
condition), a DFSP's name on the hub (`${dfsps.payer.name}`), a variable that `--var` may
override (`${amount}`) or a fresh id (`${uuid}`); none of these is known when the file loads.

    ${name}                a variable of [vars]
    ${uuid}                a new lowercase UUID v4, different at each occurrence
    ${dfsps.ROLE.name}     the participant name of a role
    ${ID.dotted.path}      a value from the results of the earlier step ID (list indexes as numbers)
    $${                    a literal "${"

A string that is exactly one reference becomes the referred value itself (a number stays a number,
a dict stays a dict); inside a longer string the value is put in with str().
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_WHOLE = re.compile(r"\$\{([^}]*)\}")


@dataclass
class Context:
    """What references may name while a scenario runs."""

    vars: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)  # role -> participant name on the hub
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # step id -> its results


def resolve(value: Any, ctx: Context) -> Any:
    """`value` with every reference replaced, through dicts (keys and values) and lists."""
    if isinstance(value, str):
        return _resolve_str(value, ctx)
    if isinstance(value, dict):
        return {str(resolve(k, ctx)): resolve(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, ctx) for v in value]
    return value


def get_path(data: Any, path: str) -> Any:
    """The value at a dotted path ("party.name", "individualQuoteResults.0.quoteId").

    Raises KeyError(part) with the first part of the path that is not there.
    """
    for part in path.split(".") if path else []:
        data = _child(data, part)
    return data


def _child(data: Any, part: str) -> Any:
    if isinstance(data, dict) and part in data:
        return data[part]
    if isinstance(data, list) and part.isdigit() and int(part) < len(data):
        return data[int(part)]
    raise KeyError(part)


def _resolve_str(text: str, ctx: Context) -> Any:
    whole = _WHOLE.fullmatch(text)
    if whole:
        return _lookup(whole.group(1), ctx)
    return _TOKEN.sub(lambda m: "${" if m.group(1) is None else str(_lookup(m.group(1), ctx)), text)


def _lookup(reference: str, ctx: Context) -> Any:
    name = reference.strip()
    if name == "uuid":
        return str(uuid.uuid4())
    if name in ctx.vars:
        return ctx.vars[name]
    head, _, rest = name.partition(".")
    if head == "dfsps":
        return _role_name(name, rest, ctx)
    if head in ctx.results:
        return _step_value(name, head, rest, ctx.results[head])
    raise ValueError(f"unknown reference ${{{name}}}: no variable, role or earlier step has that name")


def _role_name(name: str, rest: str, ctx: Context) -> str:
    role, _, attr = rest.partition(".")
    if attr != "name":
        raise ValueError(f"unknown reference ${{{name}}}: write ${{dfsps.<role>.name}}")
    if role not in ctx.roles:
        roles = ", ".join(ctx.roles) or "none"
        raise ValueError(f"unknown reference ${{{name}}}: no role {role!r} (roles: {roles})")
    return ctx.roles[role]


def _step_value(name: str, step_id: str, rest: str, results: dict[str, Any]) -> Any:
    data: Any = results
    done: list[str] = []
    for part in rest.split(".") if rest else []:
        try:
            data = _child(data, part)
        except KeyError:
            inside = f"{step_id}.{'.'.join(done)} has" if done else f"step {step_id}'s results have"
            raise ValueError(f"unknown reference ${{{name}}}: {inside} no {part!r}") from None
        done.append(part)
    return data
