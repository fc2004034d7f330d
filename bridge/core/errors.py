"""The few ways a request can fail. Each API adapter renders them in its own dialect; the CLI maps them to exits."""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every failure the bridge reports to a client instead of crashing."""


class InvalidInput(BridgeError):
    """The request is malformed or a value is wrong; ``field`` names the parameter at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class MissingParameter(InvalidInput):
    """A parameter the command requires is absent (a dialect may add what the client sent instead)."""


class UnknownObject(InvalidInput):
    """The engine has no such host, service or group (known from its objects cache)."""


class UnknownCommand(BridgeError):
    """No such external command, or not one the configured engine has."""


class NotAuthenticated(BridgeError):
    """Missing or wrong credentials."""


class NotPermitted(BridgeError):
    """Authenticated, but this user may not run this command on this object."""


class EngineUnavailable(BridgeError):
    """Neither the engine's command pipe nor the spool could take the lines; nothing was acknowledged."""


class BadRequestBody(BridgeError):
    """The body cannot be read at all (malformed JSON, wrong content type): an HTTP-level ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SpoolFull(EngineUnavailable):
    """The engine is not reading and the spool reached spool.max_bytes: the request is refused whole."""


class Throttled(BridgeError):
    """Too many failed logins from this client address: try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class EngineRefused(BridgeError):
    """Naemon's query handler refused lines at parse time (``400: <reason>``): those were not applied."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons
