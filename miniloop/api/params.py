"""Path parameters: the ids in paths are SQLite row ids, so `<id:int>` takes only those.

Why: Sanic's `int` takes any number of digits, and SQLite's integers are 64-bit; an id such as
9223372036854775808 reached SQLite and failed there, answering 500 where the id simply cannot
exist (found by tests/test_fuzz.py). With this, such a path matches no route: 404, 3002.
"""

from __future__ import annotations

import re

from sanic import Sanic

SQLITE_INT_MIN, SQLITE_INT_MAX = -(2**63), 2**63 - 1


def _sqlite_int(value: str) -> int:
    number = int(value)
    if not SQLITE_INT_MIN <= number <= SQLITE_INT_MAX:
        raise ValueError(f"{value} is not a 64-bit integer")
    return number


def sqlite_int_params(app: Sanic) -> None:
    """Make `<name:int>` in `app`'s routes match only what a SQLite INTEGER can hold."""
    app.router.register_pattern("int", _sqlite_int, re.compile(r"^-?\d+$"))
