"""The FSPIOP contract in our own code: error codes, media types, bodies. No I/O here."""
