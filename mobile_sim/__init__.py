"""Simulated DFSPs and the mobile wallet simulator: ordinary FSPIOP clients of the switch."""
