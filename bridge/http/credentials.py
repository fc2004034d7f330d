"""Who is calling: HTTP basic auth against the configured users and Alignak-style tokens."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import argon2
import bcrypt
from aiohttp import BasicAuth

from bridge.config.model import AuthConfig, User
from bridge.core.errors import NotAuthenticated, Throttled
from bridge.core.permissions import Grants

log = logging.getLogger("naemon_bridge.auth")

_CACHE_LIMIT = 4096
# Throttle buckets kept before expired ones are swept (then again each time the table doubles).
_TRACKED_MIN = 10_000


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


def hash_like(template: str, password: str) -> str:
    """A hash of ``password`` of the same kind and cost as ``template`` (argon2 parameters, bcrypt rounds)."""
    if template.startswith("$argon2"):
        return argon2.PasswordHasher.from_parameters(argon2.extract_parameters(template)).hash(password)
    rounds = int(template.split("$")[2])
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def dummy_template(users: Sequence[User]) -> str | None:
    """The configured hash an unknown user name is checked like: one of the most common kind (argon2 or bcrypt),
    so a name that does not exist costs what one that exists does. None when no user has a hash."""
    hashes = [u.password_hash for u in users if u.password_hash]
    if not hashes:
        return None
    kind, _ = Counter(h.startswith("$argon2") for h in hashes).most_common(1)[0]
    return next(h for h in hashes if h.startswith("$argon2") == kind)


class HashVerifier:
    """Checks password hashes in ``threads`` threads of its own, with at most ``queue`` more checks waiting;
    beyond that a login is refused with 429 at once.

    Never in the default thread pool, which the spool's writes use: argon2 is built to burn CPU, and anyone who
    can reach the port can make the bridge compute one (a burst of wrong passwords once held a result 5.1 s)."""

    def __init__(self, threads: int, queue: int) -> None:
        self.busy = 0  # checks running or waiting
        self.template: str | None = None
        self._dummy: tuple[str, str] | None = None  # (template, a hash made like it)
        self._threads = 0
        self._pool: ThreadPoolExecutor | None = None
        self._limit = 0
        self.configure(threads, queue)

    def configure(self, threads: int, queue: int) -> None:
        """Other limits (a reload): checks under way finish in the old threads."""
        if threads != self._threads:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="naemon-bridge-hash")
            self._threads = threads
        self._limit = threads + queue

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self._run(_verify_hash, password_hash, password)

    async def verify_unknown(self, password: str) -> None:
        """As long as checking ``password`` against a configured hash takes; the answer is always no."""
        if self.template is not None:
            await self._run(self._against_dummy, self.template, password)

    def _against_dummy(self, template: str, password: str) -> bool:
        dummy = self._dummy
        if dummy is None or dummy[0] != template:  # made once per template, in the pool like any check
            dummy = self._dummy = (template, hash_like(template, secrets.token_urlsafe(24)))
        return _verify_hash(dummy[1], password)

    async def _run(self, check: Callable[[str, str], bool], first: str, password: str) -> bool:
        if self.busy >= self._limit:
            raise Throttled(f"{self.busy} logins are waiting for their password check: try again in 1 s", 1)
        self.busy += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, check, first, password)
        finally:
            self.busy -= 1


class LoginThrottle:
    """Counts logins that failed or are still being checked, per client address and per (address, user name).
    An attempt counts from the moment it starts and is taken back only when it succeeds, so a burst of
    concurrent guesses cannot all slip in before the first one is answered. Past ``max_failures`` for one user
    name from one address, or ``max_address_failures`` from one address, within ``window`` s: 429."""

    def __init__(self, max_failures: int, window: float, max_address_failures: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.max_address_failures = max_address_failures if max_address_failures is not None else max_failures
        self.window = window
        self._clock = clock
        self._attempts: dict[tuple[str, ...], deque[float]] = {}
        self._sweep_at = _TRACKED_MIN

    def _buckets(self, client: str, user: str) -> list[tuple[tuple[str, ...], int]]:
        # op5's "user$LDAP" names the same user as "user": one bucket, whatever suffix a guesser adds. A token is
        # its own user name: only its digest is kept.
        name = hashlib.sha256(user.partition("$")[0].encode("utf-8", "surrogateescape")).hexdigest()
        return [(("address", client), self.max_address_failures), (("user", client, name), self.max_failures)]

    def _recent(self, key: tuple[str, ...]) -> deque[float]:
        attempts = self._attempts.get(key, deque())
        cutoff = self._clock() - self.window
        while attempts and attempts[0] <= cutoff:
            attempts.popleft()
        if not attempts:
            self._attempts.pop(key, None)
        return attempts

    def check(self, client: str, user: str) -> None:
        """Raise Throttled if ``client`` (for ``user``) is over a limit."""
        for key, limit in self._buckets(client, user):
            if key not in self._attempts:
                continue
            attempts = self._recent(key)
            if len(attempts) >= limit:
                retry_after = max(1, math.ceil(attempts[0] + self.window - self._clock()))
                whom = f"from {client}" if key[0] == "address" else f"for this user name from {client}"
                raise Throttled(f"too many failed logins {whom}: try again in {retry_after} s", retry_after)

    def begin(self, client: str, user: str) -> float:
        """Check, then count an attempt now; ``succeeded`` with the returned stamp takes it back."""
        self.check(client, user)
        stamp = self._clock()
        for key, limit in self._buckets(client, user):
            attempts = self._recent(key)
            attempts.append(stamp)
            self._attempts[key] = attempts
            if len(attempts) == limit:
                whom = "" if key[0] == "address" else " for one user name"
                log.warning("%d failed or unfinished logins%s from %s within %.0f s: refusing them for a while",
                            limit, whom, client, self.window)
        if len(self._attempts) > self._sweep_at:
            for key in list(self._attempts):
                self._recent(key)
            self._sweep_at = max(_TRACKED_MIN, 2 * len(self._attempts))
        return stamp

    def succeeded(self, client: str, user: str, stamp: float) -> None:
        for key, _ in self._buckets(client, user):
            attempts = self._attempts.get(key)
            if attempts is not None and stamp in attempts:
                attempts.remove(stamp)
                if not attempts:
                    del self._attempts[key]


class Authenticator:
    def __init__(self, users: Sequence[User], limits: AuthConfig | None = None) -> None:
        limits = limits or AuthConfig()
        self.throttle = LoginThrottle(limits.max_failures, limits.failure_window, limits.max_address_failures)
        self.verifier = HashVerifier(limits.hash_threads, limits.hash_queue)
        self._generation = 0
        self.update(users, limits)

    def update(self, users: Sequence[User], limits: AuthConfig) -> None:
        """New users and limits (a reload); failed-login counts carry over, verified credentials do not."""
        self._by_name = {u.name: u for u in users if u.token is None}
        self._tokens = [u for u in users if u.token is not None]
        # Tokens sent as a request parameter (NRDP's token=): only their digests are kept here.
        self._token_digests = [(hashlib.sha256(u.token.encode()).digest(), Principal(u.name, grants=u.grants))
                               for u in self._tokens if u.token is not None]
        self.throttle.max_failures, self.throttle.window = limits.max_failures, limits.failure_window
        self.throttle.max_address_failures = limits.max_address_failures
        self.verifier.configure(limits.hash_threads, limits.hash_queue)
        self.verifier.template = dummy_template(users)
        # Digests of Authorization headers already verified, whom they name and the user name they gave: a slow
        # hash is computed once per credential, and a known caller costs one digest and one lookup (the raw
        # header is never kept). Checks under way, by the same digest: a burst of the same credentials waits
        # for one check instead of starting one each.
        self._verified: dict[bytes, tuple[Principal, str]] = {}
        self._checking: dict[bytes, asyncio.Task[Principal | None]] = {}
        self._generation += 1

    def configured_login(self, header: str | None) -> str | None:
        """The user name a basic-auth header gives, when a user of that name (with a password) is configured:
        safe to show, unlike what else a failed login may carry (a token, a password typed as the name)."""
        try:
            login = BasicAuth.decode(header or "", encoding="utf-8").login
        except ValueError:
            return None
        user = self._by_name.get(login) or self._by_name.get(login.partition("$")[0])
        return user.name if user is not None else None

    async def authenticate(self, header: str | None, client: str = "") -> Principal:
        """The caller, from an ``Authorization`` header. Only wrong credentials count as failed logins."""
        if not header:
            raise NotAuthenticated("authentication required (HTTP basic auth)")
        key = hashlib.sha256(header.encode("utf-8", "surrogateescape")).digest()
        known = self._verified.get(key)
        if known is not None:
            self.throttle.check(client, known[1])
            return known[0]
        try:
            credentials = BasicAuth.decode(header, encoding="utf-8")
        except ValueError:
            self.throttle.begin(client, "")  # a failed attempt, never taken back
            raise NotAuthenticated("malformed Authorization header (HTTP basic auth expected)") from None
        login = credentials.login
        checking = self._checking.get(key)
        if checking is None:
            stamp = self.throttle.begin(client, login)
            checking = asyncio.ensure_future(self._principal(login, credentials.password))
            self._checking[key] = checking
            checking.add_done_callback(partial(self._checked, key=key, client=client, login=login, stamp=stamp,
                                               generation=self._generation))
        else:  # the same credentials, already being checked: not another guess, so it shares that answer
            self.throttle.check(client, login)
            principal = await asyncio.shield(checking)
            if principal is None:
                self.throttle.begin(client, login)  # a failed attempt too: 429 once over the limit
                raise NotAuthenticated("wrong user name, password or token")
            return principal
        principal = await asyncio.shield(checking)
        if principal is None:
            raise NotAuthenticated("wrong user name, password or token")
        return principal

    def authenticate_token(self, token: str, client: str = "") -> Principal:
        """The caller, from a token sent as a request parameter (NRDP's ``token=``): the ``[[users]] token``
        entries. Every configured token's digest is compared in constant time, so the answer's timing says
        nothing about which one (or how much of one) matched; a wrong token counts as a failed login."""
        if not token:
            raise NotAuthenticated("no token given")
        self.throttle.check(client, token)
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        found: Principal | None = None
        for known, principal in self._token_digests:
            if hmac.compare_digest(known, digest):
                found = principal
        if found is None:
            self.throttle.begin(client, token)  # a failed attempt, never taken back
            raise NotAuthenticated("wrong token")
        return found

    def _checked(self, task: asyncio.Task[Principal | None], *, key: bytes, client: str, login: str,
                 stamp: float, generation: int) -> None:
        """A check finished (even if the request that started it is gone): cache a success, and take its attempt
        back unless the credentials were wrong."""
        if self._checking.get(key) is task:
            del self._checking[key]
        if task.cancelled():
            return
        principal = None if task.exception() is not None else task.result()
        if task.exception() is not None or principal is not None:
            self.throttle.succeeded(client, login, stamp)  # a busy verifier is no wrong guess either
        if principal is not None and generation == self._generation:
            if len(self._verified) >= _CACHE_LIMIT:
                self._verified.clear()
            self._verified[key] = (principal, login)

    async def _principal(self, login: str, password: str) -> Principal | None:
        if not password:
            for token_user in self._tokens:
                if hmac.compare_digest(login.encode(), (token_user.token or "").encode()):
                    return Principal(token_user.name, grants=token_user.grants)
        # op5 logins may carry an auth-module suffix, "user$LDAP": the user name is the part before "$".
        user = self._by_name.get(login) or self._by_name.get(login.partition("$")[0])
        if user is None:
            await self.verifier.verify_unknown(password)  # as long as a known name takes: names stay secret
            return None
        if await self._password_matches(user, password):
            return Principal(user.name, grants=user.grants)
        return None

    async def _password_matches(self, user: User, password: str) -> bool:
        if user.password is not None:
            return hmac.compare_digest(password.encode(), user.password.encode())
        return await self.verifier.verify(user.password_hash or "", password)
