"""Messaging: the embedded nats-server, the subject scheme, and publishing hub events."""
