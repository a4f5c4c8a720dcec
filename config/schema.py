"""Typed, validated settings read from one TOML file.

Unknown keys are errors named by their dotted path, so a typo never turns
into a silently ignored setting.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from onplatform.daemon.errors import ConfigError
from onplatform.detectors.analyzer import MODEL_WEIGHT

TlsMode = Literal["implicit", "starttls", "none"]
TLS_MODES: tuple[TlsMode, ...] = ("implicit", "starttls", "none")
DEFAULT_CONFIG_PATH = Path("/etc/onplatform/config.toml")


@dataclass(frozen=True)
class AccountSettings:
    name: str
    host: str
    port: int
    tls: TlsMode
    username: str
    ca_file: Path | None = None
    password_file: Path | None = None
    password_command: tuple[str, ...] | None = None
    password_credential: str | None = None
    folders: tuple[str, ...] = ("INBOX",)
    drafts_folder: str | None = None
    poll_interval: float = 60.0
    from_address: str | None = None
    max_message_bytes: int = 2_000_000
    fetch_batch: int = 200
    timeout: float = 30.0
    sender_search: str = "upwork"
    idle: bool = False
    idle_restart: float = 1500.0
    backfill_days: int = 14


@dataclass(frozen=True)
class StateSettings:
    path: Path


@dataclass(frozen=True)
class DraftSettings:
    templates_dir: Path | None = None
    freelancer_name: str = ""
    signature: str = ""
    default_language: str = "en"


@dataclass(frozen=True)
class ModelSettings:
    """The statistical second opinion blended with the rules (``[detectors.model]``)."""

    enabled: bool = True
    weight: float = MODEL_WEIGHT
    """The model's share of the blended score (0: rules only, 1: model only)."""
    path: Path | None = None
    """A model file of one's own (scripts/train_model.py --output); None: the shipped one."""


@dataclass(frozen=True)
class DetectorSettings:
    """Per-detector tables plus the options shared by all detectors."""

    threshold: float = 0.5
    lexicon_paths: tuple[Path, ...] = ()
    rules: tuple[Mapping[str, Any], ...] = ()
    tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    model: ModelSettings = field(default_factory=ModelSettings)
    workers: int | None = None
    """Processes that parse and assess a large poll (a first start, a backfill);
    None: one per available core, none on a single core; 0 or 1: never."""

    def enabled(self, name: str) -> bool:
        return bool(self.tables.get(name, {}).get("enabled", True))


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "info"
    format: Literal["auto", "json", "console"] = "auto"


@dataclass(frozen=True)
class MetricsSettings:
    listen: str | None = None
    """host:port of the Prometheus endpoint; None keeps it off."""


@dataclass(frozen=True)
class Settings:
    accounts: tuple[AccountSettings, ...]
    state: StateSettings
    drafts: DraftSettings
    detectors: DetectorSettings
    logging: LoggingSettings
    metrics: MetricsSettings = MetricsSettings()
    dry_run: bool = False
    source: Path | None = None


def default_state_path(environ: Mapping[str, str] = os.environ) -> Path:
    state_dir = environ.get("STATE_DIRECTORY")
    if state_dir:
        # systemd may hand over several directories separated by colons.
        return Path(state_dir.split(":")[0]) / "state.sqlite3"
    return Path.home() / ".local" / "state" / "onplatform" / "state.sqlite3"


