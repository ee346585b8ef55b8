"""FSPIOP error codes, and the one exception that carries them to an HTTP answer.

Every API miniloop serves (FSPIOP, the central-ledger Admin API, the Settlement API, the ALS
admin API) answers errors with the same body, `{"errorInformation": {"errorCode",
"errorDescription"}}`, as Mojaloop does. The description is the code's name, then, when there is
more to say, " - " and the detail: "Generic client error - Participant currency has already been
registered".
"""

from __future__ import annotations

from typing import Any

# code -> (name, HTTP status Mojaloop answers with when the error is synchronous)
ERROR_CODES: dict[str, tuple[str, int]] = {
    "1000": ("Communication error", 503),
    "1001": ("Destination communication error", 503),
    "2000": ("Generic server error", 500),
    "2001": ("Internal server error", 500),
    "2002": ("Not implemented", 501),
    "2003": ("Service currently unavailable", 503),
    "2004": ("Server timed out", 500),
    "2005": ("Server busy", 500),
    "3000": ("Generic client error", 400),
    "3001": ("Unacceptable version requested", 406),
    "3002": ("Unknown URI", 404),
    "3003": ("Add Party information error", 400),
    "3040": ("Delete Party information error", 400),
    "3100": ("Generic validation error", 400),
    "3101": ("Malformed syntax", 400),
    "3102": ("Missing mandatory element", 400),
    "3103": ("Too many elements", 400),
    "3104": ("Too large payload", 400),
    "3105": ("Invalid signature", 400),
    "3106": ("Modified request", 400),
    "3107": ("Missing mandatory extension parameter", 400),
    "3200": ("Generic ID not found", 400),
    "3201": ("Destination FSP Error", 400),
    "3202": ("Payer FSP ID not found", 400),
    "3203": ("Payee FSP ID not found", 400),
    "3204": ("Party not found", 400),
    "3205": ("Quote ID not found", 400),
    "3206": ("Transaction request ID not found", 400),
    "3207": ("Transaction ID not found", 400),
    "3208": ("Transfer ID not found", 400),
    "3209": ("Bulk quote ID not found", 400),
    "3210": ("Bulk transfer ID not found", 400),
    "3300": ("Generic expired error", 400),
    "3301": ("Transaction request expired", 400),
    "3302": ("Quote expired", 400),
    "3303": ("Transfer expired", 400),
    "4000": ("Generic Payer error", 400),
    "4001": ("Payer FSP insufficient liquidity", 400),
    "4100": ("Generic Payer rejection", 400),
    "4101": ("Payer rejected transaction request", 400),
    "4102": ("Payer FSP unsupported transaction type", 400),
    "4103": ("Payer unsupported currency", 400),
    "4200": ("Payer limit error", 400),
    "4300": ("Payer permission error", 400),
    "4400": ("Generic Payer blocked error", 400),
    "5000": ("Generic Payee error", 400),
    "5001": ("Payee FSP insufficient liquidity", 400),
    "5100": ("Generic Payee rejection", 400),
    "5101": ("Payee rejected quote", 400),
    "5102": ("Payee FSP unsupported transaction type", 400),
    "5103": ("Payee FSP rejected quote", 400),
    "5104": ("Payee rejected transaction", 400),
    "5105": ("Payee FSP rejected transaction", 400),
    "5106": ("Payee unsupported currency", 400),
    "5200": ("Payee limit error", 400),
    "5300": ("Payee permission error", 400),
    "5400": ("Generic Payee blocked error", 400),
}


DESCRIPTION_MAX = 128  # the specification's limit for errorDescription


def describe(code: str, detail: str | None = None) -> str:
    """The errorDescription Mojaloop writes: the code's name, then " - detail" if any (cut to 128)."""
    name = ERROR_CODES[code][0]
    text = f"{name} - {detail}" if detail else name
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1] + "…"


class FspiopError(Exception):
    """An error with an FSPIOP code; the HTTP layer turns it into an errorInformation body.

    `status` is the HTTP status of a synchronous answer; it defaults to the one Mojaloop uses
    for the code.
    """

    def __init__(
        self,
        code: str,
        detail: str | None = None,
        *,
        status: int | None = None,
        extensions: list[dict[str, str]] | None = None,
    ) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown FSPIOP error code {code!r}")
        self.code = code
        self.description = describe(code, detail)
        self.status = status if status is not None else ERROR_CODES[code][1]
        self.extensions = extensions
        super().__init__(f"{code} {self.description}")

    def body(self) -> dict[str, Any]:
        """The `{"errorInformation": ...}` body of the specification."""
        info: dict[str, Any] = {"errorCode": self.code, "errorDescription": self.description}
        if self.extensions:
            info["extensionList"] = {"extension": self.extensions}
        return {"errorInformation": info}


def not_found(detail: str) -> FspiopError:
    """3200, the code Mojaloop's admin APIs give for an id that does not exist."""
    return FspiopError("3200", detail)


def client_error(detail: str) -> FspiopError:
    """3000, Mojaloop's catch-all for a request that is well formed but not allowed."""
    return FspiopError("3000", detail)


def validation_error(detail: str) -> FspiopError:
    """3100, the code for a body that breaks a rule of the API."""
    return FspiopError("3100", detail)
