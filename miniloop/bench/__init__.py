"""`miniloop bench`: how many payments a second the switch sustains, and how fast it answers.

run.py drives a measurement (a fresh hub, onboarding, load, figures, ledger check); dfsp.py is a
simulated DFSP in its own process; wire.py the lean HTTP it speaks; forwarder.py the baseline
that shows what HTTP alone allows on the same machine.
"""
