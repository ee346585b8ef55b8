"""Which participants exist and are active, kept in memory for the header check of every request.

FSPIOP-Source must name a registered, active participant before anything else happens. Asking
SQLite on every request would cost a database round trip on the hot path; participants change
rarely, and every change publishes a `participant` event after its commit, so the cache is
dropped on those events and read again on the next request.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from miniloop.bus import subjects
from miniloop.fspiop import signature
from miniloop.fspiop.errors import FspiopError
from miniloop.ledger import Ledger
from miniloop.services.participants import HUB_NAME

_PARTICIPANT_EVENTS = f"{subjects.PREFIX}.participant."


class Directory:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._active: dict[str, bool] | None = None
        self._keys: dict[str, rsa.RSAPublicKey] = {}  # JWS public keys, read with _active
        self._generation = 0  # a read that started before a change must not refill the cache

    def on_events(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Called with every committed batch of events: a participant change empties the cache."""
        if any(subject.startswith(_PARTICIPANT_EVENTS) for subject, _ in events):
            self._active = None
            self._keys = {}
            self._generation += 1

    async def require_active(self, name: str) -> None:
        """3100 unless `name` is a registered, active participant. The Hub is one, but only the hub
        itself sends as the Hub: a request that says it comes from the Hub came from someone else."""
        if name == HUB_NAME:
            raise FspiopError("3100", f"FSPIOP-Source {name} is the hub itself: a DFSP sends as itself")
        active, _ = await self._load()
        if name not in active:
            raise FspiopError("3100", f"FSPIOP-Source {name} is not a registered participant")
        if not active[name]:
            raise FspiopError("3100", f"FSPIOP-Source {name} is not an active participant")

    async def public_key(self, name: str) -> rsa.RSAPublicKey | None:
        """The JWS public key `name` registered (PUT /participants/{name}/jwsKey), or None."""
        _, keys = await self._load()
        return keys.get(name)

    async def _load(self) -> tuple[dict[str, bool], dict[str, rsa.RSAPublicKey]]:
        """Who is active, and the registered keys: cached, read again after a participant change."""
        active, keys = self._active, self._keys
        if active is None:
            generation = self._generation
            rows = await self._ledger.fetch_all("SELECT name, is_active, jws_public_key FROM participant")
            active = {r["name"]: bool(r["is_active"]) for r in rows}
            keys = {}
            for r in rows:
                if r["jws_public_key"]:
                    with suppress(ValueError):  # checked when registered; never expected here
                        keys[r["name"]] = signature.public_key_from_pem(r["jws_public_key"])
            if generation == self._generation:
                self._active, self._keys = active, keys
        return active, keys
