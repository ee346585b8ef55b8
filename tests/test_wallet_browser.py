"""The wallet simulator page in a real browser (headless Chromium through Playwright), on a real
demo hub: what a workshop participant sees on a phone, a till and the hub pane.

One hub and one browser per module, a fresh browser context per test. Each test uses customers no
other test of the module pays, and reads the balances and positions it expects to move from the
page before it acts. Assertions are Playwright's auto-waiting expectations on the page's
`data-testid` hooks (never sleeps); every test also checks that the page threw no uncaught
JavaScript error and asked nothing of any other server than the wallet port.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from browser import chromium
from conftest import Hub, HubLauncher
from miniloop import money

D = Decimal
EXPECT_TIMEOUT_MS = 30_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def fmt(amount: Decimal) -> str:
    """An amount as the page's data-amount gives it (FSPIOP text: "2475", "12.37")."""
    return money.format_amount(money.to_units(amount))


@pytest.fixture(scope="module")
def demo(module_hubs: HubLauncher) -> Hub:
    return module_hubs.start()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def open_page(browser: Any, demo: Hub) -> Iterator[Callable[[str], Page]]:
    """open_page(path) -> a page of the wallet port in a fresh context; checked at the end."""
    wallet = demo.urls["wallet"]
    contexts: list[Any] = []
    errors: list[str] = []
    elsewhere: list[str] = []

    def open_(path: str) -> Page:
        context = browser.new_context(base_url=wallet, viewport={"width": 1500, "height": 1100})
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        contexts.append(context)
        context.on("request", lambda request: None if request.url.startswith((wallet, "data:", "blob:"))
                   else elsewhere.append(request.url))
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"{path}: {exc}"))
        page.goto(path)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not errors, f"uncaught JavaScript errors: {errors}"
    assert not elsewhere, f"the page asked other servers: {elsewhere}"


def phone(page: Page, dfsp: str, customer: str) -> Locator:
    return page.locator(f'[data-testid=phone][data-dfsp="{dfsp}"][data-customer="{customer}"]')


def till(page: Page, dfsp: str, customer: str) -> Locator:
    return page.locator(f'[data-testid=till][data-dfsp="{dfsp}"][data-customer="{customer}"]')


def by_id(scope: Locator | Page, name: str) -> Locator:
    return scope.locator(f"[data-testid={name}]")


def amount_of(locator: Locator, attribute: str = "data-amount") -> Decimal:
    """The number an element carries, once the page has put one there."""
    expect(locator).to_have_attribute(attribute, NUMBER)
    return D(locator.get_attribute(attribute) or "")


def balance_of(scope: Locator) -> Decimal:
    return amount_of(by_id(scope, "balance"))


def expect_balance(scope: Locator, amount: Decimal) -> None:
    expect(by_id(scope, "balance")).to_have_attribute("data-amount", fmt(amount))


def position(page: Page, name: str) -> Locator:
    return page.locator(f'[data-testid=hub] [data-testid=position][data-participant="{name}"]')


def arrow(page: Page, source: str, destination: str, method: str, path_start: str) -> Locator:
    return page.locator(f'[data-testid=sequence] [data-testid=arrow][data-from="{source}"][data-to="{destination}"]'
                        f'[data-method="{method}"][data-path^="{path_start}"]')


def sim_balance(demo: Hub, dfsp: str, customer: str) -> Decimal:
    r = httpx.get(f"{demo.urls['sim']}/{dfsp}/customers", timeout=10)
    return D({c["id"]: c for c in r.json()}[customer]["balance"])


def pay_through_confirmation(device: Locator, payee_name: str, fee: str, total: str, receive: str) -> None:
    """Accept the payee, check the quote's terms, confirm: the steps after Next of send and pay."""
    expect(by_id(device, "payee-name")).to_contain_text(payee_name)
    by_id(device, "accept-party").click()
    expect(by_id(device, "quote-fee")).to_have_attribute("data-amount", fee)
    expect(by_id(device, "quote-total")).to_have_attribute("data-amount", total)
    expect(by_id(device, "quote-receive")).to_have_attribute("data-amount", receive)
    by_id(device, "confirm").click()
    expect(by_id(device, "result")).to_have_attribute("data-state", "COMMITTED")


# --------------------------------------------------------------------------- (1) P2P in the room


