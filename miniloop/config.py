"""Settings: flags, then MINILOOP_* environment variables, then a TOML settings file, then defaults.

Every setting has one name used in all four places: `--fspiop-port`, `MINILOOP_FSPIOP_PORT`,
`fspiop_port = 3000` in the settings file. The settings file is `--config FILE`, or
`MINILOOP_CONFIG`, or `config.toml` in the per-user config directory when it exists.
"""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from miniloop.errors import ConfigError

ENV_PREFIX = "MINILOOP_"
LOG_LEVELS = ("debug", "info", "warning", "error")


def user_data_dir() -> Path:
    """Where a user's hub lives unless told otherwise (the platform's per-user data location)."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "miniloop"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "miniloop"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "miniloop"


def user_config_file() -> Path:
    """Kept out of the data directory, so `miniloop reset` never deletes it."""
    if os.name == "nt":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "miniloop" / "config.toml"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "miniloop" / "config.toml"


@dataclass
class Settings:
    """Everything `miniloop up` needs to know. Ports follow Mojaloop's well-known ones."""

    data_dir: Path = field(default_factory=user_data_dir)
    hub_file: Path | None = None  # None: the demo hub shipped with miniloop
    empty: bool = False
    headless: bool = False
    host: str = "127.0.0.1"
    nats_url: str | None = None
    fspiop_port: int = 3000  # every FSPIOP resource, as Mojaloop's API gateway serves them
    admin_port: int = 3001  # central-ledger Admin API
    settlement_port: int = 3007  # central-settlement, base path /v2
    als_admin_port: int = 4001  # account-lookup-service admin API (/oracles)
    sim_port: int = 3090  # the simulated DFSPs' own FSPIOP endpoints
    wallet_port: int = 3080  # the mobile wallet simulator: phones, tills and the hub pane in a browser
    log_level: str = "warning"
    # the Admin, Settlement and ALS admin ports: loopback only unless a token or --insecure (docs/reliability.md)
    admin_token: str | None = None
    insecure: bool = False
    # JWS (FSPIOP-Signature), both off by default (docs/reliability.md, "Security"): check the
    # signature of requests from participants with a registered key; sign the hub's own messages
    verify_signatures: bool = False
    sign_messages: bool = False
    # TLS on the FSPIOP port, mutual with a client CA, and for https callbacks; all off by default
    # (docs/reliability.md, "Mutual TLS")
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    tls_callback_ca: Path | None = None
    # with tls_client_ca: a client certificate may send as any FSPIOP-Source, not only the
    # participant it names (off: binding is on with mutual TLS)
    tls_any_source: bool = False

    def ports(self) -> dict[str, int]:
        return {
            "fspiop": self.fspiop_port,
            "admin": self.admin_port,
            "settlement": self.settlement_port,
            "als_admin": self.als_admin_port,
            "sim": self.sim_port,
            "wallet": self.wallet_port,
        }


_TYPES: dict[str, type] = {f.name: f.type for f in fields(Settings)}  # type: ignore[misc]


def _convert(name: str, value: Any, origin: str) -> Any:
    """Turn a value from the environment or the TOML file into the setting's type."""
    kind = _TYPES[name]
    try:
        if "int" in str(kind):
            if isinstance(value, bool):
                raise ValueError
            number = int(value)
            if not 0 <= number <= 65535:
                raise ValueError
            return number
        if "bool" in str(kind):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError
        if "Path" in str(kind):
            return Path(str(value)).expanduser()
        if name == "log_level":
            if str(value).lower() not in LOG_LEVELS:
                raise ValueError
            return str(value).lower()
        return str(value)
    except ValueError:
        expected = {"int": "a port number (0-65535)", "bool": "true or false"}.get(
            "int" if "int" in str(kind) else "bool" if "bool" in str(kind) else "",
            "one of " + ", ".join(LOG_LEVELS),
        )
        raise ConfigError(f"{origin}: {name} must be {expected}, not {value!r}") from None


def load(flags: dict[str, Any], config_file: Path | None = None) -> Settings:
    """Resolve the settings; `flags` holds only the options given on the command line."""
    file_values: dict[str, Any] = {}
    path = config_file or _env_path("CONFIG")
    if path is None and user_config_file().is_file():
        path = user_config_file()
    if path is not None:
        file_values = read_settings_file(path)
    settings = Settings()
    for name in _TYPES:
        env = os.environ.get(ENV_PREFIX + name.upper())
        if name in flags and flags[name] is not None:
            value = flags[name]
        elif env is not None:
            value = _convert(name, env, f"environment variable {ENV_PREFIX}{name.upper()}")
        elif name in file_values:
            value = _convert(name, file_values[name], f"settings file {path}")
        else:
            continue
        setattr(settings, name, value)
    return settings


def _env_path(name: str) -> Path | None:
    value = os.environ.get(ENV_PREFIX + name)
    return Path(value).expanduser() if value else None


def read_settings_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"settings file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"settings file {path}: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"settings file {path} cannot be read: {exc}") from None
    unknown = sorted(set(data) - set(_TYPES))
    if unknown:
        raise ConfigError(
            f"settings file {path}: unknown setting {unknown[0]!r} "
            f"(known: {', '.join(sorted(_TYPES))})"
        )
    return data
