"""The sim port: every simulated DFSP's FSPIOP API under /<dfsp>, plus a small API to drive them.

Why one port with a prefix per DFSP: the seed registers each simulated DFSP's callback endpoints
under `<sim URL>/<dfsp name>` (miniloop.fspiop.endpoints), so the switch reaches them over real
HTTP on loopback exactly as it reaches an outside DFSP.

FSPIOP routes (called by the switch): GET /parties/..., POST /quotes, POST /transfers, and the
callbacks PUT /parties/..., PUT /quotes/{ID}, PUT /transfers/{ID}, their /error, and PATCH
/transfers/{ID}; for payee-initiated transactions POST /transactionRequests, GET and PUT
/transactionRequests/{ID}, /authorizations/{ID} and /transactions/{ID}, and their /error. Each answers at once, 202 for GET/POST and 200 for PUT/PATCH, once it has checked
that FSPIOP-Source is there and the body is a JSON object; the work then runs in the background
(mobile_sim.sim). Too much work in flight: 503 / 2003.

Driving API (for people, the wallet page and scenarios):
- POST /<dfsp>/send: a customer pays someone (mobile_sim.send); with "confirm": true it pauses
  after the lookup and after the quote, and GET and PUT /<dfsp>/send/<transferId> show it and
  answer it ({"acceptParty": bool}, {"acceptQuote": bool});
- GET /<dfsp>/customers: [{id, idType, name, balance, reserved}]; GET /<dfsp>/customers/<id>: one,
  with its settings; POST /<dfsp>/customers: a new customer joins (mobile_sim.join);
- GET /<dfsp>/customers/<id>/requests and POST .../requests/<transactionRequestId>: the requests
  to pay waiting for the answer of a customer set to "ask", and their answer (mobile_sim.payer);
- GET /<dfsp>/transfers/recent: {"transfers": newest first, "unmatchedCallbacks": [...],
  "transactionRequests": [...]};
- GET /dfsps: the simulated DFSPs, their currency, customers (and how many joined) and fee rule;
- GET and PUT /<dfsp>/faults: the DFSP's injected fault, {"mode": "normal" | "slow" | "silent" |
  "reject" | "down", "delaySeconds"?, "errorCode"?} (mobile_sim.faults);
- POST /<dfsp>/requestToPay: a merchant, agent or ATM asks a customer elsewhere to pay (mobile_sim.rtp);
  with "otp": "ask" the till types the OTP: GET and PUT /<dfsp>/requestToPay/<transactionRequestId>;
- POST /<dfsp>/qr: a merchant's QR code; POST /<dfsp>/payQr: a customer pays one (mobile_sim.qr);
- GET /<dfsp>/customers/<id>/messages: the texts on a customer's phone (OTPs, notifications);
- GET and PUT /<dfsp>/customers/<id>/settings: how the customer answers a request to pay;
- GET /<dfsp>/transactionStatus/<transactionId>: GET /transactions/{ID} to the payee's DFSP;
- POST /<dfsp>/bulkPay: a business pays many people (a payroll) with bulk quotes and transfers,
  and POST /<dfsp>/customers/generate: N new customers, registered in the hub's oracle
  (mobile_sim.bulk, which also answers POST /bulkQuotes and /bulkTransfers and takes the
  callbacks PUT /bulkQuotes/{ID}, /bulkTransfers/{ID} and /participants/{requestId});
- the Third-party API (PISP) v1.0: its FSPIOP-style routes /accounts, /consentRequests,
  /consents, /thirdpartyRequests/{transactions,authorizations,verifications}, /services and the
  ALS's PUT /participants/{Type}/{ID} (mobile_sim.thirdparty); the PISP's driving routes
  POST /<pisp>/link, /pay, /unlink and GET /<pisp>/links (mobile_sim.pisp), GET /pisps; the
  DFSP's GET /<dfsp>/consents, POST /<dfsp>/consents/{ID}/revoke and its WEB login page
  GET/POST /<dfsp>/tplogin/{consentRequestId} (mobile_sim.tpdfsp).
docs/simulator.md documents every route with its body and answer. Every FSPIOP request that arrives
is also published on the simulator's live feed (mobile_sim.feed) as a "wire" event, with the
status it was answered with.
"""