def test_p2p_in_the_room_moves_both_phones_and_draws_the_sequence(open_page: Callable[[str], Page]) -> None:
    page = open_page("/")
    amara, kwame = phone(page, "greenwallet", "27710000001"), phone(page, "bluewallet", "27720000001")
    expect(till(page, "merchantbank", "27730000001")).to_be_visible()
    expect(by_id(page, "hub")).to_be_visible()
    amara_before, kwame_before = balance_of(amara), balance_of(kwame)
    green_before = amount_of(position(page, "greenwallet"), "data-position")
    blue_before = amount_of(position(page, "bluewallet"), "data-position")
    expect(position(page, "greenwallet")).to_have_attribute("data-ndc", NUMBER)

    by_id(amara, "tab-send").click()
    by_id(amara, "send-to").fill("27720000001")
    by_id(amara, "send-amount").fill("25")
    by_id(amara, "send-next").click()
    pay_through_confirmation(amara, "Kwame Mensah", fee="0", total="25", receive="25")

    # both phones change live, without a reload
    expect_balance(amara, amara_before - 25)
    expect_balance(kwame, kwame_before + 25)
    # the hub pane: the payment's FSPIOP messages, payer -> Hub -> payee and the callbacks back
    for method, path in (("GET", "/parties/MSISDN/27720000001"), ("POST", "/quotes"), ("POST", "/transfers")):
        expect(arrow(page, "greenwallet", "Hub", method, path).last).to_be_attached()
        expect(arrow(page, "Hub", "bluewallet", method, path).last).to_be_attached()
    for path in ("/parties/MSISDN/27720000001", "/quotes/", "/transfers/"):
        expect(arrow(page, "bluewallet", "Hub", "PUT", path).last).to_be_attached()
        expect(arrow(page, "Hub", "greenwallet", "PUT", path).last).to_be_attached()
    # and the positions move: the payer owes 25 more, the payee 25 less
    expect(position(page, "greenwallet")).to_have_attribute("data-position", fmt(green_before + 25))
    expect(position(page, "bluewallet")).to_have_attribute("data-position", fmt(blue_before - 25))
    expect(by_id(page, "window")).to_have_attribute("data-state", "OPEN")
    expect(by_id(page, "window")).to_have_attribute("data-window-id", re.compile(r"^\d+$"))


# --------------------------------------------------------------------------- (2) merchant QR


def make_till_qr(device: Locator, amount: str) -> str:
    by_id(device, "till-amount").fill(amount)
    by_id(device, "till-qr").click()
    expect(by_id(device, "qr-code").locator("svg")).to_be_visible()
    expect(by_id(device, "till-status")).to_have_attribute("data-state", "WAITING")
    payload = by_id(device, "qr-text").text_content() or ""
    assert payload.startswith("mlqr:1?fsp=") and f"amount={fmt(D(amount))}&" in payload, payload
    return payload


def test_a_phone_pays_the_qr_code_a_till_shows_by_picking_it(open_page: Callable[[str], Page], demo: Hub) -> None:
    page = open_page("/?phones=greenwallet/27710000002&till=merchantbank/27730000002")
    thabo, pharmacy = phone(page, "greenwallet", "27710000002"), till(page, "merchantbank", "27730000002")
    thabo_before = balance_of(thabo)
    merchant_before = sim_balance(demo, "merchantbank", "27730000002")
    payload = make_till_qr(pharmacy, "12.50")

    by_id(thabo, "tab-pay").click()
    option = by_id(thabo, "qr-pick").locator(f'[data-testid=qr-option][data-payload="{payload}"]')
    option.click()
    expect(by_id(thabo, "qr-payload")).to_have_value(payload)
    by_id(thabo, "qr-next").click()
    # merchantbank's 1 % fee: 0.125 rounds half-up to 0.13, the payer pays 12.5, the shop gets 12.37
    pay_through_confirmation(thabo, "City Pharmacy", fee="0.13", total="12.5", receive="12.37")

    expect(by_id(pharmacy, "till-status")).to_have_attribute("data-state", "PAID")
    expect_balance(thabo, thabo_before - D("12.5"))
    assert sim_balance(demo, "merchantbank", "27730000002") == merchant_before + D("12.37")


def test_a_phone_pays_a_pasted_qr_code(open_page: Callable[[str], Page], demo: Hub) -> None:
    page = open_page("/?phones=bluewallet/27720000002&till=merchantbank/27730000001")
    fatima, grocery = phone(page, "bluewallet", "27720000002"), till(page, "merchantbank", "27730000001")
    fatima_before = balance_of(fatima)
    merchant_before = sim_balance(demo, "merchantbank", "27730000001")
    payload = make_till_qr(grocery, "40")

    by_id(fatima, "tab-pay").click()
    by_id(fatima, "qr-payload").fill(payload)
    by_id(fatima, "qr-next").click()
    pay_through_confirmation(fatima, "Corner Grocery", fee="0.4", total="40", receive="39.6")

    expect(by_id(grocery, "till-status")).to_have_attribute("data-state", "PAID")
    expect_balance(fatima, fatima_before - 40)
    assert sim_balance(demo, "merchantbank", "27730000001") == merchant_before + D("39.6")


# --------------------------------------------------------------------------- (3) bad input


