"""Liveness and readiness as values, so that ``api/`` can answer ``/health`` and ``/ready``.

The service collects one :class:`Check` per dependency (broker connected, database reachable,
last cycle recent, …); :class:`Readiness` is *ok* when every check passes and *degraded*
otherwise, with the failing checks' details as the reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: tuple[Check, ...]

    @property
    def status(self) -> Literal["ok", "degraded"]:
        return "ok" if all(c.ok for c in self.checks) else "degraded"

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f"{c.name}: {c.detail}" for c in self.checks if not c.ok)

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "reasons": list(self.reasons),
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in self.checks},
        }


__all__ = ["Check", "Readiness"]