from __future__ import annotations

import ssl
from typing import Any

from sanic import HTTPResponse, Request, Sanic
from sanic.response import html, redirect

from miniloop import hubfile
from miniloop.api.common import json_body, new_app, reply
from miniloop.fspiop.errors import FspiopError
from mobile_sim import bulk as bulk_flow
from mobile_sim import faults, feed, join, payer, pisp, qr, rtp, thirdparty, tpdfsp
from mobile_sim import send as send_flow
from mobile_sim.dfsp import REQUEST_TO_PAY_ANSWERS, Customer, SimDfsp, simulated
from mobile_sim.pricing import text
from mobile_sim.sim import Incoming, Simulator


def sim_app(hub: hubfile.HubFile | None, switch_url: str, health: dict[str, Any],
            ssl_context: ssl.SSLContext | None = None) -> Sanic:
    """The Sanic app of the sim port; with no hub file (--empty) it serves /health only.

    `ssl_context`: for an https `switch_url` (miniloop.tls: the hub's own certificate as the
    simulated DFSPs' client certificate)."""
    app = new_app("miniloop_sim", health)
    # a driving call answers when its flow ends: up to its timeoutSeconds (a bulk payment's 600 s
    # at most), so Sanic's default of 60 s would cut a person taking their time on a phone short
    app.config.RESPONSE_TIMEOUT = bulk_flow.MAX_TIMEOUT_S + 30
    dfsps = simulated(hub)
    if not dfsps:
        return app
    sim = Simulator(dfsps, switch_url, ssl_context)
    app.ctx.sim = sim

    async def open_client(app: Sanic) -> None:
        await sim.start()

    async def wake_waiters(app: Sanic) -> None:
        sim.stopping()

    async def close_client(app: Sanic) -> None:
        await sim.stop()

    app.register_listener(open_client, "before_server_start")
    app.register_listener(wake_waiters, "before_server_stop")
    app.register_listener(close_client, "after_server_stop")
    _fspiop_routes(app, sim)
    _driving_routes(app, sim)
    _bulk_routes(app, sim)
    _thirdparty_routes(app, sim)
    return app


def _dfsp(sim: Simulator, name: str) -> SimDfsp:
    dfsp = sim.dfsps.get(name)
    if dfsp is None:
        raise FspiopError("3002", f"{name} is not a simulated DFSP")
    return dfsp


def _take(sim: Simulator, request: Request, dfsp_name: str, resource: str, ids: tuple[str | None, ...],
          is_error: bool = False) -> HTTPResponse:
    """Check the little a DFSP checks at once, answer 202/200, and hand the work to the simulator.

    Whatever the answer (also a refusal, 503 when too busy), the message goes on the live feed.
    """
    dfsp = _dfsp(sim, dfsp_name)
    prefix = f"/{dfsp.name}"
    path = request.path.removeprefix(prefix)
    source = request.headers.get("fspiop-source")
    body = None
    try:
        if faults.is_down(sim, dfsp.name):
            raise FspiopError("2003", f"{dfsp.name} is down (fault injected)", status=503)
        if not source:
            raise FspiopError("3102", "fspiop-source is required")
        body = json_body(request) if request.method in ("POST", "PUT", "PATCH") else None
        message = Incoming(
            dfsp=dfsp, method=request.method, path=path, resource=resource, ids=ids, is_error=is_error,
            source=source, destination=request.headers.get("fspiop-destination"),
            traceparent=request.headers.get("traceparent"), body=body, query=request.query_string,
        )
        if not sim.accept(message):
            raise FspiopError("2003", "the simulated DFSPs are busy", status=503)
    except FspiopError as exc:
        _publish_in(sim, dfsp, request, path, exc.status, body)
        raise
    status = 202 if request.method in ("GET", "POST", "DELETE") else 200
    _publish_in(sim, dfsp, request, path, status, body)
    return reply(None, status)