def test_an_unknown_number_and_too_large_an_amount_say_why_in_words(open_page: Callable[[str], Page]) -> None:
    page = open_page("/phone/greenwallet/27710000003")
    lindiwe = phone(page, "greenwallet", "27710000003")
    before = balance_of(lindiwe)

    by_id(lindiwe, "tab-send").click()
    by_id(lindiwe, "send-to").fill("27799999999")
    by_id(lindiwe, "send-amount").fill("5")
    by_id(lindiwe, "send-next").click()
    result = by_id(lindiwe, "result")
    expect(result).to_have_attribute("data-state", "ABORTED")
    expect(by_id(result, "error-code")).to_have_text(re.compile(r"^(3200|3204)$"))
    words = result.inner_text()
    assert re.search(r"27799999999|number|not|find|registered", words, re.I), words

    by_id(lindiwe, "new-payment").click()
    by_id(lindiwe, "send-to").fill("27720000003")
    by_id(lindiwe, "send-amount").fill(str(before + 1000))
    by_id(lindiwe, "send-next").click()
    result = by_id(lindiwe, "result")
    expect(result).to_be_visible()
    expect(by_id(result, "error-code")).to_have_text("4000")
    expect(result).to_contain_text(re.compile(r"balance|enough|money", re.I))
    expect_balance(lindiwe, before)  # nothing moved


def set_ndc(demo: Hub, dfsp: str, value: Decimal) -> None:
    r = httpx.put(f"{demo.urls['admin']}/participants/{dfsp}/limits", timeout=10, json={
        "currency": "USD", "limit": {"type": "NET_DEBIT_CAP", "value": int(value), "alarmPercentage": 10}})
    assert r.status_code == 200, r.text


def test_a_payment_past_the_dfsps_net_debit_cap_says_so_and_moves_nothing(
        open_page: Callable[[str], Page], demo: Hub) -> None:
    positions = httpx.get(f"{demo.urls['admin']}/participants/bluewallet/positions", timeout=10).json()
    position_now = D(str(next(p["value"] for p in positions if p["currency"] == "USD")))
    amount = max(D(0), -position_now) + 5  # what takes bluewallet past a cap of 0
    page = open_page("/phone/bluewallet/27720000002")
    fatima = phone(page, "bluewallet", "27720000002")
    before = balance_of(fatima)
    set_ndc(demo, "bluewallet", D(0))
    try:
        by_id(fatima, "tab-send").click()
        by_id(fatima, "send-to").fill("27710000003")
        by_id(fatima, "send-amount").fill(fmt(amount))
        by_id(fatima, "send-next").click()
        expect(by_id(fatima, "payee-name")).to_contain_text("Lindiwe Dube")
        by_id(fatima, "accept-party").click()
        by_id(fatima, "confirm").click()
        result = by_id(fatima, "result")
        expect(result).to_have_attribute("data-state", "ABORTED")
        expect(by_id(result, "error-code")).to_have_text("4200")
        expect(result).to_contain_text(re.compile(r"limit", re.I))
        expect_balance(fatima, before)  # the hub refused: the wallet released what it held
    finally:
        set_ndc(demo, "bluewallet", D(50000))


# --------------------------------------------------------------------------- (4) request to pay with an OTP


def test_a_joined_customer_approves_a_request_to_pay_and_gives_the_till_the_otp(
        open_page: Callable[[str], Page]) -> None:
    joiner = open_page("/join")
    by_id(joiner, "join-name").fill("Grace Hopper")
    by_id(joiner, "join-submit").click()
    joiner.wait_for_url(re.compile(r"/phone/[^/]+/\d+$"))
    dfsp, number = joiner.url.rstrip("/").split("/")[-2:]
    me = phone(joiner, dfsp, number)
    expect(me).to_contain_text("Grace")
    before = balance_of(me)

    shop = open_page("/till/merchantbank/27730000002")
    pharmacy = till(shop, "merchantbank", "27730000002")
    by_id(pharmacy, "till-amount").fill("10")
    by_id(pharmacy, "till-payer").fill(number)
    by_id(pharmacy, "till-request").click()
    status = by_id(pharmacy, "till-status")
    expect(status).to_have_attribute("data-state", "REQUESTED")

    # the request arrives on the phone (setting "ask"): the customer approves it
    by_id(me, "tab-requests").click()
    request = me.locator("[data-testid=request][data-request-id]").first
    expect(request).to_contain_text("City Pharmacy")
    by_id(request, "approve").click()

    # the OTP comes as a text; the customer reads it out and the till types it in
    expect(status).to_have_attribute("data-state", "WAITING_FOR_OTP")
    by_id(me, "tab-history").click()
    otp_message = by_id(me, "messages").locator("[data-testid=message][data-kind=otp]").first
    expect(otp_message).to_have_attribute("data-otp", re.compile(r"^\d{6}$"))
    otp = otp_message.get_attribute("data-otp") or ""
    by_id(pharmacy, "till-otp").fill(otp)
    by_id(pharmacy, "till-otp-submit").click()
    expect(status).to_have_attribute("data-state", "COMMITTED")
    # merchantbank quotes RECEIVE: the shop gets 10, the customer pays its 1 % fee on top
    expect_balance(me, before - D("10.1"))
