"""What the app holds while it runs: settings, the store, the runtime, metrics, auth.

One :class:`AppState` per app, at ``app.state.waldstadt``; routes reach it through the
dependencies in :mod:`api.deps`, never through globals, so two apps in one process (tests,
benchmarks) never share anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from argon2 import PasswordHasher
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from api.auth import Authenticator, LocalAuthenticator, TokenSigner, default_hasher
from api.limits import API_LIMIT, LOGIN_LIMIT, IdempotencyCache, RateLimiter
from api.runtime import Runtime
from kernel.clock import Clock, RealClock
from scheduler.observability import Metrics
from scheduler.settings import Settings
from store import Store


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
    ``auth_clock`` gives the wall time for token expiry: a demo's simulated clock runs 144×
    faster, and a login must not expire in 25 real seconds."""

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
    idempotency: IdempotencyCache = field(default_factory=IdempotencyCache)

    @property
    def signer(self) -> TokenSigner:
        return TokenSigner(self.settings.secret_key.get_secret_value())

    def auth(self) -> Authenticator:
        """The authenticator: the one given, else local accounts in the open store."""
        if self.authenticator is None:
            if self.store is None:
                raise RuntimeError("no authenticator: the store is not open")
            self.authenticator = LocalAuthenticator(
                self.store, self.signer, self.auth_clock, self.hasher
            )
        return self.authenticator

    @property
    def clock(self) -> Clock:
        """The service's clock (simulated in the demo), or wall time without a runtime."""
        return self.runtime.clock if self.runtime is not None else self.auth_clock

    def metrics_text(self) -> bytes:
        own = self.runtime.metrics if self.runtime is not None else self.metrics
        return own.render() + generate_latest(self.http_metrics.registry)


__all__ = ["AppState", "HttpMetrics"]
