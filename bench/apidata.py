"""Bulk data for the API benchmark: N members × one year of quarter-hours, on SQLite or
PostgreSQL, built once and cached.

What is stored is what the service writes for such a community:

* ``member_intervals``: both meter channels (``import_energy_wh``, ``export_energy_wh``) of
  every member for every quarter-hour of the year (version 1; about one in 500 a substitute
  value; every fourth member has PV and exports around noon) — 70 million rows for
  1,000 members;
* ``settlement_runs`` / ``settlement_statements``: per local day (92, 96 or 100
  quarter-hours) :attr:`Dataset.provisional` **provisional** versions (the day so far, as
  the service appends after quarter-hours) and then the **final** run, each with a statement
  per member, details shaped as :mod:`vpp.settlement.runs` makes them (the final one
  with its quarter-hour ``lines``, most of a statement's bytes). The service appends a
  provisional version after every quarter-hour, ~96 a day; the default 8 keeps the data at
  ~3 million statements instead of ~35 million, which is enough to make "the newest version
  of each period" a real choice among many;
* ``member_day_totals``: built by the store's own builder from those intervals (what the
  service keeps as it writes them), in Europe/Berlin;
* ``users``: a member account per member (``u0001`` … sees ``m0001``) and an operator
  (``bench-operator``), all with the password :data:`PASSWORD`.

The intervals are generated inside the database (``INSERT … SELECT`` over a recursive CTE on
SQLite, over ``generate_series`` on PostgreSQL: no row passes through Python), the statements
with ``executemany`` / ``COPY``. The secondary index is dropped for the load and built once
afterwards. A finished SQLite file is renamed into place; a finished PostgreSQL database gets
the comment ``complete``; both are named by :attr:`Dataset.key` (data version, schema
revision, size), so a repeat run with the same key starts at once and a schema migration or a
change here (bump :data:`DATA_VERSION`) rebuilds.

The rows are made in :mod:`bench.apidata_rows`, written by :mod:`bench.apidata_sqlite` and
:mod:`bench.apidata_pg`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from bench.apidata_pg import ensure_postgres, pg_url
from bench.apidata_rows import (
    COMMUNITY,
    DATA_VERSION,
    OPERATOR,
    PASSWORD,
    TZ,
    Dataset,
)
from bench.apidata_sqlite import ensure_sqlite

BACKENDS: dict[str, Callable[..., Any]] = {"sqlite": ensure_sqlite, "postgresql": ensure_postgres}


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.apidata [sqlite] [postgresql] [--members=N] [--days=N] [--rebuild]``"""
    import sys

    args = sys.argv[1:] if argv is None else argv
    opts = {a.split("=")[0]: a.split("=", 1)[1] for a in args if a.startswith("--") and "=" in a}
    ds = Dataset(int(opts.get("--members", 1000)), int(opts.get("--days", 365)))
    backends = [a for a in args if not a.startswith("--")] or list(BACKENDS)
    for b in backends:
        if b == "sqlite":
            print(asyncio.run(ensure_sqlite(ds, rebuild="--rebuild" in args)))
        else:
            print(asyncio.run(ensure_postgres(ds, rebuild="--rebuild" in args)))


__all__ = [
    "BACKENDS",
    "COMMUNITY",
    "DATA_VERSION",
    "OPERATOR",
    "PASSWORD",
    "TZ",
    "Dataset",
    "ensure_postgres",
    "ensure_sqlite",
    "main",
    "pg_url",
]


if __name__ == "__main__":
    main()
