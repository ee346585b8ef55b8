"""Seeding a fresh hub from a hub file, through the same services the Admin API calls.

The order is Mojaloop's onboarding order (docs/admin-api.md): hub accounts, settlement model,
oracles, then per DFSP: participant, Net Debit Cap and initial position, callback endpoints,
funds in, and its customers in the built-in oracle. Every body below is what an operator would
POST to the Admin API.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from dataclasses import dataclass

from miniloop.fspiop import endpoints
from miniloop.fspiop.errors import FspiopError
from miniloop.hubfile import Dfsp, HubFile
from miniloop.services.oracles import Oracles
from miniloop.services.participants import HUB_NAME, Participants
from miniloop.services.settlement_models import SettlementModels


@dataclass
class Services:
    participants: Participants
    models: SettlementModels
    oracles: Oracles


async def is_fresh(participants: Participants) -> bool:
    """True until anything beyond the Hub participant (and its first window) has been created."""
    everyone = await participants.list()
    return len(everyone) == 1 and not everyone[0]["accounts"]


async def seed(hub: HubFile, services: Services, *, sim_base_url: str, oracle_url: str) -> None:
    participants = services.participants
    for currency in hub.currencies:
        for account_type in ("HUB_RECONCILIATION", "HUB_MULTILATERAL_SETTLEMENT"):
            await participants.create_hub_account(HUB_NAME, {"currency": currency, "type": account_type})
    for model in hub.settlement_models:
        for currency in [model.currency] if model.currency else hub.currencies:
            name = model.name if model.currency or len(hub.currencies) == 1 else f"{model.name}{currency}"
            await services.models.create({
                "name": name, "settlementGranularity": model.granularity,
                "settlementInterchange": model.interchange, "settlementDelay": model.delay,
                "currency": currency, "requireLiquidityCheck": model.require_liquidity_check,
                "ledgerAccountType": "POSITION", "settlementAccountType": "SETTLEMENT",
                "autoPositionReset": model.auto_position_reset,
            })
    id_types = sorted({c.id_type for d in hub.dfsps for c in d.customers})
    for id_type in id_types:
        await services.oracles.create(
            {"oracleIdType": id_type, "endpoint": {"value": oracle_url, "endpointType": "URL"}, "isDefault": True}
        )
    for dfsp in hub.dfsps:
        currency = dfsp.currency or hub.currencies[0]
        await participants.create({"name": dfsp.name, "currency": currency})
        await participants.initial_position_and_limits(dfsp.name, {
            "currency": currency, "limit": {"type": "NET_DEBIT_CAP", "value": dfsp.net_debit_cap},
            "initialPosition": 0,
        })
        base_url = dfsp.callback_url or f"{sim_base_url.rstrip('/')}/{dfsp.name}"
        for endpoint_type, value in _endpoints(dfsp, base_url).items():
            await participants.add_endpoint(dfsp.name, {"type": endpoint_type, "value": value})
        settlement = next(
            a for a in await participants.accounts(dfsp.name)
            if a["ledgerAccountType"] == "SETTLEMENT" and a["currency"] == currency
        )
        if Decimal(dfsp.funds_in) > 0:
            await participants.move_funds(dfsp.name, settlement["id"], {
                "transferId": str(uuid.uuid4()), "externalReference": "hub file",
                "action": "recordFundsIn", "reason": "initial funds from the hub file",
                "amount": {"amount": dfsp.funds_in, "currency": currency},
            })
        for customer in dfsp.customers:
            await services.oracles.register_party(customer.id_type, customer.id, dfsp.name)


async def refresh_endpoints(hub: HubFile, participants: Participants, *, sim_base_url: str) -> None:
    """Point the simulated DFSPs' callback endpoints at this run's simulator port.

    The port may differ from the one the hub was seeded with (`--sim-port 0`, or a new setting).
    """
    for dfsp in hub.dfsps:
        if dfsp.callback_url:
            continue
        try:
            current = {e["type"]: e["value"] for e in await participants.endpoints(dfsp.name)}
        except FspiopError:
            continue  # not onboarded in this ledger (the file changed after seeding)
        for endpoint_type, value in _endpoints(dfsp, f"{sim_base_url.rstrip('/')}/{dfsp.name}").items():
            if current.get(endpoint_type) != value:
                await participants.add_endpoint(dfsp.name, {"type": endpoint_type, "value": value})


def _endpoints(dfsp: Dfsp, base_url: str) -> dict[str, str]:
    """A participant's callback endpoints: the FSPIOP set, plus the Third-party API's TP_CB_URL_*
    set for a PISP (kind "pisp": every type but TP_CB_URL_CONSENT_REQUEST_POST, so GET /services
    does not count it as a THIRD_PARTY_DFSP) and for every simulated DFSP (the simulators accept
    account linking and third-party transfers, mobile_sim.tpdfsp). An outside DFSP gets the
    FSPIOP set only: whether it speaks the Third-party API is for its operator to register."""
    found = endpoints.for_base_url(base_url)
    if dfsp.kind == "pisp":
        found.update(endpoints.thirdparty_for_base_url(base_url, "pisp"))
    elif dfsp.callback_url is None:
        found.update(endpoints.thirdparty_for_base_url(base_url, "dfsp"))
    return found
