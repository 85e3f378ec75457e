"""Rate limits (429) and ``Idempotency-Key`` replay, both per app and in memory.

**Rate limit:** a token bucket per key (the account for authenticated calls; for logins the
client address, whatever usernames it tries, and one bucket for all logins together):
``capacity`` requests at once, refilled at ``refill_per_s``. In memory, so with several API
processes each enforces its own share; a reverse proxy's limit belongs in front of them
anyway. The per-account login lockout is in the database (:class:`api.auth.Lockout`), so it
holds across processes.

**Idempotency:** an acting POST with an ``Idempotency-Key`` header is done once per
(account, key); repeating it returns the first response unchanged (with
``Idempotent-Replayed: true``); the same key with a different request body is a 409, as is a
repeat while the first is still running. Entries live ``ttl_s`` (24 h) in a bounded map (the
oldest go first); the underlying effects (commands with ids, audit records) are durable
regardless, so a replay lost to a restart repeats an effect at most once more.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RateLimit:
    capacity: float
    refill_per_s: float


#: Per account: bursts of 240 requests, 20 per second sustained.
API_LIMIT = RateLimit(capacity=240, refill_per_s=20)
#: Per client address (any usernames): 10 login attempts, then one every 6 s.
LOGIN_LIMIT = RateLimit(capacity=10, refill_per_s=1 / 6)
#: All logins of the process together: bursts of 100, then 5 per second (about what one core
#: checks with argon2's defaults), so a spray from many addresses is throttled too.
LOGIN_GLOBAL_LIMIT = RateLimit(capacity=100, refill_per_s=5)


class RateLimiter:
    """Token buckets by key; :meth:`take` says how long to wait (0: allowed)."""

    def __init__(self, limit: RateLimit, max_keys: int = 100_000) -> None:
        if limit.capacity < 1 or limit.refill_per_s <= 0:
            raise ValueError("rate limit: capacity must be >= 1 and refill_per_s > 0")
        self.limit = limit
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, now_s: float) -> float:
        """Take one token for ``key`` at monotonic time ``now_s``; seconds to wait if none."""
        tokens, last = self._buckets.pop(key, (self.limit.capacity, now_s))
        tokens = min(self.limit.capacity, tokens + (now_s - last) * self.limit.refill_per_s)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now_s)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now_s)
            wait = (1 - tokens) / self.limit.refill_per_s
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return wait


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    body: Any


@dataclass
class _Entry:
    fingerprint: str
    created_s: float
    response: StoredResponse | None = None


class IdempotencyConflict(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class IdempotencyCache:
    def __init__(self, ttl_s: float = 24 * 3600, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._lock = asyncio.Lock()

    @staticmethod
    def fingerprint(method: str, path: str, body: bytes) -> str:
        return hashlib.sha256(f"{method} {path}\n".encode() + body).hexdigest()

    async def begin(
        self, account: str, key: str, fingerprint: str, now_s: float
    ) -> StoredResponse | None:
        """Claim ``key`` for this request: None to go ahead, or the stored response to replay.

        :class:`IdempotencyConflict` if the key was used for another request or is in flight.
        """
        async with self._lock:
            self._expire(now_s)
            entry = self._entries.get((account, key))
            if entry is None:
                self._entries[(account, key)] = _Entry(fingerprint, now_s)
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
                return None
            if entry.fingerprint != fingerprint:
                raise IdempotencyConflict(
                    "Idempotency-Key was already used for a different request"
                )
            if entry.response is None:
                raise IdempotencyConflict("a request with this Idempotency-Key is still running")
            return entry.response

    async def finish(self, account: str, key: str, response: StoredResponse | None) -> None:
        """Store the response (None: the request failed; the key may be used again)."""
        async with self._lock:
            entry = self._entries.get((account, key))
            if entry is None:
                return
            if response is None:
                del self._entries[(account, key)]
            else:
                entry.response = response

    def _expire(self, now_s: float) -> None:
        while self._entries:
            oldest_key, oldest = next(iter(self._entries.items()))
            if now_s - oldest.created_s < self.ttl_s:
                return
            del self._entries[oldest_key]


__all__ = [
    "API_LIMIT",
    "LOGIN_GLOBAL_LIMIT",
    "LOGIN_LIMIT",
    "IdempotencyCache",
    "IdempotencyConflict",
    "RateLimit",
    "RateLimiter",
    "StoredResponse",
]
