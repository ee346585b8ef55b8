"""The outputs of a scenario run: live terminal progress, JUnit XML for CI, a self-contained HTML report.

Why a package of its own: each output only reads miniloop.scenario.results (a RunResult, or the
step events the engine sends while it runs), so the engine never needs to know how it is shown.
"""
