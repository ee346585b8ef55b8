"""The hub's side of the Third-party API (PISP) that is not routing: the hub-hosted auth-service.

`credentials` is pure (no I/O): the challenge a consent's credential signs, and the checks of
GENERIC (ECDSA P-256) and FIDO (WebAuthn) credentials and signatures. The auth-service itself,
the participant `centralAuth`, is miniloop.services.auth_service with its routes in
miniloop.api.auth_service (docs/thirdparty.md, "The hub's auth-service").
"""