def _publish_in(sim: Simulator, dfsp: SimDfsp, request: Request, path: str, status: int, body: Any) -> None:
    """A message from the hub to a simulated DFSP, with the status the DFSP answered, on the live feed."""
    sim.feed.publish(feed.wire(
        dfsp.name, "in", request.method, path + (f"?{request.query_string}" if request.query_string else ""),
        request.headers.get("fspiop-source"), request.headers.get("fspiop-destination"), status,
        request.headers.get("traceparent"), body, headers=feed.fspiop_headers(request.headers)))


def _fspiop_routes(app: Sanic, sim: Simulator) -> None:
    party = "/<dfsp>/parties/<id_type>/<party_id>"

    @app.route(party, methods=["GET", "PUT"], name="sim_party")
    async def party_route(request: Request, dfsp: str, id_type: str, party_id: str) -> HTTPResponse:
        return _take(sim, request, dfsp, "parties", (id_type, party_id, None))

    @app.route(party + "/<sub_id>", methods=["GET", "PUT"], name="sim_party_sub")
    async def party_sub_route(request: Request, dfsp: str, id_type: str, party_id: str, sub_id: str) -> HTTPResponse:
        return _take(sim, request, dfsp, "parties", (id_type, party_id, sub_id))

    @app.put(party + "/error", name="sim_party_error")
    async def party_error(request: Request, dfsp: str, id_type: str, party_id: str) -> HTTPResponse:
        return _take(sim, request, dfsp, "parties", (id_type, party_id, None), is_error=True)

    @app.put(party + "/<sub_id>/error", name="sim_party_sub_error")
    async def party_sub_error(request: Request, dfsp: str, id_type: str, party_id: str, sub_id: str) -> HTTPResponse:
        return _take(sim, request, dfsp, "parties", (id_type, party_id, sub_id), is_error=True)

    for resource in ("quotes", "transfers"):
        _resource_routes(app, sim, resource)
    for resource in ("transactionRequests", "authorizations", "transactions"):
        _request_routes(app, sim, resource)


def _request_routes(app: Sanic, sim: Simulator, resource: str) -> None:
    """GET and PUT /<resource>/{ID}, PUT /<resource>/{ID}/error, and POST for transactionRequests."""
    if resource == "transactionRequests":
        @app.post(f"/<dfsp>/{resource}", name=f"sim_{resource}_post")
        async def post(request: Request, dfsp: str) -> HTTPResponse:
            return _take(sim, request, dfsp, resource, ())

    @app.route(f"/<dfsp>/{resource}/<item_id>", methods=["GET", "PUT"], name=f"sim_{resource}_item")
    async def item(request: Request, dfsp: str, item_id: str) -> HTTPResponse:
        return _take(sim, request, dfsp, resource, (item_id,))

    @app.put(f"/<dfsp>/{resource}/<item_id>/error", name=f"sim_{resource}_error")
    async def error(request: Request, dfsp: str, item_id: str) -> HTTPResponse:
        return _take(sim, request, dfsp, resource, (item_id,), is_error=True)


def _resource_routes(app: Sanic, sim: Simulator, resource: str) -> None:
    """POST /<resource>, PUT /<resource>/{ID} (and PATCH for transfers), PUT /<resource>/{ID}/error."""
    callback_methods = ["PUT", "PATCH"] if resource == "transfers" else ["PUT"]

    @app.post(f"/<dfsp>/{resource}", name=f"sim_{resource}_post")
    async def post(request: Request, dfsp: str) -> HTTPResponse:
        return _take(sim, request, dfsp, resource, ())

    @app.route(f"/<dfsp>/{resource}/<item_id>", methods=callback_methods, name=f"sim_{resource}_put")
    async def put(request: Request, dfsp: str, item_id: str) -> HTTPResponse:
        return _take(sim, request, dfsp, resource, (item_id,))

    @app.put(f"/<dfsp>/{resource}/<item_id>/error", name=f"sim_{resource}_error")
    async def error(request: Request, dfsp: str, item_id: str) -> HTTPResponse:
        return _take(sim, request, dfsp, resource, (item_id,), is_error=True)


