"""Loading scenario files and resolving `${...}` references, without a hub.

Every refusal must name the file and the line of the offending value, in words a scenario author
understands; these tests write small scenario files into tmp_path and check exactly that.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from miniloop.errors import ConfigError
from miniloop.scenario import format as fmt
from miniloop.scenario import loading
from miniloop.scenario.loading import ScenarioError, available, load
from miniloop.scenario.values import Context, get_path, resolve

HEAD = """\
description = "a test"
vars = { amount = "10", who = "x" }

[dfsps.payer]
[dfsps.payee]
played_by = "reference"
"""

GOOD = HEAD + """
[[steps]]
kind = "lookup"
from = "payer"
party = "MSISDN/1"

[[steps]]
kind = "quote"
id = "q"
from = "payer"
to = "payee"
payee = "MSISDN/1"
amount = "${amount}"
expect.outcome = "answered"

[[steps]]
# a transfer with the quote's terms
kind = "transfer"
from = "payer"
to = "payee"
quote = "q"
[steps.expect]
state = "COMMITTED"
positions = { payer = "+10", payee = "-10" }
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def refusal(tmp_path: Path, text: str, **kwargs: object) -> ScenarioError:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load(path, **kwargs)
    assert caught.value.file == path
    assert "\n" not in str(caught.value)
    return caught.value


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line of `text` that contains `needle`."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


# -- a good file -------------------------------------------------------------------------------


def test_good_file_loads_with_step_lines(tmp_path: Path) -> None:
    loaded = load(write(tmp_path, GOOD, "good_one.toml"))
    assert loaded.name == "good_one"
    assert loaded.path == tmp_path / "good_one.toml"
    assert [type(s) for s in loaded.scenario.steps] == [fmt.Lookup, fmt.Quote, fmt.Transfer]
    assert loaded.step_lines == [line_of(GOOD, "[[steps]]", n) for n in (1, 2, 3)]
    assert loaded.scenario.steps[2].expect.positions == {"payer": "+10", "payee": "-10"}


def test_overrides_are_merged_into_vars(tmp_path: Path) -> None:
    loaded = load(write(tmp_path, GOOD), overrides={"amount": "25.5"})
    assert loaded.scenario.vars == {"amount": "25.5", "who": "x"}


def test_an_override_of_an_undeclared_variable_is_refused(tmp_path: Path) -> None:
    error = refusal(tmp_path, GOOD, overrides={"amout": "1"})
    assert error.what == "unknown variable amout: the scenario declares amount, who"
    assert isinstance(error, ConfigError)


def test_scenario_error_format() -> None:
    assert str(ScenarioError("a.toml", "bad", 3)) == "a.toml:3: bad"
    assert str(ScenarioError("a.toml", "bad")) == "a.toml: bad"


# -- finding the file --------------------------------------------------------------------------


def test_bundled_names_and_unknown_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loading, "FOLDER", tmp_path)
    write(tmp_path, GOOD, "zeta.toml")
    write(tmp_path, "description = 'x'\nsteps = 3\n", "alpha.toml")
    assert load("zeta").path == tmp_path / "zeta.toml"
    with pytest.raises(ScenarioError, match=r"^nope: no bundled scenario .*\(available: alpha, zeta\)$"):
        load("nope")
    assert available() == [("alpha", "(broken: steps: expected an array, got an integer)"), ("zeta", "a test")]


def test_a_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such file"):
        load(str(tmp_path / "absent.toml"))


def test_the_real_folder_is_listed_without_raising() -> None:
    names = [name for name, _ in available()]
    assert names == sorted(names)


# -- TOML syntax -------------------------------------------------------------------------------


def test_toml_syntax_error_has_its_line(tmp_path: Path) -> None:
    error = refusal(tmp_path, 'description = "x"\n\n[[steps]]\nkind = = "quote"\n')
    assert error.line == 4
    assert not re.search(r"\(at line", error.what)


