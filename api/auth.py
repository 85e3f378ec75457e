"""Accounts, passwords and bearer tokens; one :class:`Authenticator` seam for an OIDC provider.

**Passwords** are hashed with argon2id (argon2-cffi's defaults, RFC 9106's low-memory
profile) in worker threads (:class:`api.passwords.HashPool`); the store keeps the hash only.
A login for an unknown user still spends one hash verification, so response time does not
tell which usernames exist.

**Tokens** are signed and name a session: ``v2.<payload>.<signature>``, the payload base64url
JSON ``{"sub": username, "role": ..., "mid": member id or null, "sid": session id, "cv":
credentials version, "knd": "api" or "page", "iat": s, "exp": s}``, the signature HMAC-SHA256
under a key derived from ``WALDSTADT_SECRET_KEY``. Each request checks the signature and the
expiry, then reads the session and its account in one query: a revoked session (logout), a
credentials version that moved on (password change, disable), a session that is gone (the
account was deleted; a re-created account of the same name starts without sessions), a
disabled account, or a role or member changed since the token was issued are refused at
once. An API token (``api``) is not a page session (``page``) and the other way round: the
session cookie is never accepted as a bearer token, with or without CSRF.

**Logins** are refused while the account is locked (:class:`LoginThrottled`, with the
seconds to wait): :class:`Lockout` says how long a lock lasts after how many failures.

**The seam:** routes depend on :class:`Authenticator` only (``authenticate(token) →
Principal``; ``login(username, password) → IssuedToken``; ``logout(principal)``). An OIDC
provider replaces :class:`LocalAuthenticator` with one that validates the provider's
ID/access token and maps a claim onto the four roles; its ``login`` raises
:class:`AuthError` (logins happen at the provider).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from argon2 import PasswordHasher

from api.passwords import MAX_PASSWORD_LENGTH, HashPool
from kernel.clock import Clock
from kernel.errors import AuthError
from store import Store
from store.users import LoginLock

#: How long a token is valid.
TOKEN_TTL = timedelta(hours=8)
_VERSION = "v2"
_WRONG = "wrong username or password"


class Role(StrEnum):
    OPERATOR = "operator"
    MEMBER = "member"
    LIGHTING_ENGINEER = "lighting_engineer"
    AUDITOR = "auditor"


ROLES: tuple[Role, ...] = tuple(Role)


class TokenKind(StrEnum):
    """What a token is for: the API's bearer token or the pages' session cookie."""

    API = "api"
    PAGE = "page"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the account, its role and (for a member) the one member it may see.
    ``session_id``: the session the call came with (what a logout revokes)."""

    username: str
    role: Role
    member_id: str | None = None
    session_id: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says (before the store was asked whether it still holds)."""

    principal: Principal
    session_id: str
    credentials_version: int
    kind: TokenKind
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_at: datetime
    principal: Principal


class LoginThrottled(AuthError):
    """A login refused before the password was looked at: the account is locked, or too many
    attempts came from the client or overall. ``retry_after_s``: when to try again."""

    def __init__(self, reason: str, retry_after_s: float) -> None:
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class Lockout:
    """Exponential lockout: ``free_failures`` wrong passwords in a row cost nothing, each
    further one locks the account for ``first_lock`` doubled per failure, at most
    ``max_lock``; failures older than ``forget_after`` are forgotten. The cap bounds what an
    attacker can do to a victim's account by failing on purpose (an hour at most)."""

    free_failures: int = 5
    first_lock: timedelta = timedelta(seconds=30)
    max_lock: timedelta = timedelta(hours=1)
    forget_after: timedelta = timedelta(hours=24)

    def lock_for(self, failures: int) -> timedelta:
        """How long ``failures`` failures in a row lock the account (zero: not at all)."""
        beyond = failures - self.free_failures
        if beyond <= 0:
            return timedelta(0)
        lock: timedelta = min(self.max_lock, self.first_lock * 2 ** min(beyond - 1, 32))
        return lock