def _driving_routes(app: Sanic, sim: Simulator) -> None:
    @app.get("/dfsps", name="sim_dfsps")
    async def list_dfsps(request: Request) -> HTTPResponse:
        return reply([
            {"name": d.name, "currency": d.currency, "customers": len(d.books.customers),
             "joined": sim.joins.counts.get(d.name, 0),
             "quoteFeeFixed": text(d.fees.fixed), "quoteFeePercent": text(d.fees.percent)}
            for d in sim.dfsps.values() if d.name not in sim.pisps
        ])

    @app.post("/<dfsp>/send", name="sim_send")
    async def send(request: Request, dfsp: str) -> HTTPResponse:
        status, body = await send_flow.send(sim, _dfsp(sim, dfsp), json_body(request))
        return reply(body, status)

    @app.route("/<dfsp>/send/<transfer_id>", methods=["GET", "PUT"], name="sim_send_item")
    async def send_item(request: Request, dfsp: str, transfer_id: str) -> HTTPResponse:
        found = _dfsp(sim, dfsp)
        if request.method == "GET":
            return reply(send_flow.current(sim, found, transfer_id))
        status, body = await send_flow.decide(sim, found, transfer_id, json_body(request))
        return reply(body, status)

    @app.get("/<dfsp>/customers", name="sim_customers")
    async def customers(request: Request, dfsp: str) -> HTTPResponse:
        return reply([c.view() for c in _dfsp(sim, dfsp).books.customers.values()])

    @app.post("/<dfsp>/customers", name="sim_customers_join")
    async def join_customer(request: Request, dfsp: str) -> HTTPResponse:
        status, body = await join.join(sim, _dfsp(sim, dfsp), json_body(request))
        return reply(body, status)

    @app.get("/<dfsp>/customers/<customer_id>", name="sim_customer")
    async def one_customer(request: Request, dfsp: str, customer_id: str) -> HTTPResponse:
        found = _dfsp(sim, dfsp)
        customer = found.books.find(customer_id, request.args.get("idType"))
        if customer is None:
            raise FspiopError("3204", f"{customer_id} is not a customer of {found.name}", status=404)
        return reply({**customer.view(), "settings": customer.settings()})

    @app.route("/<dfsp>/faults", methods=["GET", "PUT"], name="sim_faults")
    async def dfsp_faults(request: Request, dfsp: str) -> HTTPResponse:
        found = _dfsp(sim, dfsp)
        if found.name in sim.pisps:
            raise FspiopError("3002", f"{dfsp} is a PISP, not a DFSP")
        if request.method == "PUT":
            return reply(sim.set_fault(found.name, faults.parse(json_body(request))).view(found.name))
        return reply(sim.fault_of(found.name).view(found.name))

    @app.get("/<dfsp>/transfers/recent", name="sim_recent")
    async def recent(request: Request, dfsp: str) -> HTTPResponse:
        found = _dfsp(sim, dfsp)
        return reply({"transfers": found.books.recent(), "unmatchedCallbacks": list(found.unmatched)[::-1],
                      "transactionRequests": payer.recent(found)})

    _use_case_routes(app, sim)


def _customer(dfsp: SimDfsp, customer_id: str, request: Request) -> Customer:
    id_type = request.args.get("idType")
    customer = dfsp.books.find(customer_id, id_type)
    if customer is None:
        raise FspiopError("3100", f"{customer_id} is not a customer of {dfsp.name}")
    return customer