def test_toml_error_at_end_of_document(tmp_path: Path) -> None:
    error = refusal(tmp_path, 'description = "x"\nsteps = [\n')
    assert error.line == 2 and "end of document" not in error.what


# -- msgspec's refusals, at the line of the value -----------------------------------------------


def test_money_written_as_a_number(tmp_path: Path) -> None:
    text = GOOD.replace('amount = "${amount}"', "amount = 10")
    error = refusal(tmp_path, text)
    assert error.line == line_of(text, "amount = 10")
    assert error.what == 'step 2 (kind "quote"): amount: expected a string, got an integer (write money as "10")'


def test_value_in_a_sub_table(tmp_path: Path) -> None:
    text = GOOD.replace('state = "COMMITTED"', "state = 3")
    error = refusal(tmp_path, text)
    assert error.line == line_of(text, "state = 3")
    assert error.what == 'step 3 (kind "transfer"): expect.state: expected a string, got an integer'


def test_value_in_a_dotted_key(tmp_path: Path) -> None:
    text = GOOD.replace('expect.outcome = "answered"', 'expect.outcome = "maybe"')
    error = refusal(tmp_path, text)
    assert error.line == line_of(text, "expect.outcome")
    assert error.what == 'step 2 (kind "quote"): expect.outcome: \'maybe\' is not one of: answered, error, none'


def test_value_in_an_inline_table_points_at_its_key(tmp_path: Path) -> None:
    text = GOOD.replace('payee = "-10" }', "payee = -10 }")
    error = refusal(tmp_path, text)
    assert error.line == line_of(text, "positions =")
    assert error.what.startswith('step 3 (kind "transfer"): expect.positions.payee: expected a string')


def test_unknown_kind_lists_the_kinds(tmp_path: Path) -> None:
    text = GOOD.replace('kind = "lookup"', 'kind = "lokup"')
    error = refusal(tmp_path, text)
    assert error.line == line_of(text, "lokup")
    assert error.what == "step 1: unknown kind 'lokup' (valid kinds: " + ", ".join(loading.KINDS) + ")"
    assert loading.KINDS == ["lookup", "quote", "transfer", "send", "admin", "request", "wait", "check", "settle",
                            "request_to_pay", "pay_qr", "bulk_pay", "pisp"]


def test_missing_kind_points_at_the_step(tmp_path: Path) -> None:
    text = GOOD.replace('kind = "lookup"\n', "")
    error = refusal(tmp_path, text)
    assert error.line == line_of(text, "[[steps]]")
    assert error.what.startswith("step 1: kind is missing (write kind = one of: lookup, quote")


def test_missing_field_points_at_the_step(tmp_path: Path) -> None:
    text = GOOD.replace('payee = "MSISDN/1"\n', "")
    error = refusal(tmp_path, text)
    assert error.line == line_of(text, "[[steps]]", 2)
    assert error.what == 'step 2 (kind "quote"): payee is missing'


def test_unknown_field_points_at_it_and_lists_the_fields(tmp_path: Path) -> None:
    text = GOOD.replace('party = "MSISDN/1"', 'party = "MSISDN/1"\nparty_id = "x"')
    error = refusal(tmp_path, text)
    assert error.line == line_of(text, "party_id")
    assert error.what.startswith('step 1 (kind "lookup"): unknown field party_id (allowed: id, name, ')
    assert error.what.endswith("expect, from, party, currency)")


def test_a_dfsp_role_value_names_the_role(tmp_path: Path) -> None:
    text = GOOD.replace('[dfsps.payee]\nplayed_by = "reference"', '[dfsps.payee]\nplayed_by = "robot"')
    error = refusal(tmp_path, text)
    assert error.line == line_of(text, '"robot"')
    assert error.what == "dfsps.payee.played_by: 'robot' is not one of: engine, simulator, reference, external"


def test_missing_description_has_no_line(tmp_path: Path) -> None:
    error = refusal(tmp_path, GOOD.replace('description = "a test"\n', ""))
    assert error.line is None
    assert error.what == "description is missing"
    assert str(error) == f"{error.file}: description is missing"


