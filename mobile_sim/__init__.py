"""Simulated DFSPs and the mobile wallet simulator: ordinary FSPIOP clients of the switch.

Entry point: `sim_app(hub, switch_url, health)` builds the Sanic app of the sim port
(mobile_sim.app); the hub serves it at hub.urls["sim"].
"""

from mobile_sim.app import sim_app

__all__ = ["sim_app"]
