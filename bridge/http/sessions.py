"""Login sessions: an unguessable token that stands for a user name until it expires or is revoked, and the
cookie that carries it. Dialect-neutral: a dialect's login endpoint (Alignak's ``/ws/login``, a status page's
form) checks the credentials itself, then creates a session here and sets the cookie.

The store keeps only a digest of each token, never the token: a token cannot be read back out of memory, and a
lookup is a dict access on the digest, so how long it takes says nothing about how near a guess came. A session
ends after ``idle`` seconds without use or ``lifetime`` seconds after its creation, whichever comes first. It
holds the user's *name*, not their rights: whoever resolves the name reads the current configuration, so a
reload that removes a user or changes their grants applies to their open sessions at once.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import hdrs, web

DEFAULT_IDLE = 1800.0  # seconds without use before a session ends
DEFAULT_LIFETIME = 86400.0  # seconds after creation before a session ends, however busy
DEFAULT_LIMIT = 10_000  # sessions kept at most; the least recently used ends first
_TOKEN_BYTES = 32  # 256 bits from the OS's CSPRNG


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


@dataclass(frozen=True, slots=True)
class Session:
    """One open session, as a lookup gives it. ``token`` is only set on the value ``create`` returns."""

    user: str
    created: float
    last_used: float
    token: str = ""


class SessionStore:
    """Sessions in memory, by token digest. ``clock`` is monotonic seconds (tests pass their own)."""

    def __init__(self, *, idle: float = DEFAULT_IDLE, lifetime: float = DEFAULT_LIFETIME,
                 limit: int = DEFAULT_LIMIT, clock: Callable[[], float] = time.monotonic) -> None:
        if idle <= 0 or lifetime <= 0 or limit < 1:
            raise ValueError("idle and lifetime must be positive and limit at least 1")
        self.idle, self.lifetime, self.limit = idle, lifetime, limit
        self._clock = clock
        # Insertion order is use order: a lookup moves its session to the end, so the first one is the oldest.
        self._sessions: dict[bytes, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, user: str) -> Session:
        """A new session for ``user``; its ``token`` goes to the client and is never stored."""
        now = self._clock()
        self._sweep(now)
        while len(self._sessions) >= self.limit:
            del self._sessions[next(iter(self._sessions))]
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        session = Session(user, now, now)
        self._sessions[_digest(token)] = session
        return Session(user, now, now, token)

    def lookup(self, token: str | None) -> Session | None:
        """The open session ``token`` names (and it counts as used now), or None: unknown, expired, revoked."""
        if not token:
            return None
        key = _digest(token)
        session = self._sessions.pop(key, None)
        if session is None:
            return None
        now = self._clock()
        if self._expired(session, now):
            return None
        session = Session(session.user, session.created, now)
        self._sessions[key] = session
        return session

    def revoke(self, token: str | None) -> bool:
        """End the session ``token`` names; whether there was one."""
        return bool(token) and self._sessions.pop(_digest(token or ""), None) is not None

    def revoke_user(self, user: str) -> int:
        """End every session of ``user`` (a password change, a removed user); how many there were."""
        keys = [key for key, session in self._sessions.items() if session.user == user]
        for key in keys:
            del self._sessions[key]
        return len(keys)

    def retain_users(self, users: set[str]) -> int:
        """End every session whose user is not in ``users`` (after a reload); how many ended."""
        keys = [key for key, session in self._sessions.items() if session.user not in users]
        for key in keys:
            del self._sessions[key]
        return len(keys)

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_used >= self.idle or now - session.created >= self.lifetime

    def _sweep(self, now: float) -> None:
        """Drop expired sessions from the oldest used on, stopping at the first live one that is not too old."""
        for key, session in list(self._sessions.items()):
            if self._expired(session, now):
                del self._sessions[key]
            elif now - session.last_used < self.idle:
                break  # every later one was used more recently; absolute expiry is checked on lookup


# -- cookies -------------------------------------------------------------------------------------------------------

def is_secure(request: web.Request) -> bool:
    """Whether the client reached the bridge over TLS: then the cookie is ``Secure``. On the hub's Unix socket
    (``[server] workers``, which nobody but its workers can reach) the scheme the worker forwarded."""
    if request.secure:
        return True
    return not request.remote and request.headers.get(hdrs.X_FORWARDED_PROTO) == "https"


def set_session_cookie(response: web.StreamResponse, request: web.Request, name: str, token: str, *,
                       path: str = "/", max_age: float | None = None) -> None:
    """Set the session cookie: ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page
    sends it), ``Secure`` under TLS. Without ``max_age`` it is a browser-session cookie: the server decides
    expiry."""
    response.set_cookie(name, token, path=path, httponly=True, samesite="Strict", secure=is_secure(request),
                        max_age=None if max_age is None else int(max_age))


def clear_session_cookie(response: web.StreamResponse, request: web.Request, name: str, *, path: str = "/") -> None:
    """Tell the client to forget the session cookie (same attributes, so browsers match it)."""
    response.set_cookie(name, "", path=path, httponly=True, samesite="Strict", secure=is_secure(request),
                        max_age=0, expires="Thu, 01 Jan 1970 00:00:00 GMT")


def session_token(request: web.Request, name: str) -> str | None:
    """The session token the request's cookie ``name`` carries, if any."""
    return request.cookies.get(name) or None
