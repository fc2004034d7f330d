"""Who is calling: HTTP basic auth against the configured users and Alignak-style tokens."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import argon2
import bcrypt
from aiohttp import BasicAuth

from bridge.config import User
from bridge.errors import NotAuthenticated

log = logging.getLogger("naemon_bridge.auth")

_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``name`` is safe to log and to use as a command's author (never a token)."""

    name: str
    is_token: bool = False


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


class Authenticator:
    def __init__(self, users: Sequence[User]) -> None:
        self._by_name = {u.name: u for u in users if u.token is None}
        self._tokens = [u for u in users if u.token is not None]
        # Verified (login, password) digests: a slow hash is computed once per credential, not per request.
        self._verified: dict[bytes, Principal] = {}

    async def authenticate(self, header: str | None) -> Principal:
        if not header:
            raise NotAuthenticated("authentication required (HTTP basic auth)")
        try:
            credentials = BasicAuth.decode(header, encoding="utf-8")
        except ValueError:
            raise NotAuthenticated("malformed Authorization header (HTTP basic auth expected)") from None
        login, password = credentials.login, credentials.password
        if not password:
            for token_user in self._tokens:
                if hmac.compare_digest(login.encode(), (token_user.token or "").encode()):
                    return Principal(token_user.name, is_token=True)
        # op5 logins may carry an auth-module suffix, "user$LDAP": the user name is the part before "$".
        user = self._by_name.get(login) or self._by_name.get(login.partition("$")[0])
        if user is not None and await self._password_matches(user, password):
            return Principal(user.name)
        raise NotAuthenticated("wrong user name, password or token")

    async def _password_matches(self, user: User, password: str) -> bool:
        if user.password is not None:
            return hmac.compare_digest(password.encode(), user.password.encode())
        digest = hashlib.sha256(f"{user.name}\0{password}".encode()).digest()
        if digest in self._verified:
            return True
        if not await asyncio.to_thread(_verify_hash, user.password_hash or "", password):
            return False
        if len(self._verified) >= _CACHE_LIMIT:
            self._verified.clear()
        self._verified[digest] = Principal(user.name)
        return True
