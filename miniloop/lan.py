"""The address other machines on the network reach this one at, for the workshop's join QR code.

Why a UDP "connect": it asks the kernel which local address it would use to reach an outside
address, without sending a packet, so it works offline on a workshop's Wi-Fi (no DNS, no
internet). Several addresses are tried because a machine without a default route (a Raspberry
Pi on an isolated access point) still has a route to its own LAN.
"""

from __future__ import annotations

import socket

# documentation and private ranges: connecting a UDP socket sends nothing, it only picks a route
_PROBES = ("192.0.2.1", "10.255.255.255", "172.31.255.255", "192.168.255.255")
WILDCARD_HOSTS = ("0.0.0.0", "", "::")


def lan_address() -> str | None:
    """This machine's LAN IPv4 address, or None when it has only loopback."""
    for probe in _PROBES:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect((probe, 9))
            except OSError:
                continue
            address = sock.getsockname()[0]
        if address and not address.startswith("127.") and address != "0.0.0.0":
            return address
    return None


def join_host(listen_host: str) -> str | None:
    """The host a phone on the LAN should use for a hub listening on `listen_host`.

    None when the hub listens on loopback only: phones could not reach it, so there is nothing
    to offer them.
    """
    if listen_host in WILDCARD_HOSTS:
        return lan_address()
    if listen_host.startswith("127.") or listen_host in ("localhost", "::1"):
        return None
    return f"[{listen_host}]" if ":" in listen_host else listen_host
