"""The data of the API benchmark as rows: the dataset's shape, and each day's settlement runs
with statements shaped as :mod:`vpp.settlement.runs` makes them (see :mod:`bench.apidata`)."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from kernel.quarterhours import local_day_bounds
from store import Store
from store.migrate import head_revision

#: Bump when the generated data changes shape; cached files and databases are keyed by it.
DATA_VERSION = 2
TZ = ZoneInfo("Europe/Berlin")
PASSWORD = "bench-password-0123"
OPERATOR = "bench-operator"
COMMUNITY = "bench-community"
CHANNELS = ("export_energy_wh", "import_energy_wh")
#: Distinct statement shapes per day; member k gets shape k % VARIANTS (the bytes and the
#: parsing cost are a real statement's, without writing 365,000 distinct JSON documents).
VARIANTS = 16
PG_HOST = os.environ.get("PGHOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PGPORT", "5432"))
DEFAULT_CACHE = Path(os.environ.get("BENCH_API_CACHE", "~/.cache/waldstadt-bench"))

# Energy per quarter-hour in mWh, from the member number k and the quarter-hour index i of the
# year; the same integer expression on both backends.
IMPORT_MWH = "(20000 + ((i * 7919 + k * 104729) % 180000))"
EXPORT_MWH = (
    "(CASE WHEN k % 4 = 0 AND (i % 96) BETWEEN 30 AND 66 "
    "THEN ((i * 6007 + k * 3571) % 400000) ELSE 0 END)"
)
QUALITY = "(CASE WHEN (i * 13 + k) % 500 = 0 THEN 'substitute' ELSE 'good' END)"
INTERVAL_COLS = (
    "member_id, channel, interval_start, energy_wh, quality, version, restated, recorded_at"
)


@dataclass(frozen=True, slots=True)
class Dataset:
    members: int = 1000
    days: int = 365
    first_day: date = date(2025, 1, 1)
    #: provisional versions per day before the final run
    provisional: int = 8

    @property
    def key(self) -> str:
        return (
            f"v{DATA_VERSION}_{head_revision()}_{self.members}m_{self.days}d_"
            f"{self.provisional}p_{self.first_day:%Y%m%d}"
        ).lower()

    @property
    def start_utc(self) -> datetime:
        return local_day_bounds(self.first_day, TZ)[0]

    @property
    def end_utc(self) -> datetime:
        return local_day_bounds(self.first_day + timedelta(days=self.days - 1), TZ)[1]

    @property
    def quarter_hours(self) -> int:
        return int((self.end_utc - self.start_utc) / timedelta(minutes=15))

    def member_id(self, k: int) -> str:
        """Member number ``k`` (1-based)."""
        return f"m{k:04d}"

    def username(self, k: int) -> str:
        return f"u{k:04d}"

    def day_list(self) -> list[date]:
        return [self.first_day + timedelta(days=d) for d in range(self.days)]


def log(msg: str) -> None:
    print(f"[apidata {time.strftime('%H:%M:%S')}] {msg}", flush=True)


@dataclass(frozen=True, slots=True)
class Variant:
    consumption_wh: int
    generation_wh: int
    received_wh: int
    delivered_wh: int
    residual_wh: int
    surplus_wh: int
    amount_eur: Decimal
    co2_g: Decimal
    details_json: str


def day_variants(day_start: datetime, n_qh: int, seed: int, throughs: list[int]) -> list[Variant]:
    """One member's statements of a day shaped like the settlement job's: one per entry of
    ``throughs`` (the day through that many quarter-hours; provisional, without lines) and
    the final one (all quarter-hours, with its lines) last."""
    rng = random.Random(seed)
    producer = seed % 4 == 0
    cons = [rng.randrange(20, 200) for _ in range(n_qh)]
    gen = [rng.randrange(0, 400) if producer and 30 <= q % 96 <= 66 else 0 for q in range(n_qh)]
    own = [min(c, g) for c, g in zip(cons, gen, strict=True)]
    recv = [
        rng.randrange(0, c - o + 1) if not producer else 0 for c, o in zip(cons, own, strict=True)
    ]
    deliv = [rng.randrange(0, g - o + 1) for g, o in zip(gen, own, strict=True)]

    def upto(n: int, with_lines: bool) -> Variant:
        c, g, o, r, d = (sum(x[:n]) for x in (cons, gen, own, recv, deliv))
        residual = c - o - r
        surplus = g - o - d
        shared_cost = Decimal(r) * Decimal("0.00012")
        residual_cost = Decimal(residual) * Decimal("0.00035")
        revenue = Decimal(d) * Decimal("0.0001")
        net = shared_cost + residual_cost - revenue
        amount = net.quantize(Decimal("0.01"))
        co2 = (Decimal(r) * Decimal("0.366")).quantize(Decimal("0.001"))
        details: dict[str, Any] = {
            "quality": "L1",
            "quarter_hours": n,
            "substitute_quarter_hours": {"L2": 0, "L3": 0},
            "own_generation_used_wh": o,
            "participation_pct": 100,
            "money_eur": {
                "shared_cost_eur": str(shared_cost.quantize(Decimal("0.01"))),
                "residual_cost_eur": str(residual_cost.quantize(Decimal("0.01"))),
                "network_fee_eur": "0.00",
                "shared_revenue_eur": str(revenue.quantize(Decimal("0.01"))),
            },
            "net_exact_eur": str(net),
        }
        if with_lines:
            details["lines"] = {
                "qh_start": [(day_start + q * timedelta(minutes=15)).isoformat() for q in range(n)],
                "quality": ["L1"] * n,
                "consumption_wh": cons[:n],
                "generation_wh": gen[:n],
                "received_wh": recv[:n],
                "delivered_wh": deliv[:n],
            }
        return Variant(c, g, r, d, residual, surplus, amount, co2, json.dumps(details))

    return [upto(n, False) for n in throughs] + [upto(n_qh, True)]


@dataclass(frozen=True, slots=True)
class Run:
    run_id: int
    version: int
    start: datetime
    end: datetime
    created_at: datetime
    reason: str
    details_json: str
    #: statement shape v for member k is variants[k % VARIANTS]
    variants: list[Variant]


def runs(ds: Dataset) -> Iterator[Run]:
    """Every run of the year in the order the service appends them: per day the provisional
    versions, then the final one."""
    run_id = 0
    for n, day in enumerate(ds.day_list()):
        start, end = local_day_bounds(day, TZ)
        n_qh = int((end - start) / timedelta(minutes=15))
        throughs = [n_qh * (j + 1) // (ds.provisional + 1) for j in range(ds.provisional)]
        shapes = [day_variants(start, n_qh, n * VARIANTS + v, throughs) for v in range(VARIANTS)]
        per = ds.members / VARIANTS
        for j, through in enumerate([*throughs, n_qh]):
            variants = [shape[j] for shape in shapes]
            final = j == len(throughs)
            totals = {
                "consumption_wh": int(sum(v.consumption_wh for v in variants) * per),
                "generation_wh": int(sum(v.generation_wh for v in variants) * per),
                "received_wh": int(sum(v.received_wh for v in variants) * per),
                "delivered_wh": int(sum(v.delivered_wh for v in variants) * per),
            }
            through_at = start + through * timedelta(minutes=15)
            details: dict[str, Any] = {
                "kind": "final" if final else "provisional",
                "day": day.isoformat(),
                "through": through_at.isoformat(),
                "quarter_hours": n_qh,
                "complete": final,
                "inputs_fingerprint": f"bench-{DATA_VERSION}-{day.isoformat()}-{j}",
                "quality": "L1",
                "missing_members": [],
                "substitute_quarter_hours": {},
                "totals_wh": totals,
            }
            run_id += 1
            local = through_at.astimezone(TZ)
            yield Run(
                run_id=run_id,
                version=j + 1,
                start=start,
                end=end,
                created_at=end + timedelta(hours=1, minutes=15)
                if final
                else through_at + timedelta(minutes=1),
                reason="final" if final else f"provisional through {local:%H:%M}",
                details_json=json.dumps(details),
                variants=variants,
            )


async def build_day_totals(url: str, backend: str) -> None:
    """Build the day totals the service would keep, with the store's own builder (the data
    went in around the store, as rows)."""
    started = time.perf_counter()
    async with Store(url) as store:
        read = await store.day_totals.ensure_zone(TZ.key, now=datetime.now(UTC))
    log(f"{backend}: day totals from {read} intervals in {time.perf_counter() - started:.0f} s")