def test_a_body_key_with_dots(tmp_path: Path) -> None:
    text = GOOD + '[steps.expect.body]\n"party.name" = 1\n'
    error = refusal(tmp_path, text)
    assert error.line == line_of(text, '"party.name"')
    assert error.what == 'step 3 (kind "transfer"): expect.body."party.name": expected a string, got an integer'


def test_multiline_strings_do_not_confuse_the_lines(tmp_path: Path) -> None:
    text = GOOD.replace('description = "a test"', 'description = """\n[[steps]]\nkind = 1\n"""')
    text = text.replace('party = "MSISDN/1"', "party = 1")
    error = refusal(tmp_path, text)
    assert error.line == line_of(text, "party = 1")


def test_multiline_arrays_do_not_confuse_the_lines(tmp_path: Path) -> None:
    # a nested array whose line looks like a [[steps]] header must not count as a step
    request = '[[steps]]\nkind = "request"\nmethod = "PUT"\npath = "/x"\n'
    request += '[steps.body]\nrows = [  # [\n  [["steps"]]\n]\n'
    text = GOOD.replace("[[steps]]", request + "[[steps]]", 1).replace('party = "MSISDN/1"', "party = 1")
    error = refusal(tmp_path, text)
    assert error.what == 'step 2 (kind "lookup"): party: expected a string, got an integer'
    assert error.line == line_of(text, "party = 1")


def test_list_indexes_are_shown_in_brackets(tmp_path: Path) -> None:
    error = refusal(tmp_path, GOOD.replace('description = "a test"', 'description = "a test"\ntags = ["a", 2]'))
    assert (error.line, error.what) == (2, "tags[1]: expected a string, got an integer")


# -- checks after decoding ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        ('from = "payer"\nparty', 'from = "nobody"\nparty', '"nobody"',
         "step 1 (kind \"lookup\"): from: 'nobody' is not a role of [dfsps] (roles: payer, payee)"),
        ('to = "payee"\nquote', 'to = "bank"\nquote', '"bank"',
         "step 3 (kind \"transfer\"): to: 'bank' is not a role of [dfsps] (roles: payer, payee)"),
        ('quote = "q"', 'quote = "r"', 'quote = "r"',
         "step 3 (kind \"transfer\"): quote: 'r' is not the id of an earlier quote step"),
        ('id = "q"', 'id = "2q"', 'id = "2q"', "step 2 (kind \"quote\"): id '2q' must match"),
        ('id = "q"', 'id = "who"', 'id = "who"', "step 2 (kind \"quote\"): id 'who' must match"),
        ('amount = "${amount}"', 'amount = "10.50"', "10.50",
         "step 2 (kind \"quote\"): amount: '10.50' is not an amount"),
        ('amount = "${amount}"', 'amount = "01"', '"01"', "step 2 (kind \"quote\"): amount: '01' is not an amount"),
        ('payer = "+10"', 'payer = "10$"', '"10$"', "step 3 (kind \"transfer\"): expect.positions.payer: '10$' is"),
        ('played_by = "reference"', 'played_by = "external"', "external",
         'dfsps.payee: played_by = "external" needs a url'),
        ("[dfsps.payer]", '[dfsps.payer]\nfault = "slow"', "fault", 'dfsps.payer: fault needs played_by = "reference"'),
        ("[dfsps.payer]", '[dfsps.payer]\nndc = "-5"', "ndc", "dfsps.payer.ndc: '-5' is not an amount"),
        ('who = "x"', '"my var" = "x"', "vars =", "variable name 'my var' must match"),
        ('who = "x"', 'uuid = "x"', "vars =", "variable name 'uuid' must match"),
    ],
)
def test_semantic_checks(tmp_path: Path, old: str, new: str, needle: str, message: str) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    error = refusal(tmp_path, text)
    assert error.what.startswith(message)
    assert error.line == line_of(text, needle)


