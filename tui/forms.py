"""Small input forms for the operator's screens, and the checks of what is typed in them.

Why one form for every action: onboarding, a Net Debit Cap, funds in and out all ask for a few
short values, and all must refuse bad input the same way, with one clear line, before anything
is sent. A `FormScreen` is a modal of labelled one-line inputs; each `Field` has a `check` that
turns the text into the value to send or raises ValueError with the message to show. The form
closes with the checked values (a dict by field name) or None when cancelled.

    values = await app.push_screen_wait(FormScreen("Funds in: greenwallet", [
        Field("amount", "Amount (USD)", check=positive_amount)]))
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, Static

MAX_DECIMALS = 4  # the hub keeps amounts in 1/10,000 of a unit
MAX_AMOUNT = Decimal(10) ** 14  # the Admin API refuses anything larger (3101)
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{2,30}")
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")


# --------------------------------------------------------------------------- checks


def amount(text: str, *, allow_zero: bool = False) -> str:
    """A money amount as the API text ("10000", "12.5"); ValueError says what is wrong."""
    text = text.strip().replace(",", "").replace("_", "")
    if not text:
        raise ValueError("an amount is required")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a number")
    if value < 0:
        raise ValueError(f"{text} is negative: give an amount above 0")
    if value == 0 and not allow_zero:
        raise ValueError("the amount must be above 0")
    if -value.normalize().as_tuple().exponent > MAX_DECIMALS:  # type: ignore[operator]
        raise ValueError(f"{text} has more than {MAX_DECIMALS} decimals")
    if value > MAX_AMOUNT:
        raise ValueError(f"{text} is too large (at most 10^14)")
    normal = value.normalize()
    return f"{normal:f}" if normal != normal.to_integral_value() else str(int(normal))


def positive_amount(text: str) -> str:
    return amount(text)


def amount_or_zero(text: str) -> str:
    return amount(text, allow_zero=True)


def participant_name(text: str) -> str:
    text = text.strip()
    if not text:
        raise ValueError("a name is required")
    if not NAME_PATTERN.fullmatch(text):
        raise ValueError(f"{text!r}: a name is 2 to 30 letters, digits, '-' or '_'")
    return text


def currency(text: str) -> str:
    text = text.strip().upper()
    if not CURRENCY_PATTERN.fullmatch(text):
        raise ValueError(f"{text!r} is not a currency code (three letters, e.g. USD)")
    return text


def base_url(text: str) -> str:
    text = text.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{text!r}: give the DFSP's callback base URL, e.g. http://dfsp.example:4000")
    return text


def reason(text: str) -> str:
    text = text.strip()
    if not text:
        raise ValueError("a reason is required")
    return text


def as_number(text: str) -> int | float:
    """An amount text as a JSON number, where an API prefers one ("10" -> 10, "2.5" -> 2.5)."""
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else float(value)


# --------------------------------------------------------------------------- the form


@dataclass
class Field:
    """One line of a form: its key in the result, its label, and the check of its text."""

    name: str
    label: str
    check: Callable[[str], Any] = str
    value: str = ""
    placeholder: str = ""


class FormScreen(ModalScreen[dict[str, Any] | None]):
    """A modal of labelled inputs; Enter goes to the next input, and on the last one submits."""

    DEFAULT_CSS = """
    FormScreen {
        align: center middle;
    }
    FormScreen > #form {
        width: 76;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    FormScreen #form-title {
        text-style: bold;
        width: 100%;
        margin-bottom: 1;
    }
    FormScreen .form-row {
        height: 1;
        margin-bottom: 1;
    }
    FormScreen .form-row Label {
        width: 24;
        color: $text-muted;
    }
    FormScreen .form-row Input {
        width: 1fr;
        height: 1;
        border: none;
        padding: 0 1;
        background: $boost;
    }
    FormScreen .form-row Input:focus {
        background: $accent 25%;
    }
    FormScreen #form-error {
        color: $text-error;
        height: auto;
    }
    FormScreen #form-buttons {
        height: auto;
        align-horizontal: right;
    }
    FormScreen #form-buttons Button {
        margin-left: 1;
        min-width: 12;
    }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Submit"),
    ]

    def __init__(self, title: str, fields: list[Field], *, submit: str = "OK") -> None:
        super().__init__()
        self.form_title = title
        self.fields = fields
        self.submit_label = submit
        self.error_text = ""  # the message shown about the input, if any

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Static(self.form_title, id="form-title")
            for field in self.fields:
                with Horizontal(classes="form-row"):
                    yield Label(field.label)
                    yield Input(field.value, placeholder=field.placeholder, id=f"field-{field.name}")
            yield Static("", id="form-error", markup=False)
            with Horizontal(id="form-buttons"):
                yield Button(self.submit_label, variant="primary", id="form-ok")
                yield Button("Cancel", id="form-cancel")

    def on_mount(self) -> None:
        self.query(Input).first().focus()

    def error(self, text: str) -> None:
        self.error_text = text
        self.query_one("#form-error", Static).update(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        inputs = list(self.query(Input))
        index = inputs.index(event.input)
        if index + 1 < len(inputs):
            inputs[index + 1].focus()
        else:
            self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "form-ok":
            self.action_submit()
        else:
            self.action_cancel()

    def action_submit(self) -> None:
        values: dict[str, Any] = {}
        for field in self.fields:
            box = self.query_one(f"#field-{field.name}", Input)
            try:
                values[field.name] = field.check(box.value)
            except ValueError as exc:
                self.error(f"{field.label}: {exc}")
                box.focus()
                return
        self.dismiss(values)

    def action_cancel(self) -> None:
        self.dismiss(None)


# --------------------------------------------------------------------------- tables


def fill_table(table: DataTable[Any], rows: list[tuple[str, tuple[str, ...]]]) -> None:
    """Show `rows` (key, cells) in `table`: cells updated in place when the rows are the same
    ones (the cursor stays put), else the table is rebuilt with the cursor kept on its row."""
    keys = [key for key, _ in rows]
    if [str(key.value) for key in table.rows] == keys:
        for key, cells in rows:
            for column, value in zip(table.columns, cells, strict=True):
                if table.get_cell(key, column) != value:
                    table.update_cell(key, column, value, update_width=True)
        return
    selected = None
    if table.row_count:
        try:
            selected = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:  # no valid cursor
            selected = None
    table.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
    if selected in keys:
        table.move_cursor(row=keys.index(selected))