def _use_case_routes(app: Sanic, sim: Simulator) -> None:
    """The driving routes of the payee-initiated, QR and refund use cases (docs/simulator.md)."""

    @app.post("/<dfsp>/requestToPay", name="sim_request_to_pay")
    async def request_to_pay(request: Request, dfsp: str) -> HTTPResponse:
        status, body = await rtp.request_to_pay(sim, _dfsp(sim, dfsp), json_body(request))
        return reply(body, status)

    @app.route("/<dfsp>/requestToPay/<request_id>", methods=["GET", "PUT"], name="sim_request_to_pay_item")
    async def request_to_pay_item(request: Request, dfsp: str, request_id: str) -> HTTPResponse:
        found = _dfsp(sim, dfsp)
        if request.method == "GET":
            return reply(rtp.current(sim, found, request_id))
        status, body = await rtp.type_otp(sim, found, request_id, json_body(request))
        return reply(body, status)

    @app.post("/<dfsp>/qr", name="sim_qr")
    async def make_qr(request: Request, dfsp: str) -> HTTPResponse:
        return reply(_merchant_qr(_dfsp(sim, dfsp), json_body(request)))

    @app.post("/<dfsp>/payQr", name="sim_pay_qr")
    async def pay_qr(request: Request, dfsp: str) -> HTTPResponse:
        status, body = await send_flow.pay_qr(sim, _dfsp(sim, dfsp), json_body(request))
        return reply(body, status)

    @app.get("/<dfsp>/customers/<customer_id>/messages", name="sim_customer_messages")
    async def messages(request: Request, dfsp: str, customer_id: str) -> HTTPResponse:
        customer = _customer(_dfsp(sim, dfsp), customer_id, request)
        return reply({"customer": customer.id, "idType": customer.id_type, "messages": list(customer.phone)[::-1]})

    @app.route("/<dfsp>/customers/<customer_id>/settings", methods=["GET", "PUT"], name="sim_customer_settings")
    async def settings(request: Request, dfsp: str, customer_id: str) -> HTTPResponse:
        customer = _customer(_dfsp(sim, dfsp), customer_id, request)
        if request.method == "PUT":
            body = json_body(request)
            unknown = sorted(set(body) - {"requestToPay"})
            if unknown:
                raise FspiopError("3100", f"{unknown[0]} is not a setting (settings: requestToPay)")
            if "requestToPay" in body:
                if body["requestToPay"] not in REQUEST_TO_PAY_ANSWERS:
                    raise FspiopError("3100", f"requestToPay must be one of {', '.join(REQUEST_TO_PAY_ANSWERS)}")
                customer.request_to_pay = body["requestToPay"]
        return reply({"customer": customer.id, "idType": customer.id_type, "settings": customer.settings()})

    @app.get("/<dfsp>/customers/<customer_id>/requests", name="sim_customer_requests")
    async def requests(request: Request, dfsp: str, customer_id: str) -> HTTPResponse:
        found = _dfsp(sim, dfsp)
        customer = _customer(found, customer_id, request)
        return reply({"customer": customer.id, "requests": payer.waiting_for(found, customer)})

    @app.post("/<dfsp>/customers/<customer_id>/requests/<request_id>", name="sim_customer_request_answer")
    async def answer_request(request: Request, dfsp: str, customer_id: str, request_id: str) -> HTTPResponse:
        found = _dfsp(sim, dfsp)
        customer = _customer(found, customer_id, request)
        return reply(payer.answer_request(found, customer, request_id, json_body(request)))

    @app.get("/<dfsp>/transactionStatus/<transaction_id>", name="sim_transaction_status")
    async def transaction_status(request: Request, dfsp: str, transaction_id: str) -> HTTPResponse:
        status, body = await payer.transaction_status(sim, _dfsp(sim, dfsp), transaction_id)
        return reply(body, status)


QR_FIELDS = ("from", "fromIdType", "amount", "currency", "reference")


def _merchant_qr(dfsp: SimDfsp, body: dict[str, Any]) -> dict[str, Any]:
    """POST /<dfsp>/qr: the QR of one of the DFSP's customers, static or with an amount."""
    unknown = sorted(set(body) - set(QR_FIELDS))
    if unknown:
        raise FspiopError("3100", f"{unknown[0]} is not a field of /qr (fields: {', '.join(QR_FIELDS)})")
    merchant_id = body.get("from")
    if not isinstance(merchant_id, str):
        raise FspiopError("3100", "from is required: the id of the merchant the QR pays")
    id_type = body.get("fromIdType")
    customer = dfsp.books.find(merchant_id, id_type if isinstance(id_type, str) else None)
    if customer is None:
        raise FspiopError("3100", f"{merchant_id} is not a customer of {dfsp.name}")
    amount = body.get("amount")
    if isinstance(amount, float):
        raise FspiopError("3100", "amount must be a string such as \"10.5\" (or an integer), never a float")
    currency = body.get("currency", dfsp.currency)
    if currency != dfsp.currency:
        raise FspiopError("3100", f"{dfsp.name} holds {dfsp.currency} only, not {currency}")
    try:
        payload = qr.QrPayload(dfsp.name, customer.id_type, customer.id, customer.name,
                               None if amount is None else str(amount), currency, body.get("reference"))
        text_payload = qr.make_payload(payload)
    except qr.QrError as exc:
        raise FspiopError("3100", str(exc)) from None
    return {"payload": text_payload, "qr": {
        "fsp": payload.fsp, "idType": payload.id_type, "id": payload.party_id, "name": payload.name,
        "amount": payload.amount, "currency": payload.currency, "reference": payload.reference,
    }, "svg": qr.svg(text_payload), "ascii": qr.ascii_art(text_payload)}