def test_duplicate_step_ids(tmp_path: Path) -> None:
    text = GOOD.replace('kind = "lookup"', 'kind = "lookup"\nid = "q"')
    error = refusal(tmp_path, text)
    assert error.line == line_of(text, 'id = "q"', 2)
    assert error.what == "step 2 (kind \"quote\"): id 'q' is already the id of an earlier step"


def test_free_names_and_references_are_allowed(tmp_path: Path) -> None:
    text = GOOD + """
[[steps]]
kind = "send"
dfsp = "greenwallet"
from = "27710000001"
to = "MSISDN/27720000001"
amount = "0.5"

[[steps]]
kind = "admin"
action = "funds_in"
dfsp = "some_other_fsp"
amount = "${amount}"

[[steps]]
kind = "lookup"
from = "${who}"
party = "MSISDN/1"
expect.balances = { "greenwallet/27710000001" = "-0.5" }

[[steps]]
kind = "request"
from = "payer"
to = "no_such_fsp"
method = "GET"
path = "/parties/MSISDN/1"
"""
    loaded = load(write(tmp_path, text))
    assert len(loaded.step_lines) == 7


# -- references --------------------------------------------------------------------------------


CTX = Context(
    vars={"amount": "10", "who": "Kwame"},
    roles={"payer": "greenwallet"},
    results={"q": {"transferAmount": {"amount": "10"}, "individualQuoteResults": [{"quoteId": "abc"}], "n": 3}},
)


def test_resolve_vars_roles_and_step_results() -> None:
    assert resolve("pay ${amount} to ${who}", CTX) == "pay 10 to Kwame"
    assert resolve("${dfsps.payer.name}", CTX) == "greenwallet"
    assert resolve("${q.transferAmount.amount}", CTX) == "10"
    assert resolve("${q.individualQuoteResults.0.quoteId}", CTX) == "abc"


def test_a_whole_reference_keeps_its_type() -> None:
    assert resolve("${q.n}", CTX) == 3
    assert resolve("n=${q.n}", CTX) == "n=3"
    assert resolve("${q.transferAmount}", CTX) == {"amount": "10"}


def test_resolve_walks_dicts_and_lists() -> None:
    value = {"a": ["${amount}", 5, None, {"${who}": "${q.n}"}], "b": 1.5}
    assert resolve(value, CTX) == {"a": ["10", 5, None, {"Kwame": 3}], "b": 1.5}


def test_uuid_is_fresh_each_time() -> None:
    first, second = resolve("${uuid} ${uuid}", CTX).split()
    assert first != second
    assert str(uuid.UUID(first)) == first and uuid.UUID(first).version == 4


def test_escaped_dollar() -> None:
    assert resolve("$${amount} is ${amount}", CTX) == "${amount} is 10"
    assert resolve("no refs $ here", CTX) == "no refs $ here"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${foo}", "unknown reference ${foo}: no variable, role or earlier step has that name"),
        ("x ${dfsps.payee.name}", "unknown reference ${dfsps.payee.name}: no role 'payee' (roles: payer)"),
        ("${dfsps.payer.url}", "unknown reference ${dfsps.payer.url}: write ${dfsps.<role>.name}"),
        ("${q.transferAmount.currency}",
         "unknown reference ${q.transferAmount.currency}: q.transferAmount has no 'currency'"),
        ("${q.individualQuoteResults.1}", "q.individualQuoteResults has no '1'"),
        ("${q.nope}", "step q's results have no 'nope'"),
    ],
)
def test_unknown_references(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        resolve(text, CTX)
    assert message in str(caught.value)


def test_get_path() -> None:
    data = {"party": {"name": "Kwame", "ids": ["a", "b"]}}
    assert get_path(data, "party.name") == "Kwame"
    assert get_path(data, "party.ids.1") == "b"
    assert get_path(data, "") is data
    for path, missing in [("party.age", "age"), ("party.ids.2", "2"), ("party.name.x", "x"), ("x.y", "x")]:
        with pytest.raises(KeyError) as caught:
            get_path(data, path)
        assert caught.value.args == (missing,)
