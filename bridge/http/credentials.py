"""Who is calling: HTTP basic auth against the configured users and Alignak-style tokens."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import argon2
import bcrypt
from aiohttp import BasicAuth

from bridge.config.model import AuthConfig, User
from bridge.core.errors import NotAuthenticated, Throttled
from bridge.core.permissions import Grants

log = logging.getLogger("naemon_bridge.auth")

_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``name`` is safe to log and to use as a command's author (never a token)."""

    name: str
    grants: Grants = field(default=Grants(), compare=False)


def _verify_hash(password_hash: str, password: str) -> bool:
    try:
        if password_hash.startswith("$argon2"):
            return argon2.PasswordHasher().verify(password_hash, password)
        return bcrypt.checkpw(password.encode(), password_hash.encode())
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError, ValueError):
        return False


def hash_password(password: str) -> str:
    """A password hash for the config's ``password_hash`` (argon2id, the library's current defaults)."""
    return argon2.PasswordHasher().hash(password)


class LoginThrottle:
    """Counts failed logins per client address; past ``max_failures`` within ``window`` s, logins wait (429)."""

    def __init__(self, max_failures: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.get(client, deque())
        cutoff = self._clock() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            self._failures.pop(client, None)
        return failures

    def check(self, client: str) -> None:
        if client not in self._failures:
            return
        failures = self._recent(client)
        if len(failures) >= self.max_failures:
            retry_after = max(1, math.ceil(failures[0] + self.window - self._clock()))
            raise Throttled(f"too many failed logins from {client}: try again in {retry_after} s", retry_after)

    def fail(self, client: str) -> None:
        failures = self._recent(client)
        failures.append(self._clock())
        self._failures[client] = failures
        if len(failures) == self.max_failures:
            log.warning("%d failed logins from %s within %.0f s: refusing its logins for a while",
                        len(failures), client, self.window)


class Authenticator:
    def __init__(self, users: Sequence[User], limits: AuthConfig | None = None) -> None:
        limits = limits or AuthConfig()
        self.throttle = LoginThrottle(limits.max_failures, limits.failure_window)
        self.update(users, limits)

    def update(self, users: Sequence[User], limits: AuthConfig) -> None:
        """New users and limits (a reload); failed-login counts carry over, verified credentials do not."""
        self._by_name = {u.name: u for u in users if u.token is None}
        self._tokens = [u for u in users if u.token is not None]
        self.throttle.max_failures, self.throttle.window = limits.max_failures, limits.failure_window
        # Digests of Authorization headers already verified, and whom they name: a slow hash is computed once per
        # credential, and a known caller costs one digest and one lookup (the raw header is never kept).
        self._verified: dict[bytes, Principal] = {}

    async def authenticate(self, header: str | None, client: str = "") -> Principal:
        """The caller, from an ``Authorization`` header. Only wrong credentials count as failed logins."""
        if not header:
            raise NotAuthenticated("authentication required (HTTP basic auth)")
        self.throttle.check(client)
        key = hashlib.sha256(header.encode("utf-8", "surrogateescape")).digest()
        known = self._verified.get(key)
        if known is not None:
            return known
        try:
            credentials = BasicAuth.decode(header, encoding="utf-8")
        except ValueError:
            self.throttle.fail(client)
            raise NotAuthenticated("malformed Authorization header (HTTP basic auth expected)") from None
        principal = await self._principal(credentials.login, credentials.password)
        if principal is None:
            self.throttle.fail(client)
            raise NotAuthenticated("wrong user name, password or token")
        if len(self._verified) >= _CACHE_LIMIT:
            self._verified.clear()
        self._verified[key] = principal
        return principal

    async def _principal(self, login: str, password: str) -> Principal | None:
        if not password:
            for token_user in self._tokens:
                if hmac.compare_digest(login.encode(), (token_user.token or "").encode()):
                    return Principal(token_user.name, grants=token_user.grants)
        # op5 logins may carry an auth-module suffix, "user$LDAP": the user name is the part before "$".
        user = self._by_name.get(login) or self._by_name.get(login.partition("$")[0])
        if user is not None and await self._password_matches(user, password):
            return Principal(user.name, grants=user.grants)
        return None

    async def _password_matches(self, user: User, password: str) -> bool:
        if user.password is not None:
            return hmac.compare_digest(password.encode(), user.password.encode())
        return await asyncio.to_thread(_verify_hash, user.password_hash or "", password)
