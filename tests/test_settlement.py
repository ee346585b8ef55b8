"""Settlement API v2 against a real hub: windows, settlements, their state machines and the ledger.

One hub per module; each test starts by closing whatever the previous test left in the open
window (`fresh_window`), so its window holds its own transfers only. After every settlement step
the ledger check (miniloop.ledger.check) must find nothing wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from conftest import HubLauncher, deferred_net_model, error_code
from fspiop_dfsp import Scene, TestDfsps, Transfer

from miniloop.ledger.check import check_ledger
from miniloop.ledger.store import DB_FILE

STEPS = ("PS_TRANSFERS_RECORDED", "PS_TRANSFERS_RESERVED", "PS_TRANSFERS_COMMITTED", "SETTLED")


@pytest.fixture(scope="module")
def scene(module_hubs: HubLauncher, test_dfsps: TestDfsps) -> Iterator[Scene]:
    hub = module_hubs.start(empty=True)
    hub.setup_currency("USD")
    hub.setup_currency("EUR", model_name="DEFERREDNETEUR")
    scene = Scene(hub, test_dfsps)
    yield scene
    scene.close()


# ------------------------------------------------------------------------------------ helpers


def ledger_ok(scene: Scene) -> None:
    report = check_ledger(scene.hub.data_dir / DB_FILE, grace_s=3600)
    assert report.ok, report.problems


def open_window(scene: Scene) -> dict[str, Any]:
    r = scene.hub.settlement.get("settlementWindows", params={"state": "OPEN"})
    assert r.status_code == 200, r.text
    (window,) = r.json()
    return window


def close(scene: Scene, window_id: int) -> Any:
    return scene.hub.settlement.post(f"settlementWindows/{window_id}", json={"state": "CLOSED", "reason": "test"})


def fresh_window(scene: Scene) -> int:
    """Close what earlier tests left in the open window; return the id of an empty open window."""
    window = open_window(scene)
    r = close(scene, window["id"])
    if r.status_code == 200:
        return r.json()["id"]
    assert error_code(r) == "3100" and "is empty" in r.text, r.text
    return window["id"]


def pay(scene: Scene, payer: str, payee: str, amount: str, currency: str = "USD") -> None:
    scene.commit(Transfer(payer, payee, amount, currency=currency))


def settle(scene: Scene, windows: list[int], model: str = "DEFERREDNET") -> Any:
    return scene.hub.settlement.post("settlements", json={
        "settlementModel": model, "reason": "end of day", "settlementWindows": [{"id": w} for w in windows]})


def accounts_of(settlement: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {a["id"]: {**a, "participant": p["id"]} for p in settlement["participants"] for a in p["accounts"]}


def move_all(scene: Scene, settlement: dict[str, Any], state: str) -> dict[str, Any]:
    body = {"participants": [
        {"id": p["id"], "accounts": [{"id": a["id"], "state": state, "reason": f"bank: {state}"} for a in p["accounts"]]}
        for p in settlement["participants"]]}
    r = scene.hub.settlement.put(f"settlements/{settlement['id']}", json=body)
    assert r.status_code == 200, r.text
    for account in accounts_of(r.json()).values():
        assert "errorInformation" not in account, account
    return r.json()


def get_settlement(scene: Scene, settlement_id: int) -> dict[str, Any]:
    r = scene.hub.settlement.get(f"settlements/{settlement_id}")
    assert r.status_code == 200, r.text
    return r.json()


def trade(scene: Scene) -> tuple[str, str, str]:
    """Three DFSPs and a day of trading: a->b 100, b->c 30, c->a 50. Nets: a +50, b -70, c +20."""
    a, b, c = scene.dfsp("alpha"), scene.dfsp("bravo"), scene.dfsp("charlie")
    pay(scene, a, b, "100")
    pay(scene, b, c, "30")
    pay(scene, c, a, "50")
    return a, b, c


def nets(scene: Scene, settlement: dict[str, Any], names: tuple[str, ...]) -> dict[str, Decimal]:
    position_ids = {scene.account_id(n): n for n in names}
    return {position_ids[i]: Decimal(str(a["netSettlementAmount"]["amount"]))
            for i, a in accounts_of(settlement).items() if i in position_ids}


# ------------------------------------------------------------------------------------ the whole cycle


def test_the_whole_cycle_resets_positions_and_settles_the_window(scene: Scene) -> None:
    """CONFORMANCE 39: close the window, settle it, four PUTs, positions back to zero."""
    window_id = fresh_window(scene)
    names = trade(scene)
    assert {n: scene.position(n) for n in names} == {names[0]: 50, names[1]: -70, names[2]: 20}

    r = close(scene, window_id)
    assert r.status_code == 200, r.text
    new_window = r.json()
    assert new_window["state"] == "OPEN" and new_window["id"] > window_id
    closed = scene.hub.settlement.get(f"settlementWindows/{window_id}").json()
    assert closed["state"] == "CLOSED"
    assert [(c["ledgerAccountType"], c["currencyId"], c["state"]) for c in closed["content"]] == \
        [("POSITION", "USD", "CLOSED")]
    ledger_ok(scene)

    r = settle(scene, [window_id])
    assert r.status_code == 200, r.text
    settlement = r.json()
    assert settlement["state"] == "PENDING_SETTLEMENT"
    assert nets(scene, settlement, names) == {names[0]: 50, names[1]: -70, names[2]: 20}
    assert sum(Decimal(str(a["netSettlementAmount"]["amount"])) for a in accounts_of(settlement).values()) == 0
    assert scene.hub.settlement.get(f"settlementWindows/{window_id}").json()["state"] == "PENDING_SETTLEMENT"
    ledger_ok(scene)

    positions_after = {
        "PS_TRANSFERS_RECORDED": {names[0]: 50, names[1]: -70, names[2]: 20},
        "PS_TRANSFERS_RESERVED": {names[0]: 50, names[1]: 0, names[2]: 20},  # the recipient's, at reserve
        "PS_TRANSFERS_COMMITTED": {names[0]: 0, names[1]: 0, names[2]: 0},  # the senders', at commit
        "SETTLED": {names[0]: 0, names[1]: 0, names[2]: 0},
    }
    for state in STEPS:
        answer = move_all(scene, settlement, state)
        assert answer["state"] == state
        assert {a["state"] for a in accounts_of(get_settlement(scene, settlement["id"])).values()} == {state}
        assert {n: scene.position(n) for n in names} == positions_after[state], state
        ledger_ok(scene)

    assert get_settlement(scene, settlement["id"])["state"] == "SETTLED"
    window = scene.hub.settlement.get(f"settlementWindows/{window_id}").json()
    assert window["state"] == "SETTLED" and {c["state"] for c in window["content"]} == {"SETTLED"}
    # the liquidity accounts are untouched: the operator records the bank's movements itself
    assert {n: scene.hub.account_value(n) for n in names} == {n: -10000 for n in names}


def test_closing_an_empty_window_is_refused_with_3100(scene: Scene) -> None:
    window_id = fresh_window(scene)
    r = close(scene, window_id)
    assert r.status_code == 400 and error_code(r) == "3100", r.text
    assert "is empty" in r.json()["errorInformation"]["errorDescription"]
    assert open_window(scene)["id"] == window_id


def test_closing_a_window_that_is_not_open_is_refused(scene: Scene) -> None:
    window_id = fresh_window(scene)
    pay(scene, scene.dfsp("payer"), scene.dfsp("payee"), "5")
    assert close(scene, window_id).status_code == 200
    r = close(scene, window_id)
    assert r.status_code == 400 and error_code(r) == "3100" and "is not open" in r.text, r.text
    r = close(scene, 999999)
    assert r.status_code == 400 and error_code(r) == "3100" and "does not exist" in r.text, r.text
    r = scene.hub.settlement.post(f"settlementWindows/{open_window(scene)['id']}", json={"state": "OPEN", "reason": "x"})
    assert r.status_code == 400 and error_code(r) == "3100", r.text


def test_a_settlement_spans_several_windows(scene: Scene) -> None:
    first = fresh_window(scene)
    a, b = scene.dfsp("alpha"), scene.dfsp("bravo")
    pay(scene, a, b, "10")
    second = close(scene, first).json()["id"]
    pay(scene, a, b, "15")
    assert close(scene, second).status_code == 200
    r = settle(scene, [first, second])
    assert r.status_code == 200, r.text
    assert nets(scene, r.json(), (a, b)) == {a: 25, b: -25}
    assert sorted(w["id"] for w in r.json()["settlementWindows"]) == [first, second]
    ledger_ok(scene)


# ------------------------------------------------------------------------------------ refusals


def test_a_settlement_needs_closed_windows_of_its_model(scene: Scene) -> None:
    window_id = fresh_window(scene)
    pay(scene, scene.dfsp("payer"), scene.dfsp("payee"), "5")
    r = settle(scene, [window_id])  # still open
    assert r.status_code == 400 and error_code(r) == "3100" and f"Inapplicable windows {window_id}" in r.text, r.text
    assert close(scene, window_id).status_code == 200
    r = settle(scene, [window_id], model="NOSUCHMODEL")
    assert r.status_code == 400 and "Settlement model not found" in r.text, r.text
    r = settle(scene, [window_id], model="DEFERREDNETEUR")  # the window holds no EUR
    assert r.status_code == 400 and "Inapplicable windows" in r.text, r.text
    r = scene.hub.settlement.post("settlements", json={"settlementModel": "DEFERREDNET", "reason": "x"})
    assert r.status_code == 400 and error_code(r) == "3100", r.text
    assert settle(scene, [window_id]).status_code == 200
    r = settle(scene, [window_id])  # already in a settlement
    assert r.status_code == 400 and "Inapplicable windows" in r.text, r.text


def test_an_account_moves_one_step_at_a_time_and_refusals_change_nothing(scene: Scene) -> None:
    window_id = fresh_window(scene)
    a, b = scene.dfsp("alpha"), scene.dfsp("bravo")
    pay(scene, a, b, "40")
    close(scene, window_id)
    settlement = settle(scene, [window_id]).json()
    accounts = accounts_of(settlement)
    (a_account,) = [i for i in accounts if i == scene.account_id(a)]
    (b_account,) = [i for i in accounts if i == scene.account_id(b)]
    pid = {i: accounts[i]["participant"] for i in accounts}
    before = get_settlement(scene, settlement["id"])

    r = scene.hub.settlement.put(f"settlements/{settlement['id']}", json={"participants": [
        {"id": pid[a_account], "accounts": [
            {"id": a_account, "state": "PS_TRANSFERS_RESERVED", "reason": "skips a step"},
            {"id": 999999, "state": "PS_TRANSFERS_RECORDED", "reason": "unknown"},
            {"id": b_account, "state": "PS_TRANSFERS_RECORDED", "reason": "someone else's"}]}]})
    assert r.status_code == 200, r.text
    answers = {x["id"]: x for x in r.json()["participants"][0]["accounts"]}
    assert answers[a_account]["errorInformation"]["errorDescription"].endswith("State change not allowed")
    assert answers[999999]["errorInformation"]["errorDescription"].endswith("Account not found")
    assert answers[b_account]["errorInformation"]["errorDescription"].endswith("Participant and account mismatch")
    assert {x["errorInformation"]["errorCode"] for x in answers.values()} == {"3000"}
    after = get_settlement(scene, settlement["id"])
    assert after["state"] == before["state"] == "PENDING_SETTLEMENT"
    assert after["participants"] == before["participants"]
    assert scene.position(a) == 40 and scene.position(b) == -40

    r = scene.hub.settlement.put(f"settlements/{settlement['id']}", json={"participants": [
        {"id": pid[a_account], "accounts": [
            {"id": a_account, "state": "PS_TRANSFERS_RECORDED", "reason": "first"},
            {"id": a_account, "state": "PS_TRANSFERS_RECORDED", "reason": "again"}]}]})
    answers = r.json()["participants"][0]["accounts"]
    assert answers[0]["state"] == "PS_TRANSFERS_RECORDED" and "errorInformation" not in answers[0]
    assert answers[1]["errorInformation"]["errorDescription"].endswith("Account already processed once")
    # one account of two moved: the settlement waits for the other
    assert get_settlement(scene, settlement["id"])["state"] == "PENDING_SETTLEMENT"
    r = scene.hub.settlement.put(f"settlements/{settlement['id']}", json={"participants": [
        {"id": pid[b_account], "accounts": [{"id": b_account, "state": "PS_TRANSFERS_RECORDED", "reason": "now"}]}]})
    assert r.json()["state"] == "PS_TRANSFERS_RECORDED"
    # other properties beside participants are refused as a whole
    r = scene.hub.settlement.put(f"settlements/{settlement['id']}", json={"participants": [], "reason": "x"})
    assert r.status_code == 400 and error_code(r) == "3100", r.text
    r = scene.hub.settlement.put(f"settlements/{settlement['id']}", json={"state": "SETTLED", "reason": "x"})
    assert r.status_code == 400 and error_code(r) == "3100", r.text
    ledger_ok(scene)


@pytest.mark.parametrize("steps", [0, 1, 2])
def test_abort_is_allowed_until_transfers_are_reserved_and_undoes_them(scene: Scene, steps: int) -> None:
    window_id = fresh_window(scene)
    a, b = scene.dfsp("alpha"), scene.dfsp("bravo")
    pay(scene, a, b, "60")
    close(scene, window_id)
    settlement = settle(scene, [window_id]).json()
    for state in STEPS[:steps]:
        move_all(scene, settlement, state)
    r = scene.hub.settlement.put(f"settlements/{settlement['id']}", json={"state": "ABORTED", "reason": "bank said no"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "ABORTED"
    aborted = get_settlement(scene, settlement["id"])
    assert aborted["state"] == "ABORTED"
    assert {a["state"] for a in accounts_of(aborted).values()} == {"ABORTED"}
    assert scene.hub.settlement.get(f"settlementWindows/{window_id}").json()["state"] == "ABORTED"
    assert scene.position(a) == 60 and scene.position(b) == -60  # the reservation was undone
    ledger_ok(scene)
    # an aborted window can be settled again, through to the end
    again = settle(scene, [window_id])
    assert again.status_code == 200, again.text
    for state in STEPS:
        move_all(scene, again.json(), state)
    assert scene.position(a) == 0 and scene.position(b) == 0
    assert scene.hub.settlement.get(f"settlementWindows/{window_id}").json()["state"] == "SETTLED"
    ledger_ok(scene)


@pytest.mark.parametrize("steps", [3, 4])
def test_abort_is_refused_once_transfers_are_committed(scene: Scene, steps: int) -> None:
    window_id = fresh_window(scene)
    a, b = scene.dfsp("alpha"), scene.dfsp("bravo")
    pay(scene, a, b, "7")
    close(scene, window_id)
    settlement = settle(scene, [window_id]).json()
    for state in STEPS[:steps]:
        move_all(scene, settlement, state)
    before = get_settlement(scene, settlement["id"])
    r = scene.hub.settlement.put(f"settlements/{settlement['id']}", json={"state": "ABORTED", "reason": "too late"})
    assert r.status_code == 400 and error_code(r) == "3100", r.text
    assert get_settlement(scene, settlement["id"]) == before
    assert scene.position(a) == 0 and scene.position(b) == 0
    ledger_ok(scene)


def test_abort_is_refused_when_one_account_is_committed(scene: Scene) -> None:
    window_id = fresh_window(scene)
    a, b = scene.dfsp("alpha"), scene.dfsp("bravo")
    pay(scene, a, b, "9")
    close(scene, window_id)
    settlement = settle(scene, [window_id]).json()
    for state in STEPS[:2]:
        move_all(scene, settlement, state)
    a_account = scene.account_id(a)
    pid = accounts_of(settlement)[a_account]["participant"]
    r = scene.hub.settlement.put(f"settlements/{settlement['id']}/participants/{pid}/accounts/{a_account}",
                                 json={"state": "PS_TRANSFERS_COMMITTED", "reason": "one paid"})
    assert r.status_code == 200, r.text
    r = scene.hub.settlement.put(f"settlements/{settlement['id']}", json={"state": "ABORTED", "reason": "x"})
    assert r.status_code == 400 and "committed" in r.text, r.text
    assert get_settlement(scene, settlement["id"])["state"] == "PS_TRANSFERS_RESERVED"
    ledger_ok(scene)


# ------------------------------------------------------------------------------------ models and currencies


def test_two_currencies_in_one_window_are_settled_by_their_own_models(scene: Scene) -> None:
    window_id = fresh_window(scene)
    a, b = scene.dfsp("alpha"), scene.dfsp("bravo")
    for name in (a, b):
        r = scene.hub.admin.post("/participants", json={"name": name, "currency": "EUR"})  # a second currency
        assert r.status_code == 201, r.text
        r = scene.hub.admin.post(f"/participants/{name}/initialPositionAndLimits", json={
            "currency": "EUR", "limit": {"type": "NET_DEBIT_CAP", "value": 1000}, "initialPosition": 0})
        assert r.status_code == 201, r.text
        assert scene.hub.funds(name, scene.hub.account_ids(name, "EUR")["SETTLEMENT"], "recordFundsIn", 1000,
                               "EUR").status_code == 202
    pay(scene, a, b, "10")
    pay(scene, b, a, "4", currency="EUR")
    close(scene, window_id)
    window = scene.hub.settlement.get(f"settlementWindows/{window_id}").json()
    assert sorted(c["currencyId"] for c in window["content"]) == ["EUR", "USD"]

    usd = settle(scene, [window_id]).json()
    assert {a["netSettlementAmount"]["currency"] for a in accounts_of(usd).values()} == {"USD"}
    # an EUR settlement aborted while the USD one holds the window leaves the window to it
    first_eur = settle(scene, [window_id], model="DEFERREDNETEUR").json()
    r = scene.hub.settlement.put(f"settlements/{first_eur['id']}", json={"state": "ABORTED", "reason": "redo"})
    assert r.status_code == 200, r.text
    assert scene.hub.settlement.get(f"settlementWindows/{window_id}").json()["state"] == "PENDING_SETTLEMENT"
    for state in STEPS:
        move_all(scene, usd, state)
    # half the window is settled: it waits for its EUR content
    window = scene.hub.settlement.get(f"settlementWindows/{window_id}").json()
    assert window["state"] == "PENDING_SETTLEMENT"
    eur = settle(scene, [window_id], model="DEFERREDNETEUR")
    assert eur.status_code == 200, eur.text
    assert sorted(Decimal(str(a["netSettlementAmount"]["amount"])) for a in accounts_of(eur.json()).values()) == [-4, 4]
    for state in STEPS:
        move_all(scene, eur.json(), state)
    assert scene.hub.settlement.get(f"settlementWindows/{window_id}").json()["state"] == "SETTLED"
    assert scene.position(a, "EUR") == 0 and scene.position(b, "EUR") == 0
    ledger_ok(scene)


def test_funds_out_and_in_after_settlement_leave_every_account_right(scene: Scene) -> None:
    """The operator mirrors the bank: funds-out for net senders, funds-in for net recipients."""
    window_id = fresh_window(scene)
    names = trade(scene)
    close(scene, window_id)
    settlement = settle(scene, [window_id]).json()
    for state in STEPS:
        move_all(scene, settlement, state)
    for name, net in nets(scene, settlement, names).items():
        account = scene.account_id(name, "SETTLEMENT")
        if net > 0:
            assert scene.hub.funds(name, account, "recordFundsOutPrepareReserve", str(net)).status_code == 202
        else:
            assert scene.hub.funds(name, account, "recordFundsIn", str(-net)).status_code == 202
    liquidity = {n: -Decimal(str(scene.hub.account_value(n))) for n in names}
    assert liquidity == {names[0]: 9950, names[1]: 10070, names[2]: 9980}
    ledger_ok(scene)


def test_gross_models_cannot_be_settled_through_the_api(module_hubs: HubLauncher, test_dfsps: TestDfsps) -> None:
    """IMMEDIATE GROSS: every transfer settles as it commits; no window settlement for it."""
    hub = module_hubs.start(empty=True)
    for account_type in ("HUB_RECONCILIATION", "HUB_MULTILATERAL_SETTLEMENT"):
        assert hub.admin.post("/participants/Hub/accounts", json={"currency": "USD", "type": account_type}).status_code == 201
    model = {**deferred_net_model("USD", "GROSS"), "settlementGranularity": "GROSS",
             "settlementInterchange": "BILATERAL", "settlementDelay": "IMMEDIATE"}
    assert hub.admin.post("/settlementModels", json=model).status_code == 201
    scene = Scene(hub, test_dfsps)
    try:
        a, b = scene.dfsp("alpha"), scene.dfsp("bravo")
        pay(scene, a, b, "25")
        assert scene.position(a) == 0 and scene.position(b) == 0
        assert -Decimal(str(hub.account_value(a))) == 9975 and -Decimal(str(hub.account_value(b))) == 10025
        (window,) = hub.settlement.get("settlementWindows", params={"state": "OPEN"}).json()
        assert close(scene, window["id"]).status_code == 200
        assert scene.hub.settlement.get(f"settlementWindows/{window['id']}").json()["content"] == []
        r = settle(scene, [window["id"]], model="GROSS")
        assert r.status_code == 400 and "GROSS or IMMEDIATE" in r.text, r.text
        ledger_ok(scene)
    finally:
        scene.close()


# ------------------------------------------------------------------------------------ reads


def test_windows_and_settlements_can_be_found_by_their_filters(scene: Scene) -> None:
    window_id = fresh_window(scene)
    a, b = scene.dfsp("alpha"), scene.dfsp("bravo")
    pay(scene, a, b, "3")
    close(scene, window_id)
    settlement = settle(scene, [window_id]).json()
    a_pid = accounts_of(settlement)[scene.account_id(a)]["participant"]

    r = scene.hub.settlement.get("settlementWindows", params={"participantId": a_pid})
    assert [w["id"] for w in r.json()] == [window_id], r.text
    r = scene.hub.settlement.get("settlementWindows", params={"state": "PENDING_SETTLEMENT", "currency": "USD"})
    assert window_id in [w["id"] for w in r.json()]
    r = scene.hub.settlement.get("settlementWindows")
    assert r.status_code == 400 and error_code(r) == "3100", r.text
    r = scene.hub.settlement.get("settlementWindows", params={"state": "NOSUCH"})
    assert r.status_code == 400 and error_code(r) == "3100", r.text

    r = scene.hub.settlement.get("settlements", params={"settlementWindowId": window_id})
    assert [s["id"] for s in r.json()] == [settlement["id"]], r.text
    r = scene.hub.settlement.get("settlements", params={"participantId": a_pid})
    (found,) = r.json()
    assert [p["id"] for p in found["participants"]] == [a_pid]
    r = scene.hub.settlement.get("settlements")
    assert r.status_code == 400 and error_code(r) == "3100", r.text
    r = scene.hub.settlement.get("settlements", params={"accountId": 999999})
    assert r.status_code == 400 and "not found" in r.text, r.text
    r = scene.hub.settlement.get("settlements/999999")
    assert r.status_code == 400 and "Settlement not found" in r.text, r.text


def test_the_participant_and_account_forms(scene: Scene) -> None:
    window_id = fresh_window(scene)
    a, b = scene.dfsp("alpha"), scene.dfsp("bravo")
    pay(scene, a, b, "11")
    close(scene, window_id)
    settlement = settle(scene, [window_id]).json()
    accounts = accounts_of(settlement)
    a_account, b_account = scene.account_id(a), scene.account_id(b)
    a_pid, b_pid = accounts[a_account]["participant"], accounts[b_account]["participant"]
    base = f"settlements/{settlement['id']}/participants"

    r = scene.hub.settlement.get(f"{base}/{a_pid}")
    assert r.status_code == 200 and [p["id"] for p in r.json()["participants"]] == [a_pid], r.text
    r = scene.hub.settlement.get(f"{base}/{a_pid}/accounts/{a_account}")
    assert [x["id"] for x in r.json()["participants"][0]["accounts"]] == [a_account], r.text
    r = scene.hub.settlement.get(f"{base}/{a_pid}/accounts/{b_account}")
    assert r.status_code == 400 and "does not match" in r.text, r.text
    r = scene.hub.settlement.get(f"{base}/999999")
    assert r.status_code == 400 and "Participant not in settlement" in r.text, r.text

    r = scene.hub.settlement.put(f"{base}/{a_pid}", json={"accounts": [
        {"id": a_account, "state": "PS_TRANSFERS_RECORDED", "reason": "by participant", "externalReference": "b-1"}]})
    assert r.status_code == 200, r.text
    r = scene.hub.settlement.put(f"{base}/{b_pid}/accounts/{b_account}",
                                 json={"state": "PS_TRANSFERS_RECORDED", "reason": "by account"})
    assert r.status_code == 200 and r.json()["state"] == "PS_TRANSFERS_RECORDED", r.text
    shown = accounts_of(get_settlement(scene, settlement["id"]))
    assert shown[a_account]["externalReference"] == "b-1" and shown[b_account]["reason"] == "by account"
    ledger_ok(scene)


def test_without_auto_position_reset_only_the_states_move(module_hubs: HubLauncher, test_dfsps: TestDfsps) -> None:
    hub = module_hubs.start(empty=True)
    for account_type in ("HUB_RECONCILIATION", "HUB_MULTILATERAL_SETTLEMENT"):
        assert hub.admin.post("/participants/Hub/accounts", json={"currency": "USD", "type": account_type}).status_code == 201
    assert hub.admin.post("/settlementModels", json={**deferred_net_model("USD"), "autoPositionReset": False}).status_code == 201
    scene = Scene(hub, test_dfsps)
    try:
        window_id = fresh_window(scene)
        a, b = scene.dfsp("alpha"), scene.dfsp("bravo")
        pay(scene, a, b, "12")
        close(scene, window_id)
        settlement = settle(scene, [window_id]).json()
        for state in STEPS:
            move_all(scene, settlement, state)
        assert get_settlement(scene, settlement["id"])["state"] == "SETTLED"
        assert scene.position(a) == 12 and scene.position(b) == -12
        ledger_ok(scene)
    finally:
        scene.close()
