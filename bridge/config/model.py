"""The configuration: TOML parsed once into frozen, typed values. Every error names the file and the key.

``etc/naemon-bridge.toml`` documents every key. Relative paths are taken relative to the config file's folder.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import ipaddress
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.core.alignak import AlignakOptions as AlignakConfig
from bridge.core.command_table import COMMANDS
from bridge.core.freshness import FreshnessRule
from bridge.core.nsca import Method as NscaMethod
from bridge.core.nsca import supported_methods as nsca_methods
from bridge.core.permissions import Grants, NamePattern
from bridge.core.values import EngineKind, FsyncPolicy, HostState, ServiceState

DEFAULT_CONFIG_PATH = Path("/etc/naemon-bridge/naemon-bridge.toml")
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_COMMAND_FILE = Path("/var/lib/naemon/naemon.cmd")
DEFAULT_SPOOL_DIRECTORY = Path("/var/spool/naemon-bridge")
# A day of a busy site: 100 results/s x 86,400 s x ~200 bytes a spooled result is about 1.7 GB.
DEFAULT_SPOOL_MAX_BYTES = 2 * 1024**3
MIN_SPOOL_MAX_BYTES = 64 * 1024
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_TARGETS = ("stderr", "syslog", "file")


class ConfigError(Exception):
    """A config problem: ``file: [section] key: reason``."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        super().__init__(f"{source}: {key}: {reason}" if key else f"{source}: {reason}")
        self.source = source
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8888
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    shutdown_timeout: float = 10.0
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    user: str | None = None
    group: str | None = None
    workers: int = 1
    # Slow and idle clients (seconds): a request head must be complete this long after its first byte (or after
    # the connection opened), a body this long after the bridge starts reading it; an idle keep-alive connection
    # is closed after keepalive_timeout. At most max_connections are open at once per process.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 75.0
    max_connections: int = 1000

    @property
    def listen(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class EngineConfig:
    kind: EngineKind = EngineKind.NAEMON
    command_file: Path = DEFAULT_COMMAND_FILE
    objects_cache: Path | None = None
    status_file: Path | None = None
    query_socket: Path | None = None
    query_connections: int = 4
    busy_wait: float = 1.0  # seconds a full pipe is waited out while the engine reads, before lines are spooled


@dataclass(frozen=True, slots=True)
class SpoolConfig:
    directory: Path = DEFAULT_SPOOL_DIRECTORY
    fsync: FsyncPolicy = FsyncPolicy.ALWAYS
    fsync_interval: float = 1.0
    max_bytes: int = DEFAULT_SPOOL_MAX_BYTES


@dataclass(frozen=True, slots=True)
class FreshnessConfig:
    default_threshold: int | None = None
    sweep_interval: float = 1.0
    submit_stale: bool = False
    stale_service_state: ServiceState = ServiceState.CRITICAL
    stale_host_state: HostState = HostState.DOWN
    interval_length: int = 60
    rules: tuple[FreshnessRule, ...] = ()


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """When ``GET /health`` says degraded though the engine holds its pipe open (a stopped or hung engine)."""

    stalled_after: float = 10.0  # seconds the engine may take nothing from its pipe while results wait
    max_spool_age: float = 60.0  # seconds the oldest spooled result may wait


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = "info"
    target: str = "stderr"  # "stderr", "syslog" or "file"
    file: Path | None = None


@dataclass(frozen=True, slots=True)
class NscaConfig:
    """The classic NSCA 2.x listener (``[nsca]``); ``listen`` unset: none. Debian's nsca.cfg names in comments."""

    listen: str | None = None  # server_address + server_port
    password: bytes = field(default=b"", repr=False)  # password
    encryption_method: NscaMethod = NscaMethod.XOR  # decryption_method
    max_packet_age: int = 0  # max_packet_age, which nsca 2.10 never enforces: 0 = off
    user: str = ""  # the [[users]] name whose grants apply
    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None = None
    read_timeout: float = 10.0  # nsca's socket timeout: a connection silent this long is closed
    max_connections: int = 1000

    @property
    def address(self) -> tuple[str, int]:
        assert self.listen is not None
        return parse_listen(self.listen)


@dataclass(frozen=True, slots=True)
class User:
    """A login: a name with a password or password hash, or an Alignak-style token (the basic-auth user name)."""

    name: str
    password: str | None = field(default=None, repr=False)
    password_hash: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    grants: Grants = Grants()


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Failed logins within ``failure_window`` seconds before 429: ``max_failures`` for one user name from one
    client address, ``max_address_failures`` from one address whatever the names."""

    max_failures: int = 10
    failure_window: float = 60.0
    max_address_failures: int = 100
    hash_threads: int = 2  # password hashes checked at once, in threads of their own
    hash_queue: int = 64  # logins that may wait for one; more are refused with 429


def token_label(token: str) -> str:
    """How an unnamed token appears in logs and as an author: never the token itself."""
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:10]


CLUSTER_ROLES = ("edge", "sink")
_NATS_NAME = re.compile(r"[A-Za-z0-9_-]+")  # what JetStream takes in stream names and subject tokens


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """``[cluster]``: this process is an edge (publishes to JetStream) or a sink (writes one engine's pipe).
    Secrets (password, token) never appear in reprs."""

    role: str
    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    stream: str = "NAEMON_BRIDGE"
    replicas: int = 1
    engine: str | None = None  # a sink: the engine it serves
    credentials: Path | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    publish_timeout: float = 2.0  # seconds an edge waits for JetStream's ack before the spool takes the lines
    max_age: float = 7 * 86400.0  # seconds the stream keeps what no sink took (an engine down that long)
    max_bytes: int = 1024**3  # the most the stream holds; then JetStream refuses and the edge spools


@dataclass(frozen=True, slots=True)
class Config:
    source: str = "<defaults>"
    server: ServerConfig = ServerConfig()
    engine: EngineConfig = EngineConfig()
    spool: SpoolConfig = SpoolConfig()
    alignak: AlignakConfig = AlignakConfig()
    log: LogConfig = LogConfig()
    auth: AuthConfig = AuthConfig()
    freshness: FreshnessConfig = FreshnessConfig()
    health: HealthConfig = HealthConfig()
    nsca: NscaConfig = NscaConfig()
    users: tuple[User, ...] = ()
    cluster: ClusterConfig | None = None  # None: one process, edge and sink at once (today's bridge)


class LiveConfig:
    """The running config. A reload (SIGHUP) replaces ``current`` whole; a request reads it once."""

    def __init__(self, config: Config) -> None:
        self.current = config


# TOML's own names for what a key holds, with their article: errors say "must be an integer", not "a int".
_TOML_TYPES: dict[type, str] = {str: "a string", int: "an integer", float: "a float", bool: "a boolean (true or false)",
                                list: "an array", dict: "a table", datetime.datetime: "a date-time",
                                datetime.date: "a date", datetime.time: "a time"}


def _toml_type(kind: type) -> str:
    for known, name in _TOML_TYPES.items():
        if issubclass(kind, known) and not (known is int and kind is bool):
            return name
    return f"{'an' if kind.__name__[:1].lower() in 'aeiou' else 'a'} {kind.__name__}"


class _Section:
    """Reads one TOML table, so each error can name ``[section] key`` and unknown keys are refused."""

    def __init__(self, source: str, name: str, data: object, base: Path) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(source, name, "must be a table")
        self.source, self.name, self.data, self.base = source, name, data, base
        self.used: set[str] = set()

    def key(self, key: str) -> str:
        return f"{self.name}.{key}"

    def error(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.source, self.key(key), reason)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        self.used.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            expected = "a number" if set(kinds) == {int, float} else " or ".join(_toml_type(k) for k in kinds)
            raise self.error(key, f"must be {expected}, not {_toml_type(type(value))} {value!r}")
        return value

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.get(key, str, default)
        if required and not value:
            raise self.error(key, "is required")
        return value

    def path(self, key: str) -> Path | None:
        value = self.text(key)
        if value is None:
            return None
        if not value:
            raise self.error(key, "must not be empty")
        return self.base / Path(value).expanduser()

    def path_or(self, key: str, default: Path) -> Path:
        return self.path(key) or default

    def number(self, key: str, default: float, *, low: float, high: float | None = None) -> float:
        value = self.get(key, (int, float), default)
        if value < low or (high is not None and value > high):
            within = f"from {low:g} to {high:g}" if high is not None else f"at least {low}"
            raise self.error(key, f"must be a number {within}, not {value!r}")
        return float(value)

    def size(self, key: str, default: int, *, low: int) -> int:
        """Bytes: an integer, or a string with a unit ("512MiB", "2GiB", "10GB")."""
        self.used.add(key)
        value = self.data.get(key, default)
        if isinstance(value, str):
            match = _SIZE.fullmatch(value.strip())
            if not match:
                raise self.error(key, f"must be a number of bytes or a size such as \"2GiB\", not {value!r}")
            value = int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be a number of bytes or a size such as \"2GiB\", not {value!r}")
        if value < low:
            raise self.error(key, f"must be at least {low} bytes (64KiB), not {value}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.text(key, default) or default
        if value not in choices:
            raise self.error(key, f"must be one of {', '.join(repr(c) for c in choices)}, not {value!r}")
        return value

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key")


def _log(section: _Section) -> LogConfig:
    target = section.choice("target", LOG_TARGETS, "stderr")
    file = section.path("file")
    if target == "file" and file is None:
        raise section.error("file", 'is required with target = "file"')
    return LogConfig(level=section.choice("level", LOG_LEVELS, "info"), target=target, file=file)


def _freshness(section: _Section) -> FreshnessConfig:
    default = section.get("default_threshold", int)
    if default is not None and default < 1:
        raise section.error("default_threshold", f"must be a number of seconds of at least 1, not {default}")
    service_state = section.choice("stale_service_state", tuple(ServiceState.__members__), "CRITICAL")
    host_state = section.choice("stale_host_state", tuple(HostState.__members__), "DOWN")
    rules_data = section.get("rules", list, [])
    rules: list[FreshnessRule] = []
    for index, entry in enumerate(rules_data):
        rule = _Section(section.source, f"freshness.rules[{index}]", entry, section.base)
        threshold = rule.get("threshold", int)
        if threshold is None or threshold < 1:
            raise rule.error("threshold", "is required: seconds, at least 1")
        rules.append(FreshnessRule(threshold=threshold, host=rule.text("host", "*") or "*",
                                   service=rule.text("service")))
        rule.done()
    return FreshnessConfig(
        default_threshold=default, sweep_interval=section.number("sweep_interval", 1.0, low=0.05),
        submit_stale=section.get("submit_stale", bool, False), stale_service_state=ServiceState[service_state],
        stale_host_state=HostState[host_state],
        interval_length=int(section.number("interval_length", 60, low=1)), rules=tuple(rules))


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port``; port 0 takes any free port (the log says which)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"must be host:port (e.g. 127.0.0.1:8888 or [::1]:8888), not {value!r}")
    return host.removeprefix("[").removesuffix("]"), int(port_text)


def _server(section: _Section) -> ServerConfig:
    listen = section.text("listen", "127.0.0.1:8888") or ""
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise section.error("listen", str(exc)) from None
    max_body = section.get("max_body_bytes", int, DEFAULT_MAX_BODY_BYTES)
    if max_body < 1024:
        raise section.error("max_body_bytes", f"must be at least 1024, not {max_body}")
    tls = {key: section.path(key) for key in ("tls_cert", "tls_key", "tls_client_ca")}
    if bool(tls["tls_cert"]) != bool(tls["tls_key"]):
        raise section.error("tls_key" if tls["tls_cert"] else "tls_cert", "tls_cert and tls_key go together")
    if tls["tls_client_ca"] and not tls["tls_cert"]:
        raise section.error("tls_client_ca", "needs tls_cert and tls_key (client certificates need TLS)")
    for key, path in tls.items():
        if path is not None and not path.is_file():
            raise section.error(key, f"{path} is not a readable file")
    workers = section.get("workers", int, 1)
    if not 1 <= workers <= 64:
        raise section.error("workers", f"must be from 1 to 64, not {workers}")
    max_connections = section.get("max_connections", int, 1000)
    if max_connections < 1:
        raise section.error("max_connections", f"must be at least 1, not {max_connections}")
    return ServerConfig(host=host, port=port, max_body_bytes=max_body, workers=workers,
                        header_timeout=section.number("header_timeout", 10.0, low=0.1, high=3600.0),
                        body_timeout=section.number("body_timeout", 30.0, low=0.1, high=3600.0),
                        keepalive_timeout=section.number("keepalive_timeout", 75.0, low=0.1, high=86400.0),
                        max_connections=max_connections,
                        shutdown_timeout=section.number("shutdown_timeout", 10.0, low=0.0),
                        user=section.text("user"), group=section.text("group"), **tls)


def _nsca(section: _Section) -> NscaConfig:
    listen = section.text("listen")
    if listen is not None:
        try:
            parse_listen(listen)
        except ValueError as exc:
            raise section.error("listen", str(exc).replace("8888", "5667")) from None
    password = section.text("password")
    password_file = section.path("password_file")
    if password is not None and password_file is not None:
        raise section.error("password_file", "password and password_file exclude each other")
    secret = password.encode() if password is not None else b""
    if password_file is not None:
        try:
            secret = password_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise section.error("password_file", f"cannot read {password_file}: {exc.strerror or exc}") from None
    if len(secret) > 512 or b"\0" in secret:
        raise section.error("password", "must be at most 512 bytes without a NUL, as nsca reads it")
    method = section.get("encryption_method", int, int(NscaMethod.XOR))
    if method not in NscaMethod._value2member_map_:
        raise section.error("encryption_method", f"method {method} is not supported; supported: {nsca_methods()}")
    age = section.get("max_packet_age", int, 0)
    if not 0 <= age <= 86400:
        raise section.error("max_packet_age", f"must be seconds from 0 (off) to 86400, not {age}")
    user = section.text("user") or ""
    if listen is not None and not user:
        raise section.error("user", "is required with listen: the [[users]] name whose grants apply to NSCA results")
    networks = _strings(section, "allowed_networks")
    allowed = None
    if networks is not None:
        try:
            allowed = tuple(ipaddress.ip_network(text, strict=False) for text in networks)
        except ValueError as exc:
            raise section.error("allowed_networks", str(exc)) from None
    max_connections = section.get("max_connections", int, 1000)
    if max_connections < 1:
        raise section.error("max_connections", f"must be at least 1, not {max_connections}")
    return NscaConfig(listen=listen, password=secret, encryption_method=NscaMethod(method), max_packet_age=age,
                      user=user, allowed_networks=allowed, max_connections=max_connections,
                      read_timeout=section.number("read_timeout", 10.0, low=0.1, high=3600.0))


def _engine(section: _Section) -> EngineConfig:
    kind = EngineKind(section.choice("kind", tuple(k.value for k in EngineKind), EngineKind.NAEMON.value))
    query_socket = section.path("query_socket")
    if query_socket is not None and kind is not EngineKind.NAEMON:
        raise section.error("query_socket", "needs kind = \"naemon\": Nagios 4's query handler has no command "
                                            "handler, its command pipe is the only way in")
    connections = section.get("query_connections", int, 4)
    if not 1 <= connections <= 64:
        raise section.error("query_connections", f"must be from 1 to 64, not {connections}")
    return EngineConfig(
        kind=kind,
        command_file=section.path_or("command_file", DEFAULT_COMMAND_FILE),
        objects_cache=section.path("objects_cache"),
        status_file=section.path("status_file"),
        query_socket=query_socket,
        query_connections=connections,
        busy_wait=section.number("busy_wait", 1.0, low=0.0, high=60.0),
    )


def _cluster(section: _Section) -> ClusterConfig:
    role = section.choice("role", CLUSTER_ROLES, "")
    servers = _strings(section, "servers") or ("nats://127.0.0.1:4222",)
    for server in servers:
        if not re.fullmatch(r"(nats|tls)://[^/\s]+", server):
            raise section.error("servers", f"must be URLs such as \"nats://127.0.0.1:4222\", not {server!r}")
    stream = section.text("stream", "NAEMON_BRIDGE") or ""
    if not _NATS_NAME.fullmatch(stream):
        raise section.error("stream", f"must be letters, digits, _ or -, not {stream!r}")
    replicas = section.get("replicas", int, 1)
    if not 1 <= replicas <= 5:
        raise section.error("replicas", f"must be from 1 to 5 (JetStream's limit), not {replicas}")
    engine = section.text("engine")
    if engine is not None and not _NATS_NAME.fullmatch(engine):
        raise section.error("engine", f"must be letters, digits, _ or - (it is a subject token), not {engine!r}")
    if role == "sink" and engine is None:
        raise section.error("engine", "is required with role = \"sink\": the engine this sink serves")
    if role == "edge" and engine is not None:
        raise section.error("engine", "is for a sink; an edge routes by host to every engine")
    auth = [key for key in ("credentials", "user", "token") if key in section.data]
    if len(auth) > 1:
        raise section.error(auth[1], f"give one of credentials, user/password or token, not {' and '.join(auth)}")
    user, password = section.text("user"), section.text("password")
    if (user is None) != (password is None):
        raise section.error("password" if password is None else "user", "user and password go together")
    tls = {key: section.path(key) for key in ("tls_ca", "tls_cert", "tls_key")}
    if (tls["tls_cert"] is None) != (tls["tls_key"] is None):
        raise section.error("tls_cert" if tls["tls_cert"] is None else "tls_key", "tls_cert and tls_key go together")
    return ClusterConfig(
        role=role, servers=servers, stream=stream, replicas=replicas, engine=engine,
        credentials=section.path("credentials"), user=user, password=password, token=section.text("token"),
        publish_timeout=section.number("publish_timeout", 2.0, low=0.1, high=60.0),
        max_age=section.number("max_age", 7 * 86400.0, low=60.0),
        max_bytes=section.size("max_bytes", 1024**3, low=MIN_SPOOL_MAX_BYTES), **tls)


# The PHC string argon2-cffi writes and reads ("$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>", base64 without
# padding), and bcrypt's modular crypt format: 60 characters, "$2b$12$", 22 of salt (the last holds only 2 bits:
# one of ".Oeu"), 31 of hash.
_ARGON2 = re.compile(r"\$argon2(?:id|i|d)(?:\$v=(?:16|19))?\$m=(\d+),t=(\d+),p=(\d+)"
                     r"\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)")
_BCRYPT = re.compile(r"\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{21}[.Oeu][./A-Za-z0-9]{31}")
_MAKE_ONE = "make one with: naemon-bridge hash-password, and copy it whole"


def _unpadded_base64(text: str) -> bytes | None:
    """Canonical base64 without padding, as libargon2 decodes it (unused trailing bits must be zero)."""
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if base64.b64encode(data).decode().rstrip("=") == text else None


def password_hash_problem(password_hash: str) -> str | None:
    """Why the bridge could never verify a password against this hash, or None: a hash cut short or mangled
    would refuse every login with nothing logged, so it is refused where the config is read."""
    if password_hash.startswith("$argon2"):
        match = _ARGON2.fullmatch(password_hash)
        if match is None:
            return "is not a complete argon2 hash ($argon2id$v=19$m=…,t=…,p=…$salt$hash)"
        memory, time_cost, lanes = (int(match.group(i)) for i in (1, 2, 3))
        salt, digest = _unpadded_base64(match.group(4)), _unpadded_base64(match.group(5))
        if salt is None or digest is None:
            return "is not a complete argon2 hash: its salt or hash is not valid base64"
        if len(salt) < 8 or len(digest) < 4:
            return f"is not a complete argon2 hash: a {len(salt)}-byte salt and a {len(digest)}-byte hash " \
                   "(argon2 needs at least 8 and 4)"
        if not (1 <= lanes <= 0xFFFFFF and time_cost >= 1 and memory >= 8 * lanes):
            return f"is not a usable argon2 hash: m={memory}, t={time_cost}, p={lanes}"
        return None
    if password_hash.startswith(("$2a$", "$2b$", "$2y$")):
        if len(password_hash) != 60:
            return f"is not a complete bcrypt hash: 60 characters ($2b$12$ and 53 more), not {len(password_hash)}"
        if _BCRYPT.fullmatch(password_hash) is None:
            return "is not a valid bcrypt hash: a cost from 04 to 31, then 53 characters of ./A-Za-z0-9"
        return None
    return "is not an argon2 or bcrypt hash"


def _user(section: _Section, seen: set[str]) -> User:
    name = section.text("name")
    password = section.text("password")
    password_hash = section.text("password_hash")
    token = section.text("token")
    given = [k for k, v in (("password", password), ("password_hash", password_hash), ("token", token)) if v]
    if len(given) != 1:
        raise section.error("password", "each user needs exactly one of password, password_hash or token"
                            + (f" (it has {', '.join(given)})" if given else ""))
    if token is None and not name:
        raise section.error("name", "is required for a user with a password")
    problem = password_hash_problem(password_hash) if password_hash else None
    if problem is not None:
        raise section.error("password_hash", f"{problem}" + (f" (user {name!r})" if name else "")
                            + f"; {_MAKE_ONE}")
    grants = Grants(commands=_command_grants(section), hosts=_patterns(section, "hosts"),
                    services=_patterns(section, "services"))
    login = token if token else name
    if login in seen:
        raise section.error("token" if token else "name",
                            "is used twice" + ("" if token else f" ({name!r})"))
    seen.add(login or "")
    return User(name=name or token_label(token or ""), password=password, password_hash=password_hash, token=token,
                grants=grants)


def _strings(section: _Section, key: str) -> tuple[str, ...] | None:
    values = section.get(key, list)
    if values is None:
        return None
    if not all(isinstance(v, str) and v for v in values):
        raise section.error(key, "must be a list of non-empty strings")
    return tuple(values)


def _command_grants(section: _Section) -> tuple[str, ...] | None:
    names = _strings(section, "commands")
    for name in names or ():
        if not any(c in name for c in "*?[") and name not in COMMANDS:
            raise section.error("commands", f"{name!r} is not an external command (names are upper case, "
                                            "e.g. PROCESS_SERVICE_CHECK_RESULT; globs such as PROCESS_* work)")
    return names


def _patterns(section: _Section, key: str) -> tuple[NamePattern, ...] | None:
    texts = _strings(section, key)
    if texts is None:
        return None
    try:
        return tuple(NamePattern.parse(text) for text in texts)
    except re.error as exc:
        raise section.error(key, f"bad regular expression: {exc}") from None


def _properties(section: _Section, key: str) -> tuple[str, ...]:
    """feedback_host / feedback_service: a list of names, or alignak-module-ws's comma-separated string."""
    value = section.get(key, (str, list), [])
    names = value.split(",") if isinstance(value, str) else value
    if not all(isinstance(name, str) for name in names):
        raise section.error(key, "must be a list of property names (strings)")
    return tuple(name.strip() for name in names if name.strip())


def _alignak(section: _Section) -> AlignakConfig:
    give_feedback = section.get("give_feedback", int, 1)
    if give_feedback not in (0, 1, 2):
        raise section.error("give_feedback", f"must be 0 (none), 1 (the host) or 2 (the host and its services), "
                                             f"not {give_feedback}")
    return AlignakConfig(ignore_unknown_host=section.get("ignore_unknown_host", bool, False),
                         ignore_unknown_service=section.get("ignore_unknown_service", bool, True),
                         give_result=section.get("give_result", bool, False), give_feedback=give_feedback,
                         feedback_host=_properties(section, "feedback_host"),
                         feedback_service=_properties(section, "feedback_service"),
                         set_timestamp=section.get("set_timestamp", bool, True))


def parse_config(data: Mapping[str, object], source: str = "<config>", base: Path | None = None) -> Config:
    """Build a Config from parsed TOML; ``source`` names the file in errors."""
    base = base if base is not None else Path.cwd()
    sections: dict[str, Callable[[_Section], object]] = {
        "server": _server, "engine": _engine,
        "spool": lambda s: SpoolConfig(
            directory=s.path_or("directory", DEFAULT_SPOOL_DIRECTORY),
            fsync=FsyncPolicy(s.choice("fsync", tuple(p.value for p in FsyncPolicy), FsyncPolicy.ALWAYS.value)),
            fsync_interval=s.number("fsync_interval", 1.0, low=0.01),
            max_bytes=s.size("max_bytes", DEFAULT_SPOOL_MAX_BYTES, low=MIN_SPOOL_MAX_BYTES)),
        "alignak": _alignak,
        "log": _log,
        "freshness": _freshness,
        "auth": lambda s: AuthConfig(max_failures=int(s.number("max_failures", 10, low=1)),
                                     failure_window=s.number("failure_window", 60.0, low=1.0),
                                     max_address_failures=int(s.number("max_address_failures", 100, low=1)),
                                     hash_threads=int(s.number("hash_threads", 2, low=1, high=64)),
                                     hash_queue=int(s.number("hash_queue", 64, low=0))),
        "health": lambda s: HealthConfig(stalled_after=s.number("stalled_after", 10.0, low=0.1),
                                         max_spool_age=s.number("max_spool_age", 60.0, low=0.1)),
        "nsca": _nsca,
    }
    unknown = sorted(set(data) - set(sections) - {"users", "cluster"})
    if unknown:
        raise ConfigError(source, unknown[0], "unknown section")
    built: dict[str, object] = {}
    for name, build in sections.items():
        section = _Section(source, name, data.get(name, {}), base)
        built[name] = build(section)
        section.done()
    users_data = data.get("users", [])
    if not isinstance(users_data, list):
        raise ConfigError(source, "users", "must be an array of tables ([[users]])")
    users: list[User] = []
    seen: set[str] = set()
    for index, entry in enumerate(users_data):
        section = _Section(source, f"users[{index}]", entry, base)
        users.append(_user(section, seen))
        section.done()
    nsca = built["nsca"]
    assert isinstance(nsca, NscaConfig)
    if nsca.listen is not None and nsca.user not in {user.name for user in users}:
        raise ConfigError(source, "nsca.user", f"{nsca.user!r} is no [[users]] name (the user whose grants apply "
                                               "to NSCA results)")
    cluster = None
    if "cluster" in data:  # without the section: one process, as before clusters existed
        section = _Section(source, "cluster", data["cluster"], base)
        if "role" not in section.data:
            raise section.error("role", "is required: \"edge\" or \"sink\"")
        cluster = _cluster(section)
        section.done()
        server = built["server"]
        assert isinstance(server, ServerConfig)
        if server.workers > 1:
            raise ConfigError(source, "server.workers", "must be 1 with [cluster]: run more edges instead")
    return Config(source=source, users=tuple(users), cluster=cluster, **built)  # type: ignore[arg-type]


def load_config(path: Path | str) -> Config:
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(str(path), "", "no such file") from None
    except PermissionError:
        raise ConfigError(str(path), "", "permission denied") from None
    except IsADirectoryError:
        raise ConfigError(str(path), "", "is a folder, not a config file (e.g. naemon-bridge.toml in it)") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}") from None
    return parse_config(data, str(path), path.resolve().parent)