def load_config(path: Path, environ: Mapping[str, str] = os.environ) -> Settings:
    """Read and validate the TOML file at ``path``."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config: {err.strerror or err}") from err
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from err
    try:
        return parse_settings(document, base_dir=path.parent, environ=environ, source=path)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err


def parse_settings(
    document: Mapping[str, Any],
    *,
    base_dir: Path = Path("."),
    environ: Mapping[str, str] = os.environ,
    source: Path | None = None,
) -> Settings:
    top = _Table(document, "")
    top.allow({"accounts", "state", "drafts", "detectors", "logging", "metrics", "dry_run"})
    accounts_raw = top.get("accounts", list)
    if not accounts_raw:
        raise ConfigError("accounts: at least one [[accounts]] table is required")
    accounts = tuple(
        _account(_Table(item, f"accounts[{index}]"), base_dir)
        for index, item in enumerate(_table_list(accounts_raw, "accounts"))
    )
    names = [account.name for account in accounts]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ConfigError(f"accounts[{index}].name: duplicate account name {name!r}")
    state_table = _Table(top.get("state", dict, {}), "state")
    state_table.allow({"path"})
    state_path = state_table.get("path", str, "")
    state = StateSettings(
        path=_path(state_path, base_dir) if state_path else default_state_path(environ)
    )
    return Settings(
        accounts=accounts,
        state=state,
        drafts=_drafts(_Table(top.get("drafts", dict, {}), "drafts"), base_dir),
        detectors=_detectors(_Table(top.get("detectors", dict, {}), "detectors"), base_dir),
        logging=_logging(_Table(top.get("logging", dict, {}), "logging")),
        metrics=_metrics(_Table(top.get("metrics", dict, {}), "metrics")),
        dry_run=top.get("dry_run", bool, False),
        source=source,
    )


class _Table:
    """A TOML table that knows its dotted path, for error messages."""

    def __init__(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path or 'top level'}: expected a table")
        self.value: Mapping[str, Any] = value
        self.path = path

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def allow(self, keys: set[str]) -> None:
        for key in self.value:
            if key not in keys:
                raise ConfigError(f"{self.key_path(key)}: unknown key")

    def get(self, key: str, kind: type[Any], default: Any = ...) -> Any:
        if key not in self.value:
            if default is ...:
                raise ConfigError(f"{self.key_path(key)}: required key is missing")
            return default
        value = self.value[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(
                f"{self.key_path(key)}: expected {_kind_name(kind)}, got {type(value).__name__}"
            )
        return value

    def text(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, str, default)
        if isinstance(value, str) and default is ... and not value.strip():
            raise ConfigError(f"{self.key_path(key)}: must not be empty")
        return value

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.get(key, list, list(default))
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise ConfigError(f"{self.key_path(key)}[{index}]: expected a non-empty string")
        return tuple(value)

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value: float = self.get(key, float, default)
        if not low <= value <= high:
            raise ConfigError(f"{self.key_path(key)}: {value} is outside {low}..{high}")
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value: int = self.get(key, int, default)
        if not low <= value <= high:
            raise ConfigError(f"{self.key_path(key)}: {value} is outside {low}..{high}")
        return value


def _kind_name(kind: type[Any]) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "an array",
        dict: "a table",
    }.get(kind, kind.__name__)


def _table_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{path}: expected an array of tables")
    return value


def _path(value: str, base_dir: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_ACCOUNT_KEYS = {
    "name",
    "host",
    "port",
    "tls",
    "ca_file",
    "username",
    "password_file",
    "password_command",
    "password_credential",
    "folders",
    "drafts_folder",
    "poll_interval",
    "from_address",
    "max_message_bytes",
    "fetch_batch",
    "timeout",
    "sender_search",
    "idle",
    "idle_restart",
    "backfill_days",
}


def _account(table: _Table, base_dir: Path) -> AccountSettings:
    table.allow(_ACCOUNT_KEYS)
    tls = table.get("tls", str, "implicit")
    if tls not in TLS_MODES:
        raise ConfigError(f"{table.key_path('tls')}: must be one of {', '.join(TLS_MODES)}")
    host = table.text("host")
    if tls == "none" and not is_loopback(host):
        raise ConfigError(
            f'{table.key_path("tls")}: "none" sends the password in clear; '
            f"it is allowed only for a loopback host, not {host!r}"
        )
    port = table.integer("port", 993 if tls == "implicit" else 143, 1, 65535)
    password_sources = [
        k for k in ("password_file", "password_command", "password_credential") if k in table.value
    ]
    if len(password_sources) != 1:
        raise ConfigError(
            f"{table.path}: set exactly one of password_file, password_command, "
            f"password_credential (found {len(password_sources) or 'none'})"
        )
    command: tuple[str, ...] | None = None
    if "password_command" in table.value:
        raw_command = table.value["password_command"]
        if isinstance(raw_command, str):
            raw_command = [raw_command]
        command = _Table({"password_command": raw_command}, table.path).strings(
            "password_command", ()
        )
        if not command:
            raise ConfigError(f"{table.key_path('password_command')}: must not be empty")
    ca_file = table.get("ca_file", str, "")
    password_file = table.get("password_file", str, "")
    drafts_folder = table.get("drafts_folder", str, "")
    from_address = table.get("from_address", str, "")
    folders = table.strings("folders", ("INBOX",))
    if not folders:
        raise ConfigError(f"{table.key_path('folders')}: name at least one folder")
    return AccountSettings(
        name=table.text("name"),
        host=host,
        port=port,
        tls=tls,
        username=table.text("username"),
        ca_file=_path(ca_file, base_dir) if ca_file else None,
        password_file=_path(password_file, base_dir) if password_file else None,
        password_command=command,
        password_credential=table.get("password_credential", str, None),
        folders=folders,
        drafts_folder=drafts_folder or None,
        poll_interval=table.number("poll_interval", 60.0, 1.0, 86_400.0),
        from_address=from_address or None,
        max_message_bytes=table.integer("max_message_bytes", 2_000_000, 1_024, 200_000_000),
        fetch_batch=table.integer("fetch_batch", 200, 1, 5_000),
        timeout=table.number("timeout", 30.0, 1.0, 600.0),
        sender_search=table.get("sender_search", str, "upwork"),
        idle=table.get("idle", bool, False),
        # RFC 2177 servers may drop IDLE after 30 minutes; some cut it at 10.
        idle_restart=table.number("idle_restart", 1500.0, 30.0, 1740.0),
        backfill_days=table.integer("backfill_days", 14, 0, 36_500),
    )


def _drafts(table: _Table, base_dir: Path) -> DraftSettings:
    table.allow({"templates_dir", "freelancer_name", "signature", "default_language"})
    templates_dir = table.get("templates_dir", str, "")
    return DraftSettings(
        templates_dir=_path(templates_dir, base_dir) if templates_dir else None,
        freelancer_name=table.get("freelancer_name", str, ""),
        signature=table.get("signature", str, ""),
        default_language=table.get("default_language", str, "en"),
    )


def _detectors(table: _Table, base_dir: Path) -> DetectorSettings:
    tables: dict[str, Mapping[str, Any]] = {}
    rules: list[Mapping[str, Any]] = []
    model = ModelSettings()
    for key, value in table.value.items():
        if key in {"threshold", "lexicon_paths", "workers"}:
            continue
        if key == "model":
            model = _model(_Table(value, table.key_path(key)), base_dir)
            continue
        if key == "rules":
            for index, rule in enumerate(_table_list(value, table.key_path("rules"))):
                rules.append(_Table(rule, f"{table.key_path('rules')}[{index}]").value)
            continue
        # Detector names are checked against the registry when the pipeline is built.
        sub = _Table(value, table.key_path(key))
        enabled = sub.get("enabled", bool, True)
        tables[key] = {**sub.value, "enabled": enabled}
    return DetectorSettings(
        threshold=table.number("threshold", 0.5, 0.0, 1.0),
        lexicon_paths=tuple(_path(p, base_dir) for p in table.strings("lexicon_paths", ())),
        rules=tuple(rules),
        tables=tables,
        model=model,
        workers=_workers(table),
    )


def _model(table: _Table, base_dir: Path) -> ModelSettings:
    table.allow({"enabled", "weight", "path"})
    path = table.get("path", str, "")
    return ModelSettings(
        enabled=table.get("enabled", bool, True),
        weight=table.number("weight", ModelSettings.weight, 0.0, 1.0),
        path=_path(path, base_dir) if path else None,
    )


def _workers(table: _Table) -> int | None:
    value = table.value.get("workers", "auto")
    if value == "auto":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 64:
        return value
    raise ConfigError(f'{table.key_path("workers")}: expected "auto" or an integer 0..64')


def _logging(table: _Table) -> LoggingSettings:
    table.allow({"level", "format"})
    level = table.get("level", str, "info").lower()
    if level not in {"debug", "info", "warning", "error"}:
        raise ConfigError(f"{table.key_path('level')}: must be debug, info, warning or error")
    log_format = table.get("format", str, "auto")
    if log_format not in {"auto", "json", "console"}:
        raise ConfigError(f"{table.key_path('format')}: must be auto, json or console")
    return LoggingSettings(level=level, format=log_format)


def _metrics(table: _Table) -> MetricsSettings:
    table.allow({"listen"})
    listen = table.get("listen", str, "")
    if not listen:
        return MetricsSettings()
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"metrics.listen: expected host:port, got {listen!r}")
    return MetricsSettings(listen=listen)
