"""Metrics (Prometheus) and structured logs.

One :class:`Metrics` object per process holds its own registry, so that tests and several
services in one process do not collide. ``/metrics`` (in ``api/``) renders
:meth:`Metrics.render`.

Rejections: ``waldstadt_messages_rejected_total{source, reason}`` counts messages refused
whole (malformed, too large, a LoRaWAN port without codec … — the bus's reasons,
:meth:`Metrics.count_rejections`); ``waldstadt_readings_quarantined_total{source, reason}``
counts readings that failed the plausibility checks (:mod:`scheduler.plausibility`).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from protocols.mqtt.inbound import MalformedStats


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.cycle_seconds = Histogram(
            "waldstadt_cycle_seconds",
            "Duration of one read-decide-write cycle",
            registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.device_available = Gauge(
            "waldstadt_device_available",
            "1 if the device answered in the last cycle",
            ["device"],
            registry=r,
        )
        self.messages_rejected = Counter(
            "waldstadt_messages_rejected_total",
            "Payloads rejected (malformed or invalid)",
            ["source", "reason"],
            registry=r,
        )
        self.readings_quarantined = Counter(
            "waldstadt_readings_quarantined_total",
            "Readings refused by the plausibility checks: kept apart, never stored or billed",
            ["source", "reason"],
            registry=r,
        )
        self.readings_ingested = Counter(
            "waldstadt_readings_ingested_total", "Readings committed to the store", registry=r
        )
        self.outbox_depth = Gauge(
            "waldstadt_outbox_depth", "Entries waiting in the InfluxDB mirror outbox", registry=r
        )
        self.outbox_dropped = Counter(
            "waldstadt_outbox_dropped_total", "Entries dropped by the full outbox", registry=r
        )
        self.solve_seconds = Histogram(
            "waldstadt_solve_seconds",
            "Dispatch solve time",
            registry=r,
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120),
        )
        self.plan_status = Gauge(
            "waldstadt_plan_status", "1 for the status of the current plan", ["status"], registry=r
        )
        self.commands = Counter(
            "waldstadt_commands_total", "Commands by result", ["status"], registry=r
        )
        self.decider_errors = Counter(
            "waldstadt_decider_errors_total", "Deciders that raised", ["decider"], registry=r
        )
        self.job_errors = Counter(
            "waldstadt_job_errors_total", "Scheduled job runs that raised", ["job"], registry=r
        )
        self.job_missed = Gauge(
            "waldstadt_job_missed_runs",
            "Runs coalesced or skipped since start",
            ["job"],
            registry=r,
        )

    def count_rejections(self, malformed: MalformedStats, source: str = "mqtt") -> None:
        """Count every message ``malformed`` (a bus's) records in
        ``waldstadt_messages_rejected_total{source, reason}``."""
        rejected = self.messages_rejected
        malformed.listen(
            lambda _filter, reason: rejected.labels(source=source, reason=reason).inc()
        )

    def set_plan_status(self, status: str, known: list[str]) -> None:
        for s in known:
            self.plan_status.labels(status=s).set(1 if s == status else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, and any ``extra`` fields."""

    _skip = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._skip:
                out[key] = (
                    value if isinstance(value, str | int | float | bool | None) else repr(value)
                )
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_logging(level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