def _bulk_routes(app: Sanic, sim: Simulator) -> None:
    """Bulk payroll (mobile_sim.bulk): the FSPIOP bulk resources, the /participants callbacks, and
    the driving routes POST /<dfsp>/bulkPay and POST /<dfsp>/customers/generate."""
    for resource in bulk_flow.RESOURCES:
        _resource_routes(app, sim, resource)

    @app.put("/<dfsp>/participants/<request_id>", name="sim_participants_batch_put")
    async def participants_put(request: Request, dfsp: str, request_id: str) -> HTTPResponse:
        return _take(sim, request, dfsp, "participants", (request_id,))

    @app.put("/<dfsp>/participants/<request_id>/error", name="sim_participants_batch_error")
    async def participants_error(request: Request, dfsp: str, request_id: str) -> HTTPResponse:
        return _take(sim, request, dfsp, "participants", (request_id,), is_error=True)

    @app.post("/<dfsp>/bulkPay", name="sim_bulk_pay")
    async def bulk_pay(request: Request, dfsp: str) -> HTTPResponse:
        status, body = await bulk_flow.pay(sim, _dfsp(sim, dfsp), json_body(request))
        return reply(body, status)

    @app.post("/<dfsp>/customers/generate", name="sim_customers_generate")
    async def generate(request: Request, dfsp: str) -> HTTPResponse:
        status, body = await bulk_flow.generate(sim, _dfsp(sim, dfsp), json_body(request))
        return reply(body, status)


