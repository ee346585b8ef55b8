"""miniloop's own exceptions (FSPIOP errors are in miniloop.fspiop.errors).

    MiniloopError           a problem the user can fix; printed as one line, exit status 2
    ├── ConfigError         a bad flag, environment variable, settings file or hub file
    └── StartupError        the hub cannot start: a port in use, an unwritable data directory,
                            no nats-server binary, a ledger from a newer miniloop
"""


class MiniloopError(Exception):
    """An error the user can act on; the command line prints it as one line."""


class ConfigError(MiniloopError):
    """Settings or a hub file that cannot be used as they are."""


class StartupError(MiniloopError):
    """The hub cannot start; nothing is left running."""
