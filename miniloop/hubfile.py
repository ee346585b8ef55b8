"""The hub file: a TOML description of a ready hub (currency, settlement model, DFSPs, customers).

`miniloop up` seeds a fresh data directory from it through the same service code as the Admin API
(miniloop.seed). Without --hub-file the demo hub shipped in miniloop/data/demo-hub.toml is used.
docs/hub-file.md describes every field.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Literal

import msgspec

from miniloop.errors import ConfigError
from miniloop.fspiop.errors import FspiopError
from miniloop.fspiop.ilp import CURRENCY_EXPONENTS
from miniloop.services import inputs
from miniloop.services.oracles import PARTY_ID_TYPES
from miniloop.services.settlement_models import VALID_COMBINATIONS


class Customer(msgspec.Struct, forbid_unknown_fields=True):
    """A party the DFSP serves, registered in the built-in oracle."""

    id: str
    name: str
    id_type: str = "MSISDN"
    balance: str = "0"


class Dfsp(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    description: str = ""
    # "pisp": a payment initiation service (Third-party API), not an account holder: it gets the
    # TP_CB_URL_* endpoints of a PISP and has no customers (miniloop.seed, mobile_sim.pisp)
    kind: Literal["wallet", "bank", "merchant-bank", "agent-network", "pisp"] = "wallet"
    currency: str | None = None  # default: the hub's first currency
    net_debit_cap: str = "10000"
    funds_in: str = "10000"
    # where this DFSP's FSPIOP callbacks go; omitted: the built-in simulated DFSP
    callback_url: str | None = None
    # what the simulated DFSP charges as payee (payeeFspFee in its quotes): a fixed amount plus
    # a percentage (0..100) of the amount it handles; ignored when callback_url is set
    quote_fee_fixed: str = "0"
    quote_fee_percent: str = "0"
    customers: list[Customer] = []


class SettlementModel(msgspec.Struct, forbid_unknown_fields=True):
    name: str = "DEFERREDNET"
    granularity: Literal["GROSS", "NET"] = "NET"
    interchange: Literal["BILATERAL", "MULTILATERAL"] = "MULTILATERAL"
    delay: Literal["IMMEDIATE", "DEFERRED"] = "DEFERRED"
    currency: str | None = None  # default: every hub currency gets the model
    require_liquidity_check: bool = True
    auto_position_reset: bool = True


class HubFile(msgspec.Struct, forbid_unknown_fields=True):
    currencies: list[str]
    settlement_models: list[SettlementModel] = msgspec.field(default_factory=lambda: [SettlementModel()])
    dfsps: list[Dfsp] = []


DEMO = "demo-hub.toml"


def load(path: Path | None) -> HubFile:
    """Read and check a hub file; any problem is one ConfigError naming the file and the fix."""
    if path is None:
        text = resources.files("miniloop.data").joinpath(DEMO).read_text(encoding="utf-8")
        where = f"the built-in {DEMO}"
    else:
        where = f"hub file {path}"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{where} does not exist; give an existing file to --hub-file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where} cannot be read: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    try:
        hub = msgspec.convert(raw, HubFile)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: {_readable(str(exc))}") from None
    _check(hub, where)
    return hub


def _readable(message: str) -> str:
    """msgspec says `... - at `$.dfsps[0].name``; say it as a TOML reader would look for it."""
    return message.replace("`$.", "`").replace("`$`", "the top level")


def _check(hub: HubFile, where: str) -> None:
    """Everything seeding would refuse, found before anything is written."""
    if not hub.currencies:
        raise ConfigError(f"{where}: `currencies` must name at least one currency, e.g. currencies = [\"USD\"]")
    try:
        for currency in hub.currencies:
            inputs.currency(currency, "currencies")
        for model in hub.settlement_models:
            inputs.participant_name(model.name)
            if model.currency is not None and model.currency not in hub.currencies:
                raise inputs.malformed(f"settlement model {model.name} uses {model.currency}, which is not in `currencies`")
            if (model.delay, model.granularity, model.interchange) not in VALID_COMBINATIONS:
                raise inputs.malformed(
                    f"settlement model {model.name}: {model.delay}/{model.granularity}/{model.interchange} "
                    "is not a valid combination"
                )
        for dfsp in hub.dfsps:
            inputs.participant_name(dfsp.name)
            if dfsp.name.lower() == "hub":
                raise inputs.malformed(f"a DFSP cannot be named {dfsp.name!r}: that is the hub's own name")
            inputs.amount(dfsp.net_debit_cap, f"dfsps.{dfsp.name}.net_debit_cap")
            inputs.amount(dfsp.funds_in, f"dfsps.{dfsp.name}.funds_in")
            inputs.amount(dfsp.quote_fee_fixed, f"dfsps.{dfsp.name}.quote_fee_fixed")
            if inputs.amount(dfsp.quote_fee_percent, f"dfsps.{dfsp.name}.quote_fee_percent") > 100:
                raise inputs.malformed(f'"dfsps.{dfsp.name}.quote_fee_percent" must be at most 100')
            if dfsp.kind == "pisp" and dfsp.customers:
                raise inputs.malformed(f"{dfsp.name} is a PISP (kind = \"pisp\"): it holds no accounts, so it has no customers")
            for customer in dfsp.customers:
                inputs.one_of(customer.id_type, f"dfsps.{dfsp.name}.customers.id_type", PARTY_ID_TYPES)
                inputs.text(customer.id, f"dfsps.{dfsp.name}.customers.id", max_length=128)
                inputs.amount(customer.balance, f"dfsps.{dfsp.name}.customers.balance")
    except FspiopError as exc:
        raise ConfigError(f"{where}: {exc.description.removeprefix('Malformed syntax - ')}") from None
    names = [d.name for d in hub.dfsps]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{where}: DFSP {duplicates[0]!r} is defined twice; DFSP names must be unique")
    for dfsp in hub.dfsps:
        if dfsp.currency is not None and dfsp.currency not in hub.currencies:
            raise ConfigError(
                f"{where}: DFSP {dfsp.name!r} uses {dfsp.currency}, which is not in `currencies`"
            )
        currency = dfsp.currency or hub.currencies[0]
        exponent = CURRENCY_EXPONENTS.get(currency)
        fee = Decimal(dfsp.quote_fee_fixed)
        if exponent is not None and fee != round(fee, exponent):
            raise ConfigError(
                f"{where}: DFSP {dfsp.name!r} has quote_fee_fixed = {dfsp.quote_fee_fixed!r}, "
                f"but {currency} amounts have at most {exponent} decimals"
            )
    ids = [(c.id_type, c.id) for d in hub.dfsps for c in d.customers]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ConfigError(f"{where}: customer {twice[0][0]} {twice[0][1]} belongs to two DFSPs")