def _thirdparty_routes(app: Sanic, sim: Simulator) -> None:
    """The Third-party API's routes (what the hub forwards) and its driving routes."""

    def take(request: Request, name: str, is_error: bool = False) -> HTTPResponse:
        sim.base_url = f"{request.scheme}://{request.host}"  # how the hub reaches us: for authUri, callbackUri
        resource, ids = thirdparty.resource_of(request.path[len(name) + 1:])
        return _take(sim, request, name, resource, ids, is_error)

    for resource in ("accounts", "consentRequests", "consents", "services", "thirdpartyRequests/<kind>"):
        _thirdparty_resource(app, resource, take)

    @app.put("/<dfsp>/participants/<id_type>/<party_id>", name="sim_tp_participant_put")
    async def participant_put(request: Request, dfsp: str, id_type: str, party_id: str) -> HTTPResponse:
        return _take(sim, request, dfsp, "participants", (id_type, party_id))

    @app.put("/<dfsp>/participants/<id_type>/<party_id>/error", name="sim_tp_participant_error")
    async def participant_error(request: Request, dfsp: str, id_type: str, party_id: str) -> HTTPResponse:
        return _take(sim, request, dfsp, "participants", (id_type, party_id), is_error=True)

    # --- the PISP's driving API (mobile_sim.pisp)
    def here(request: Request) -> None:
        if not sim.base_url:
            sim.base_url = f"{request.scheme}://{request.host}"

    @app.get("/pisps", name="sim_pisps")
    async def list_pisps(request: Request) -> HTTPResponse:
        return reply([{"name": p.name, "links": len(p.links)} for p in sim.pisps.values()])

    @app.post("/<name>/link", name="sim_pisp_link")
    async def link(request: Request, name: str) -> HTTPResponse:
        here(request)
        status, body = await pisp.link(sim, name, json_body(request))
        return reply(body, status)

    @app.post("/<name>/pay", name="sim_pisp_pay")
    async def pay(request: Request, name: str) -> HTTPResponse:
        status, body = await pisp.pay(sim, name, json_body(request))
        return reply(body, status)

    @app.post("/<name>/unlink", name="sim_pisp_unlink")
    async def unlink(request: Request, name: str) -> HTTPResponse:
        status, body = await pisp.unlink(sim, name, json_body(request))
        return reply(body, status)

    @app.get("/<name>/links", name="sim_pisp_links")
    async def links(request: Request, name: str) -> HTTPResponse:
        return reply(pisp.links(sim, name))

    @app.get("/<name>/linked", name="sim_pisp_linked")
    async def linked(request: Request, name: str) -> HTTPResponse:
        pisp.pisp_of(sim, name)
        return html(f"<!doctype html><p>Back in {name}: you can close this page.</p>")

    # --- the DFSP's side (mobile_sim.tpdfsp)
    def account_holder(name: str) -> SimDfsp:
        found = _dfsp(sim, name)
        if found.name in sim.pisps:
            raise FspiopError("3002", f"{name} is a PISP, not a DFSP")
        return found

    @app.get("/<dfsp>/consents", name="sim_dfsp_consents")
    async def consents(request: Request, dfsp: str) -> HTTPResponse:
        found = account_holder(dfsp)
        return reply({"dfsp": found.name, "consents": [
            c.view() for c in list(tpdfsp.state_of(found).consents.values())[::-1]]})

    @app.post("/<dfsp>/consents/<consent_id>/revoke", name="sim_dfsp_revoke")
    async def revoke(request: Request, dfsp: str, consent_id: str) -> HTTPResponse:
        found = account_holder(dfsp)
        consent = tpdfsp.state_of(found).consents.get(consent_id)
        if consent is None:
            raise FspiopError("3100", f"{found.name} has no consent {consent_id}")
        if consent.state == "REVOKED":
            raise FspiopError("3100", f"consent {consent_id} was already revoked at {consent.revoked_at}")
        return reply(await tpdfsp.revoke(sim, found, consent, by=found.name))

    @app.route("/<dfsp>/tplogin/<request_id>", methods=["GET", "POST"], name="sim_dfsp_login")
    async def login(request: Request, dfsp: str, request_id: str) -> HTTPResponse:
        found = account_holder(dfsp)
        if request.method == "GET":
            status, page = tpdfsp.login_page(found, request_id)
            return html(page, status=status)
        decision = request.form.get("decision") if request.form else None
        if decision is None and request.body:
            decision = json_body(request).get("decision")
        if decision not in ("allow", "deny"):
            raise FspiopError("3100", 'decision must be "allow" or "deny"')
        status, location, text_ = tpdfsp.web_login(sim, found, request_id, decision)
        if location is None:
            return html(f"<!doctype html><p>{text_}</p>", status=status)
        return redirect(location, status=303)


def _thirdparty_resource(app: Sanic, resource: str, take: Any) -> None:
    """POST /<resource>, GET/PUT/PATCH/DELETE /<resource>/{ID}, PUT /<resource>/{ID}/error."""
    base = f"/<name>/{resource}"
    label = resource.split("/")[0]

    def kind_ok(kind: str | None) -> None:
        if kind is not None and kind not in thirdparty.TP_KINDS:
            raise FspiopError("3002", f"/thirdpartyRequests/{kind} is not a resource")

    @app.post(base, name=f"sim_tp_{label}_post")
    async def post(request: Request, name: str, kind: str | None = None) -> HTTPResponse:
        kind_ok(kind)
        return take(request, name)

    @app.route(base + "/<item>", methods=["GET", "PUT", "PATCH", "DELETE"], name=f"sim_tp_{label}_item")
    async def item(request: Request, name: str, item: str, kind: str | None = None) -> HTTPResponse:
        kind_ok(kind)
        return take(request, name)

    @app.put(base + "/<item>/error", name=f"sim_tp_{label}_error")
    async def error(request: Request, name: str, item: str, kind: str | None = None) -> HTTPResponse:
        kind_ok(kind)
        return take(request, name, is_error=True)
