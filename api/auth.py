"""Accounts, passwords and bearer tokens; one :class:`Authenticator` seam for an OIDC provider.

**Passwords** are hashed with argon2id (argon2-cffi's defaults, RFC 9106's low-memory
profile); the store keeps the hash only. A login for an unknown user still spends one hash
verification, so response time does not tell which usernames exist.

**Tokens** are stateless and signed: ``v1.<payload>.<signature>``, the payload base64url JSON
``{"sub": username, "role": ..., "mid": member id or null, "iat": s, "exp": s}``, the signature
HMAC-SHA256 under a key derived from ``WALDSTADT_SECRET_KEY``. Changing the secret key signs
everyone out. Each request checks the signature and the expiry, then reads the account:
a disabled account, or one whose role or member changed since the token was issued, is
refused at once (no revocation list needed for those cases).

**The seam:** routes depend on :class:`Authenticator` only (``authenticate(token) →
Principal``; ``login(username, password) → IssuedToken``). An OIDC provider replaces
:class:`LocalAuthenticator` with one that validates the provider's ID/access token and maps a
claim onto the four roles; its ``login`` raises :class:`AuthError` (logins happen at the
provider).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from kernel.clock import Clock
from kernel.errors import AuthError
from store import Store

#: How long a token is valid.
TOKEN_TTL = timedelta(hours=8)
_VERSION = "v1"


class Role(StrEnum):
    OPERATOR = "operator"
    MEMBER = "member"
    LIGHTING_ENGINEER = "lighting_engineer"
    AUDITOR = "auditor"


ROLES: tuple[Role, ...] = tuple(Role)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the account, its role and (for a member) the one member it may see."""

    username: str
    role: Role
    member_id: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_at: datetime
    principal: Principal


class Authenticator(Protocol):
    async def login(self, username: str, password: str) -> IssuedToken:
        """Check the credentials and issue a token; :class:`AuthError` if refused."""
        ...

    async def authenticate(self, token: str) -> Principal:
        """The caller behind a bearer token; :class:`AuthError` (with the reason) if invalid."""
        ...


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Signs and checks ``v1.<payload>.<sig>`` tokens (HMAC-SHA256); pure apart from ``now``."""

    def __init__(self, secret_key: str, ttl: timedelta = TOKEN_TTL) -> None:
        if not secret_key:
            raise ValueError("secret_key: must not be empty")
        self._key = hashlib.sha256(b"waldstadt api token v1\0" + secret_key.encode()).digest()
        self.ttl = ttl

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, f"{_VERSION}.{payload}".encode(), "sha256").digest())

    def issue(self, principal: Principal, *, now: datetime) -> IssuedToken:
        expires = now + self.ttl
        doc = {
            "sub": principal.username,
            "role": principal.role.value,
            "mid": principal.member_id,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
        }
        payload = _b64(json.dumps(doc, separators=(",", ":"), sort_keys=True).encode())
        return IssuedToken(f"{_VERSION}.{payload}.{self._sign(payload)}", expires, principal)

    def verify(self, token: str, *, now: datetime) -> Principal:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _VERSION:
            raise AuthError("malformed token")
        _, payload, signature = parts
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise AuthError("bad token signature")
        try:
            doc = json.loads(_unb64(payload))
            username, role, member_id, exp = doc["sub"], Role(doc["role"]), doc["mid"], doc["exp"]
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthError("malformed token payload") from exc
        if not isinstance(exp, int) or now.timestamp() >= exp:
            raise AuthError("token expired")
        return Principal(str(username), role, None if member_id is None else str(member_id))


def default_hasher() -> PasswordHasher:
    """argon2id with argon2-cffi's defaults (time 3, 64 MiB, 4 lanes)."""
    return PasswordHasher()


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    if not password:
        raise ValueError("password: must not be empty")
    return (hasher or default_hasher()).hash(password)


class LocalAuthenticator:
    """Accounts in the store, argon2 hashes, HMAC-signed tokens."""

    def __init__(
        self, store: Store, signer: TokenSigner, clock: Clock, hasher: PasswordHasher
    ) -> None:
        self._store = store
        self._signer = signer
        self._clock = clock
        self._hasher = hasher
        self._dummy_hash = hasher.hash("not a password of anyone")

    async def login(self, username: str, password: str) -> IssuedToken:
        user = await self._store.users.get(username)
        if user is None:
            self._check(self._dummy_hash, password)
            raise AuthError("wrong username or password")
        if not self._check(user.password_hash, password):
            raise AuthError("wrong username or password")
        if user.disabled:
            raise AuthError("account disabled")
        if user.role not in Role.__members__.values():
            raise AuthError(f"role {user.role!r} cannot use the web API")
        if self._hasher.check_needs_rehash(user.password_hash):
            await self._store.users.set_password_hash(username, self._hasher.hash(password))
        principal = Principal(user.username, Role(user.role), user.member_id)
        return self._signer.issue(principal, now=self._clock.now())

    def _check(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def authenticate(self, token: str) -> Principal:
        claimed = self._signer.verify(token, now=self._clock.now())
        user = await self._store.users.get(claimed.username)
        if user is None or user.disabled:
            raise AuthError("account disabled or removed")
        if user.role != claimed.role.value or user.member_id != claimed.member_id:
            raise AuthError("account changed since the token was issued; log in again")
        return claimed


__all__ = [
    "ROLES",
    "TOKEN_TTL",
    "AuthError",
    "Authenticator",
    "IssuedToken",
    "LocalAuthenticator",
    "Principal",
    "Role",
    "TokenSigner",
    "default_hasher",
    "hash_password",
]
