"""The HTTP layer: one Sanic app per API and port, as Mojaloop serves them. Apps parse, call a
service and serialise; they never touch SQL."""