class Authenticator(Protocol):
    async def login(
        self, username: str, password: str, kind: TokenKind = TokenKind.API
    ) -> IssuedToken:
        """Check the credentials and issue a token of ``kind``; :class:`AuthError` if
        refused (:class:`LoginThrottled` when it was not even checked)."""
        ...

    async def authenticate(self, token: str, kind: TokenKind = TokenKind.API) -> Principal:
        """The caller behind a token of ``kind``; :class:`AuthError` (with the reason) if
        invalid."""
        ...

    async def logout(self, principal: Principal) -> None:
        """End the session the principal came with."""
        ...


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Signs and checks ``v2.<payload>.<sig>`` tokens (HMAC-SHA256); pure apart from ``now``."""

    def __init__(self, secret_key: str, ttl: timedelta = TOKEN_TTL) -> None:
        if not secret_key:
            raise ValueError("secret_key: must not be empty")
        self._key = hashlib.sha256(b"waldstadt api token v2\0" + secret_key.encode()).digest()
        self.ttl = ttl

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, f"{_VERSION}.{payload}".encode(), "sha256").digest())

    def issue(
        self,
        principal: Principal,
        *,
        session_id: str,
        now: datetime,
        credentials_version: int = 0,
        kind: TokenKind = TokenKind.API,
    ) -> IssuedToken:
        expires = now + self.ttl
        doc = {
            "sub": principal.username,
            "role": principal.role.value,
            "mid": principal.member_id,
            "sid": session_id,
            "cv": credentials_version,
            "knd": kind.value,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
        }
        payload = _b64(json.dumps(doc, separators=(",", ":"), sort_keys=True).encode())
        with_session = Principal(
            principal.username, principal.role, principal.member_id, session_id
        )
        return IssuedToken(f"{_VERSION}.{payload}.{self._sign(payload)}", expires, with_session)

    def verify(self, token: str, *, now: datetime) -> TokenClaims:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _VERSION:
            raise AuthError("malformed token")
        _, payload, signature = parts
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise AuthError("bad token signature")
        try:
            doc = json.loads(_unb64(payload))
            role, kind, exp = Role(doc["role"]), TokenKind(doc["knd"]), doc["exp"]
            sid, cv, member_id = str(doc["sid"]), int(doc["cv"]), doc["mid"]
            username = str(doc["sub"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthError("malformed token payload") from exc
        if not isinstance(exp, int) or now.timestamp() >= exp:
            raise AuthError("token expired")
        mid = None if member_id is None else str(member_id)
        principal = Principal(username, role, mid, sid)
        return TokenClaims(principal, sid, cv, kind, datetime.fromtimestamp(exp, now.tzinfo))


def default_hasher() -> PasswordHasher:
    """argon2id with argon2-cffi's defaults (time 3, 64 MiB, 4 lanes)."""
    return PasswordHasher()


class LocalAuthenticator:
    """Accounts in the store, argon2 hashes in a :class:`HashPool`, tokens naming sessions."""

    def __init__(
        self,
        store: Store,
        signer: TokenSigner,
        clock: Clock,
        pool: HashPool,
        lockout: Lockout | None = None,
    ) -> None:
        self._store = store
        self._signer = signer
        self._clock = clock
        self._pool = pool
        self._lockout = lockout or Lockout()
        self._dummy_hash: str | None = None

    async def login(
        self, username: str, password: str, kind: TokenKind = TokenKind.API
    ) -> IssuedToken:
        now = self._clock.now()
        lock = await self._store.users.login_lock(username)
        await self._refuse_if_locked(lock, now)
        user = await self._store.users.get(username)
        if len(password) > MAX_PASSWORD_LENGTH:
            matches = False  # not worth hashing a megabyte for
        elif user is None:
            await self._pool.verify(await self._dummy(), password)
            matches = False
        else:
            matches = await self._pool.verify(user.password_hash, password)
        if user is None or not matches:
            await self._store.users.note_login_failure(
                username,
                now=now,
                forget_after=self._lockout.forget_after,
                lock_for=self._lockout.lock_for,
            )
            raise AuthError(_WRONG)
        if user.disabled:
            raise AuthError("account disabled")
        if user.role not in Role.__members__.values():
            raise AuthError(f"role {user.role!r} cannot use the web API")
        if lock is not None:
            await self._store.users.clear_login_failures(username)
        if self._pool.needs_rehash(user.password_hash):
            await self._store.users.rehash_password(username, await self._pool.hash(password))
        session = await self._store.users.open_session(
            username, kind.value, now=now, expires_at=now + self._signer.ttl
        )
        principal = Principal(user.username, Role(user.role), user.member_id)
        return self._signer.issue(
            principal,
            session_id=session.session_id,
            credentials_version=user.credentials_version,
            kind=kind,
            now=now,
        )

    async def _refuse_if_locked(self, lock: LoginLock | None, now: datetime) -> None:
        if lock is not None and lock.locked_until is not None and lock.locked_until > now:
            wait_s = (lock.locked_until - now).total_seconds()
            raise LoginThrottled(
                f"account locked after {lock.failures} failed logins; try again later", wait_s
            )

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._pool.hash("not a password of anyone")
        return self._dummy_hash

    async def authenticate(self, token: str, kind: TokenKind = TokenKind.API) -> Principal:
        now = self._clock.now()
        claims = self._signer.verify(token, now=now)
        if claims.kind is not kind:
            raise AuthError(f"a {claims.kind.value} session token is not valid here")
        found = await self._store.users.session_user(claims.session_id)
        if found is None:
            raise AuthError("session ended (the account was removed); log in again")
        session, user = found
        if session.revoked_at is not None or session.expires_at <= now:
            raise AuthError("session ended (logged out or credentials changed); log in again")
        if session.username != claims.principal.username or session.kind != kind.value:
            raise AuthError("session does not belong to this token")
        if user.disabled:
            raise AuthError("account disabled or removed")
        if user.credentials_version != claims.credentials_version:
            raise AuthError("credentials changed since the token was issued; log in again")
        claimed = claims.principal
        if user.role != claimed.role.value or user.member_id != claimed.member_id:
            raise AuthError("account changed since the token was issued; log in again")
        return claimed

    async def logout(self, principal: Principal) -> None:
        if principal.session_id is not None:
            await self._store.users.revoke_session(principal.session_id, now=self._clock.now())


__all__ = [
    "ROLES",
    "TOKEN_TTL",
    "AuthError",
    "Authenticator",
    "IssuedToken",
    "LocalAuthenticator",
    "Lockout",
    "LoginThrottled",
    "Principal",
    "Role",
    "TokenClaims",
    "TokenKind",
    "TokenSigner",
    "default_hasher",
]
