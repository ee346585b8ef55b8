"""Loading a scenario file: TOML text -> a checked `format.Scenario`, or one error with a file line.

Why this is more than `msgspec.convert(tomllib.loads(text), Scenario)`: a scenario is written by
hand, so a mistake must be shown as `file:line: what is wrong` in words, not as a msgspec path.
The TOML text is scanned once to map each key path to its line (`_key_lines`), msgspec's message
is rephrased (`_describe`), and the checks msgspec cannot make (roles, step ids, amounts, the
quote a transfer refers to) run after decoding, each at the line of the value it refuses.
"""

from __future__ import annotations

import copy
import re
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec
import msgspec.inspect as mi

from miniloop.errors import ConfigError
from miniloop.scenario import format as fmt
from scenarios import FOLDER

KINDS = [t.__struct_config__.tag for t in fmt.Step.__args__]
KIND_FIELD = fmt.Step.__args__[0].__struct_config__.tag_field
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
AMOUNT = re.compile(r"^([0]|([1-9][0-9]{0,17}))([.][0-9]{0,3}[1-9])?$")
SIGNED_AMOUNT = re.compile(r"^[+-]?([0]|([1-9][0-9]{0,17}))([.][0-9]{0,3}[1-9])?$")
RESERVED = ("uuid", "dfsps")  # reference names that are not variables or step ids (miniloop.scenario.values)
# step fields that must name a role of [dfsps]; Send.dfsp, Admin.dfsp and Request.to may be any DFSP name
ROLE_FIELDS = {"lookup": ("from_",), "quote": ("from_", "to"), "transfer": ("from_", "to"), "request": ("from_",)}
MONEY_FIELDS = ("amount", "ndc", "funds")
# settle step fields -> the actions they are for
SETTLE_FIELDS = {"skip_if_empty": ("close",), "windows": ("settle",), "model": ("settle", "settle_all"), "to": ("advance",),
                 "settlement": ("advance", "abort")}
_TYPE_WORDS = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
               "object": "a table", "array": "an array", "datetime": "a date-time", "date": "a date",
               "time": "a time"}
_KEY_PART = r"""[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*'"""
_KEY_LINE = re.compile(rf"^\s*((?:{_KEY_PART})(?:\s*\.\s*(?:{_KEY_PART}))*)\s*=\s*(.*)$")
_HEADER = re.compile(rf"^\s*(\[\[?)\s*((?:{_KEY_PART})(?:\s*\.\s*(?:{_KEY_PART}))*)\s*\]\]?\s*(#.*)?$")
_MSGSPEC_PATH = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")

Path_ = tuple[str | int, ...]


