"""What the app holds while it runs: settings, the store, the runtime, metrics, auth.

One :class:`AppState` per app, at ``app.state.waldstadt``; routes reach it through the
dependencies in :mod:`api.deps`, never through globals, so two apps in one process (tests,
benchmarks) never share anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from argon2 import PasswordHasher
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from api.auth import Authenticator, LocalAuthenticator, Lockout, TokenSigner, default_hasher
from api.limits import (
    API_LIMIT,
    LOGIN_GLOBAL_LIMIT,
    LOGIN_LIMIT,
    IdempotencyCache,
    RateLimiter,
)
from api.passwords import HashPool
from api.runtime import Runtime
from kernel.clock import Clock, RealClock
from kernel.errors import ConfigError
from scheduler.observability import Metrics
from scheduler.settings import Settings
from store import Store
from store.audit import AuditKey

#: The demo's audit key: public like the demo's logins (``waldstadt run`` requires a key of
#: its own, ``WALDSTADT_AUDIT_KEY``).
DEMO_AUDIT_KEY = "waldstadt demo audit key: public, demo only"


def audit_key_of(settings: Settings) -> AuditKey:
    """The audit chain's key: ``WALDSTADT_AUDIT_KEY``, or in the demo the public demo key."""
    if settings.audit_key is not None:
        return AuditKey.from_text(settings.audit_key.get_secret_value())
    if settings.mode == "demo":
        return AuditKey.from_text(DEMO_AUDIT_KEY)
    raise ConfigError("WALDSTADT_AUDIT_KEY", "required outside the demo", "environment")


class HttpMetrics:
    """Request counters and latencies of the web app, in a registry of its own (the runtime's
    registry belongs to the runtime; ``/metrics`` renders both)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "waldstadt_http_requests_total",
            "HTTP requests by route template, method and status code",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "waldstadt_http_request_seconds",
            "HTTP request duration by route template",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )


@dataclass
class AppState:
    """``runtime`` is None when the app serves from the store alone (tests, benchmarks).
    ``authenticator`` replaces the local accounts (the OIDC seam).
    ``auth_clock`` gives the wall time for token expiry and login locks: a demo's simulated
    clock runs 144× faster, and a login must not expire in 25 real seconds. ``hasher`` is
    read when the first password is checked (tests set a cheaper one before that)."""

    settings: Settings
    runtime: Runtime | None
    store: Store | None = None
    metrics: Metrics = field(default_factory=Metrics)
    http_metrics: HttpMetrics = field(default_factory=HttpMetrics)
    auth_clock: Clock = field(default_factory=RealClock)
    hasher: PasswordHasher = field(default_factory=default_hasher)
    authenticator: Authenticator | None = None
    api_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(API_LIMIT))
    login_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(LOGIN_LIMIT))
    login_global_limiter: RateLimiter = field(
        default_factory=lambda: RateLimiter(LOGIN_GLOBAL_LIMIT)
    )
    lockout: Lockout = field(default_factory=Lockout)
    idempotency: IdempotencyCache = field(default_factory=IdempotencyCache)
    _hash_pool: HashPool | None = None

    @property
    def hash_pool(self) -> HashPool:
        """Password hashing off the event loop, bounded (made with :attr:`hasher` unless one
        was set)."""
        if self._hash_pool is None or self._hash_pool.hasher is not self.hasher:
            self._hash_pool = HashPool(self.hasher)
        return self._hash_pool

    @hash_pool.setter
    def hash_pool(self, pool: HashPool) -> None:
        """Use ``pool`` (and its hasher) for the logins from now on."""
        self.hasher = pool.hasher
        self._hash_pool = pool
        self.authenticator = None

    @property
    def audit_key(self) -> AuditKey:
        return audit_key_of(self.settings)

    @property
    def signer(self) -> TokenSigner:
        return TokenSigner(self.settings.secret_key.get_secret_value())

    def auth(self) -> Authenticator:
        """The authenticator: the one given, else local accounts in the open store."""
        if self.authenticator is None:
            if self.store is None:
                raise RuntimeError("no authenticator: the store is not open")
            self.authenticator = LocalAuthenticator(
                self.store, self.signer, self.auth_clock, self.hash_pool, self.lockout
            )
        return self.authenticator

    @property
    def clock(self) -> Clock:
        """The service's clock (simulated in the demo), or wall time without a runtime."""
        return self.runtime.clock if self.runtime is not None else self.auth_clock

    def metrics_text(self) -> bytes:
        own = self.runtime.metrics if self.runtime is not None else self.metrics
        return own.render() + generate_latest(self.http_metrics.registry)


__all__ = ["DEMO_AUDIT_KEY", "AppState", "HttpMetrics", "audit_key_of"]