class ScenarioError(ConfigError):
    """A scenario file that cannot be used: `<file>:<line>: <what is wrong>` (no line when unknown)."""

    def __init__(self, file: str | Path, what: str, line: int | None = None) -> None:
        self.file, self.what, self.line = str(file), what, line
        super().__init__(f"{file}:{line}: {what}" if line else f"{file}: {what}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.file, self.what, self.line))


@dataclass
class Loaded:
    """A checked scenario, with what the reports need to point back into its file."""

    scenario: fmt.Scenario
    name: str  # the file's stem
    path: Path
    step_lines: list[int]  # 1-based line of each step's [[steps]] header, in the order of scenario.steps


def available() -> list[tuple[str, str]]:
    """(name, description) of every bundled scenario, sorted by name; a broken one says why."""
    found = []
    for path in sorted(FOLDER.glob("*.toml")):
        try:
            found.append((path.stem, load(str(path)).scenario.description))
        except ScenarioError as e:
            found.append((path.stem, f"(broken: {e.what})"))
    return found


def load(name_or_path: str, overrides: dict[str, str] | None = None) -> Loaded:
    """Read, decode and check a scenario (a bundled name or a file path); apply `--var` overrides."""
    path = _locate(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(path, f"cannot read it: {getattr(e, 'strerror', None) or e}") from None
    data = _parse_toml(path, text)
    lines = _key_lines(text)
    try:
        scenario = msgspec.convert(data, fmt.Scenario)
    except msgspec.ValidationError as e:
        where, what = _describe(str(e), data)
        raise ScenarioError(path, what, _line_for(lines, where)) from None
    step_lines = [_line_for(lines, ("steps", i)) or 1 for i in range(len(scenario.steps))]
    _Checker(path, scenario, lines).run()
    _apply_overrides(path, scenario, overrides or {})
    return Loaded(scenario=scenario, name=path.stem, path=path, step_lines=step_lines)


def _locate(name_or_path: str) -> Path:
    given = Path(name_or_path)
    if given.suffix or len(given.parts) != 1:
        if not given.is_file():
            raise ScenarioError(given, "no such file")
        return given
    path = FOLDER / f"{name_or_path}.toml"
    if not path.is_file():
        names = ", ".join(p.stem for p in sorted(FOLDER.glob("*.toml"))) or "none"
        raise ScenarioError(name_or_path, f"no bundled scenario has this name (available: {names})")
    return path


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        message, line = str(e), None
        if at := re.search(r"\s*\(at (?:line (\d+), column \d+|end of document)\)$", message):
            message, line = message[: at.start()], int(at.group(1) or max(1, len(text.splitlines())))
        raise ScenarioError(path, message, line) from None


# -- where a key is written --------------------------------------------------------------------


def _key_parts(dotted: str) -> list[str]:
    return [p[1:-1] if p[0] in "\"'" else p for p in re.findall(_KEY_PART, dotted)]


def _key_lines(text: str) -> dict[Path_, int]:
    """Map each key path written in the TOML text (("steps", 2, "expect", "state")) to its line."""
    found: dict[Path_, int] = {}
    arrays: dict[tuple[str, ...], int] = {}  # [[x]] key -> how many seen
    table: Path_ = ()
    closing = None  # the delimiter of a multi-line string being skipped
    depth = 0  # of the brackets of a multi-line array being skipped
    for number, line in enumerate(text.splitlines(), 1):
        if closing:
            closing = None if closing in line else closing
            continue
        if depth > 0:
            depth += _bracket_balance(line)
            continue
        header, key = _HEADER.match(line), _KEY_LINE.match(line)
        if header:
            names = tuple(_key_parts(header.group(2)))
            if header.group(1) == "[[":
                arrays[names] = arrays.get(names, 0) + 1
                found.setdefault(names, number)
            table = _indexed(names, arrays)
            found.setdefault(table, number)
        elif key:
            found.setdefault(table + tuple(_key_parts(key.group(1))), number)
            value = key.group(2)
            closing = next((q for q in ('"""', "'''") if value.startswith(q) and value.count(q) == 1), None)
            depth = _bracket_balance(value) if value.startswith("[") else 0
    return found


def _bracket_balance(text: str) -> int:
    """Brackets opened minus closed in a line of TOML, not counting strings and comments."""
    code = re.sub(r'"(?:[^"\\]|\\.)*"' + r"|'[^']*'|#.*", "", text)
    return code.count("[") - code.count("]")


def _indexed(names: tuple[str, ...], arrays: dict[tuple[str, ...], int]) -> Path_:
    """A table header's key path, with the index of the current element of each array of tables."""
    out: list[str | int] = []
    for i in range(len(names)):
        out.append(names[i])
        if names[: i + 1] in arrays:
            out.append(arrays[names[: i + 1]] - 1)
    return tuple(out)


def _line_for(lines: dict[Path_, int], where: Path_) -> int | None:
    """The line of `where`, else of the nearest enclosing key that is written, else None."""
    for end in range(len(where), 0, -1):
        if where[:end] in lines:
            return lines[where[:end]]
    return None


# -- msgspec's message, in words ---------------------------------------------------------------


def _describe(message: str, data: dict[str, Any]) -> tuple[Path_, str]:
    """(key path of the offending value, a readable one-line message) for a msgspec error."""
    problem, _, at = message.partition(" - at `")
    where = _resolve_dicts(_parse_path(at.rstrip("`")), data, message)
    field = re.search(r"field `([^`]+)`", problem)
    if problem.startswith("Object contains unknown field"):
        typ = _type_at(where, data)
        allowed = [f.encode_name for f in typ.fields] if isinstance(typ, mi.StructType) else []
        where = where + (field.group(1),)
        what = f"unknown field {field.group(1)}" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    elif problem.startswith("Object missing required field"):
        what = f"{_dotted(where + (field.group(1),))} is missing"
        if field.group(1) == KIND_FIELD and _is_step(where):
            what += f" (write kind = one of: {', '.join(KINDS)})"
    elif _is_step(where[:-1]) and where[-1] == KIND_FIELD and problem.startswith("Invalid value"):
        what = f"unknown kind {problem.split(' ', 2)[2]} (valid kinds: {', '.join(KINDS)})"
    elif problem.startswith("Invalid enum value"):
        options = _literal_at(where, data)
        what = f"{_dotted(where)}: {problem.split(' ', 3)[3]} is not one of: {', '.join(options)}"
    elif match := re.match(r"Expected `([^`]+)`, got `([^`]+)`", problem):
        what = f"{_dotted(where)}: expected {_words(match.group(1))}, got {_words(match.group(2))}"
        if match.group(1).startswith("str") and _is_money(where):
            what += ' (write money as "10")'
    else:
        what = f"{_dotted(where) or 'the file'}: {problem}"
    return where, _step_label(where, data) + what


def _parse_path(text: str) -> list[str | int | None]:
    """`$.steps[2].dfsps[...]` -> ["steps", 2, None]  (None: a key msgspec does not name)."""
    parts: list[str | int | None] = []
    for name, index in _MSGSPEC_PATH.findall(text.removeprefix("$")):
        parts.append(name if name else None if index == "..." else int(index))
    return parts


def _resolve_dicts(parts: list[str | int | None], data: Any, message: str) -> Path_:
    """Name the keys msgspec leaves as `[...]`: the first key whose entry alone gives the same error."""
    out: list[str | int] = []
    node = data
    for part in parts:
        if part is None and isinstance(node, dict):
            part = next((k for k in node if _fails_alone(data, out, k, message)), None)
        if part is None:
            break
        out.append(part)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return tuple(out)


def _fails_alone(data: dict[str, Any], where: list[str | int], key: str, message: str) -> bool:
    trial = copy.deepcopy(data)
    node = trial
    for part in where:
        node = node[part]
    kept = node[key]
    node.clear()
    node[key] = kept
    try:
        msgspec.convert(trial, fmt.Scenario)
    except msgspec.ValidationError as e:
        return str(e) == message
    return False


def _type_at(where: Path_, data: Any) -> mi.Type | None:
    """The msgspec type expected at a key path (a step's type is chosen by its kind)."""
    typ: mi.Type | None = mi.type_info(fmt.Scenario)
    for part in where:
        typ = _unwrap(typ, data)
        if isinstance(typ, mi.StructType):
            typ = next((f.type for f in typ.fields if f.encode_name == part), None)
        elif isinstance(typ, (mi.ListType, mi.DictType)):
            typ = typ.item_type if isinstance(typ, mi.ListType) else typ.value_type
        else:
            return None
        data = data.get(part) if isinstance(data, dict) else data[part] if isinstance(data, list) else None
    return _unwrap(typ, data)


def _unwrap(typ: mi.Type | None, data: Any) -> mi.Type | None:
    if not isinstance(typ, mi.UnionType):
        return typ
    options = [t for t in typ.types if not isinstance(t, mi.NoneType)]
    if len(options) > 1 and isinstance(data, dict):
        return next((t for t in options if getattr(t, "tag", None) == data.get(KIND_FIELD)), None)
    return options[0] if len(options) == 1 else None


def _literal_at(where: Path_, data: Any) -> list[str]:
    """The values a Literal field allows, in the order format.py declares them."""
    typ = _type_at(where[:-1], data)
    fields = typ.fields if isinstance(typ, mi.StructType) else ()
    field = next((f for f in fields if f.encode_name == where[-1]), None)
    if field is None:
        return []
    hint = typing.get_type_hints(typ.cls)[field.name]
    literal = next((a for a in (hint, *typing.get_args(hint)) if typing.get_origin(a) is Literal), None)
    return [str(v) for v in typing.get_args(literal)] if literal is not None else []


def _words(types: str) -> str:
    words = [_TYPE_WORDS.get(t, t) for t in types.split(" | ") if t != "null"]
    return " or ".join(words)


def _is_step(where: Path_) -> bool:
    return len(where) == 2 and where[0] == "steps" and isinstance(where[1], int)


def _is_money(where: Path_) -> bool:
    return bool(where) and (where[-1] in MONEY_FIELDS or where[-2:-1] in (("positions",), ("balances",)))


def _step_label(where: Path_, data: dict[str, Any]) -> str:
    """`step 3 (kind "quote"): ` for a value inside a step, else ""."""
    if not _is_step(where[:2]):
        return ""
    step = data["steps"][where[1]] if isinstance(data.get("steps"), list) else None
    kind = step.get("kind") if isinstance(step, dict) else None
    return f"step {where[1] + 1}" + (f' (kind "{kind}")' if kind in KINDS else "") + ": "


def _kind(step: fmt.Step) -> str:
    return step.__struct_config__.tag


def _dotted(where: Path_) -> str:
    """The part of a key path after the step: ("steps", 2, "expect", "state") -> "expect.state"."""
    rest = where[2:] if where[:1] == ("steps",) and len(where) > 1 else where
    bare = re.compile(r"[\w-]+")
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" if bare.fullmatch(p) else f'."{p}"' for p in rest)
    return text.removeprefix(".")


# -- what msgspec cannot check -----------------------------------------------------------------


class _Checker:
    """The checks after decoding; each refuses one value at its line."""

    def __init__(self, path: Path, scenario: fmt.Scenario, lines: dict[Path_, int]) -> None:
        self.path, self.scenario, self.lines = path, scenario, lines
        self.settle_actions: set[str] = set()  # the actions of the settle steps so far

    def fail(self, where: Path_, what: str) -> None:
        if _is_step(where[:2]):
            what = f'step {where[1] + 1} (kind "{_kind(self.scenario.steps[where[1]])}"): {what}'
        raise ScenarioError(self.path, what, _line_for(self.lines, where))

    def run(self) -> None:
        for name in self.scenario.vars:
            if not NAME.match(name) or name in RESERVED:
                self.fail(("vars", name), f"variable name {name!r} must match {NAME.pattern} and not be uuid or dfsps")
        for role, dfsp in self.scenario.dfsps.items():
            self.check_dfsp(role, dfsp)
        ids: dict[str, str] = {}  # id -> kind of the steps so far
        for i, step in enumerate(self.scenario.steps):
            self.check_step(i, step, ids)
            if step.id is not None:
                ids[step.id] = _kind(step)

    def check_dfsp(self, role: str, dfsp: fmt.DfspRole) -> None:
        if dfsp.played_by == "external" and not dfsp.url:
            self.fail(("dfsps", role, "played_by"), f'dfsps.{role}: played_by = "external" needs a url')
        if dfsp.fault is not None and dfsp.played_by != "reference":
            self.fail(("dfsps", role, "fault"), f'dfsps.{role}: fault needs played_by = "reference"')
        for field in ("ndc", "funds"):
            self.check_amount(("dfsps", role, field), getattr(dfsp, field), AMOUNT, f"dfsps.{role}.{field}")

    def check_step(self, i: int, step: fmt.Step, ids: dict[str, str]) -> None:
        if step.id is not None:
            if not NAME.match(step.id) or step.id in RESERVED or step.id in self.scenario.vars:
                self.fail(("steps", i, "id"), f"id {step.id!r} must match {NAME.pattern} and not be uuid, "
                          "dfsps or a variable's name")
            if step.id in ids:
                self.fail(("steps", i, "id"), f"id {step.id!r} is already the id of an earlier step")
        for attr in ROLE_FIELDS.get(_kind(step), ()):
            role, field = getattr(step, attr), attr.rstrip("_")
            if role is not None and "${" not in role and role not in self.scenario.dfsps:
                roles = ", ".join(self.scenario.dfsps) or "none"
                self.fail(("steps", i, field), f"{field}: {role!r} is not a role of [dfsps] (roles: {roles})")
        if isinstance(step, fmt.Transfer) and step.quote is not None and ids.get(step.quote) != "quote":
            self.fail(("steps", i, "quote"), f"quote: {step.quote!r} is not the id of an earlier quote step")
        if isinstance(step, (fmt.Quote, fmt.Send, fmt.Transfer, fmt.Admin, fmt.RequestToPay, fmt.PayQr, fmt.BulkPay)):
            self.check_amount(("steps", i, "amount"), step.amount, AMOUNT, "amount")
        if isinstance(step, fmt.PayQr):
            self.check_amount(("steps", i, "pay"), step.pay, AMOUNT, "pay")
        if isinstance(step, fmt.BulkPay):
            for role, count in step.employees.items():
                if not 1 <= count <= 5000:
                    self.fail(("steps", i, "employees", role), f"employees.{role}: {count} is not 1 to 5000")
            if not step.employees and not step.payments:
                self.fail(("steps", i, "employees"), "bulk_pay needs employees or payments")
        if isinstance(step, fmt.Send) and step.use_case == "refund" and not step.refund_of:
            self.fail(("steps", i, "use_case"), 'use_case = "refund" needs refund_of (the transactionId refunded)')
        if isinstance(step, fmt.Settle):
            self.check_settle(i, step, ids)
        for table in ("positions", "balances"):
            for key, value in getattr(step.expect, table).items():
                where = ("steps", i, "expect", table, key)
                self.check_amount(where, value, SIGNED_AMOUNT, f"expect.{table}.{key}", signed=True)

    def check_settle(self, i: int, step: fmt.Settle, ids: dict[str, str]) -> None:
        """Each field only with the action it is for; `advance` needs `to`; what an action works on
        (windows, a settlement) must come from an earlier step when the step does not name it."""
        for field, actions in SETTLE_FIELDS.items():
            if getattr(step, field) not in (None, False) and step.action not in actions:
                self.fail(("steps", i, field), f"{field} is only for action = " + " or ".join(f'"{a}"' for a in actions))
        if step.action == "advance" and step.to is None:
            self.fail(("steps", i, "action"), f'action = "advance" needs `to`, one of: {", ".join(fmt.SETTLEMENT_STEPS)}')
        earlier = self.settle_actions
        if step.action == "settle" and step.windows is None and "close" not in earlier:
            self.fail(("steps", i, "action"), 'action = "settle" needs an earlier settle step with action = "close", '
                      "or `windows`")
        if step.action in ("advance", "abort") and step.settlement is None and "settle" not in earlier:
            self.fail(("steps", i, "action"), f'action = "{step.action}" needs an earlier settle step with '
                      'action = "settle", or `settlement`')
        states = fmt.WINDOW_STATES if step.action == "close" else fmt.SETTLEMENT_STATES
        if step.expect.state is not None and step.expect.state not in states:
            what = "a window" if step.action == "close" else "a settlement"
            self.fail(("steps", i, "expect", "state"), f"expect.state: {step.expect.state!r} is not {what} state "
                      f"(one of: {', '.join(states)})")
        earlier.add(step.action)

    def check_amount(self, where: Path_, value: str | None, pattern: re.Pattern[str], field: str,
                     signed: bool = False) -> None:
        if value is not None and "${" not in value and not pattern.match(value):
            example = '"+10", "-2.5" or "0"' if signed else '"10" or "2.5"'
            self.fail(where, f"{field}: {value!r} is not an amount (write e.g. {example}: "
                      "at most 18 digits before the point and 4 after, no leading or trailing zeros)")


def _apply_overrides(path: Path, scenario: fmt.Scenario, overrides: dict[str, str]) -> None:
    for name in overrides:
        if name not in scenario.vars:
            declared = ", ".join(scenario.vars) or "none"
            raise ScenarioError(path, f"unknown variable {name}: the scenario declares {declared}")
    scenario.vars = {**scenario.vars, **overrides}
