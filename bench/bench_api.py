"""The web API under load: a member's month view with 1,000 members × one year of
quarter-hours stored, on SQLite and on PostgreSQL, against the bare ``/health`` route in the
same run; and the first load of the member and operator pages.

The data (:mod:`bench.apidata`) is built once and cached. The app is ``create_app`` served by
uvicorn in a subprocess (one worker), with a runtime whose clock stands inside the stored year
(``BENCH_API_NOW``, default 2025-11-20 12:00 UTC), so "today" and "this month" of the pages
have data. Each of ``--clients`` (50) clients has an httpx ``AsyncClient`` (one keep-alive
connection) and is logged in through ``POST /api/v1/auth/token`` as a different member. Two
ways to load the app:

* **users** — what the target means: 50 people using the app at once, each sending a
  request, reading the answer and sending the next one after a think time drawn uniformly from
  ``--think`` (0.5–1.5 s), for ``--paced-seconds`` (30) after a warm-up; the month view's p99
  must stay ≤ 50 ms, beside ``/health`` under the same load;
* **back to back** — every client sends its next request as soon as the previous one
  answered, for ``--seconds`` (10): the app saturated, its throughput. Latency is then just
  clients ÷ throughput (on this machine's two cores, shared with the clients, even
  ``/health`` is at ~40 ms p50), so these rows carry no target; they show the month view's
  throughput against ``/health``'s.

Routes:

* ``/health`` — the baseline: no auth, no database;
* month view — ``GET /api/v1/members/{id}/balances?resolution=day&start=<1st>&end=<1st of
  next>`` for a random month of the year (the per-day table of the member page's month, from
  ~5,800 intervals and the newest of ~9 settlement versions of each day); target p99 ≤ 50 ms;
* member page — ``GET /member`` (server-rendered: today per quarter-hour, the month per day);
* first load — a fresh client (no connection, no cache) fetching ``/member`` (as a member) or
  ``/operator`` (as the operator) and every ``/static`` asset the HTML references, one at a
  time, 10 times; target < 1 s.

Latencies are measured in the client process (the machine's two cores are shared by server
and clients, and by whatever else runs). Non-200 answers are counted as errors and left out
of the percentiles. ``--profile`` times the month view's stages in-process (intervals query,
statements query, bucketing, response model) and prints cProfile's top functions.

    scripts/bench api [--backends=sqlite,postgresql] [--clients=50] [--seconds=10]
                      [--paced-seconds=30] [--think=0.5,1.5] [--members=1000] [--days=365]
                      [--provisional=8] [--rebuild] [--profile]
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import random
import re
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from api.runtime import LightingControl
from bench.apidata import OPERATOR, PASSWORD, TZ, Dataset, ensure_postgres, ensure_sqlite
from kernel.clock import ManualClock
from scheduler.health import Readiness
from scheduler.live import LiveView
from scheduler.observability import Metrics
from scheduler.site import Site

SECRET = "bench-secret-key-0123456789abcdef"
DEFAULT_NOW = "2025-11-20T12:00:00+00:00"
MONTH_P99_MS = 50.0
PAGE_S = 1.0
SESSION_COOKIE = "waldstadt_session"


# -- the server (runs in the uvicorn subprocess) ----------------------------------------------


@dataclass
class BenchRuntime:
    """A runtime with a clock standing inside the stored year (see :mod:`api.runtime`); no
    site, no lighting, no cycle."""

    clock: ManualClock
    metrics: Metrics = field(default_factory=Metrics)

    site: Site | None = None
    lighting: LightingControl | None = None

    async def readiness(self) -> Readiness:
        return Readiness(())

    def live(self) -> LiveView:
        return LiveView(None)


def server_app() -> Any:
    """uvicorn's ``--factory`` entry: the app on ``WALDSTADT_DATABASE_URL``."""
    from api.app import create_app
    from api.limits import RateLimit, RateLimiter
    from scheduler.settings import load_settings

    now = datetime.fromisoformat(os.environ.get("BENCH_API_NOW", DEFAULT_NOW))
    app = create_app(load_settings(), runtime=BenchRuntime(ManualClock(now)))
    # all the bench's clients log in from 127.0.0.1: lift the per-address login limit
    app.state.waldstadt.login_limiter = RateLimiter(RateLimit(100_000, 100_000))
    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serve(url: str, now: datetime, workers: int) -> AsyncIterator[str]:
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("WALDSTADT_")
    } | {
        "WALDSTADT_DATABASE_URL": url,
        "WALDSTADT_SECRET_KEY": SECRET,
        "WALDSTADT_AUDIT_KEY": "bench-audit-key-" + "0" * 16,
        "WALDSTADT_LOG_LEVEL": "WARNING",
        "BENCH_API_NOW": now.isoformat(),
    }  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "bench.bench_api:server_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", "--no-access-log",
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/health")).status_code == 200:
                        break
                if proc.returncode is not None:
                    raise RuntimeError(f"uvicorn exited with {proc.returncode}")
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("uvicorn did not answer /health within 30 s")
        yield base
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


# -- load -------------------------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    route: str
    requests: int
    errors: dict[int, int]
    latencies_ms: list[float]
    seconds: float
    target: str
    limit_ms: float | None

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(q / 100 * len(xs)))]

    @property
    def met(self) -> str:
        if self.limit_ms is None:
            return ""
        if not self.latencies_ms or self.errors:
            return "not met"
        measure = self.pct(99) if "p99" in self.target else max(self.latencies_ms)
        return "met" if measure <= self.limit_ms else "not met"


async def login(client: httpx.AsyncClient, username: str) -> str:
    r = await client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    r.raise_for_status()
    token: str = r.json()["access_token"]
    return token


async def page_login(base: str, username: str) -> str:
    """A page session through the login form (the pages refuse the API's bearer tokens)."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        page = await c.get("/login")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert csrf is not None, page.text[:200]
        form = {"username": username, "password": PASSWORD, "csrf": csrf.group(1)}
        r = await c.post("/login", data=form)
        assert r.status_code == 303, r.text[:200]
        session: str = c.cookies[SESSION_COOKIE]
        return session


def month_bounds(ds: Dataset, now: datetime) -> list[tuple[date, date]]:
    """The whole local months of the stored year up to the clock's month."""
    out = []
    last = ds.first_day + timedelta(days=ds.days)
    today = now.astimezone(TZ).date()
    d = ds.first_day.replace(day=1)
    while d < last and d <= today:
        nxt = date(d.year + d.month // 12, d.month % 12 + 1, 1)
        if d >= ds.first_day and nxt <= last:
            out.append((d, nxt))
        d = nxt
    return out


async def closed_loop(
    base: str,
    clients: list[dict[str, str]],
    request: Callable[[httpx.AsyncClient, int, random.Random], Awaitable[httpx.Response]],
    seconds: float,
    warmup: float,
    think_s: tuple[float, float] | None = None,
) -> tuple[int, dict[int, int], list[float], float]:
    """``len(clients)`` clients (their headers/cookies), each sending its next request when
    the previous one answered: back to back (``think_s`` None: the server saturated), or after
    a think time drawn uniformly from ``think_s`` (people using the app)."""
    latencies: list[float] = []
    errors: dict[int, int] = {}
    count = 0
    start = time.perf_counter()
    measure_from = start + warmup
    stop = measure_from + seconds

    async def one(i: int, cookies_headers: dict[str, str]) -> None:
        nonlocal count
        rng = random.Random(i)
        if think_s is not None:  # people do not all click at the same instant
            await asyncio.sleep(rng.uniform(0, think_s[1]))
        cookies = {SESSION_COOKIE: cookies_headers["token"]} if "token" in cookies_headers else {}
        headers = {k: v for k, v in cookies_headers.items() if k != "token"}
        async with httpx.AsyncClient(
            base_url=base, headers=headers, cookies=cookies, timeout=60,
            limits=httpx.Limits(max_connections=1),
        ) as client:  # fmt: skip
            while (t0 := time.perf_counter()) < stop:
                r = await request(client, i, rng)
                t1 = time.perf_counter()
                if think_s is not None:
                    await asyncio.sleep(rng.uniform(*think_s))
                if t0 < measure_from:
                    continue
                count += 1
                if r.status_code != 200:
                    errors[r.status_code] = errors.get(r.status_code, 0) + 1
                else:
                    latencies.append((t1 - t0) * 1000)

    await asyncio.gather(*(one(i, c) for i, c in enumerate(clients)))
    return count, errors, latencies, seconds


ASSET = re.compile(r"""(?:src|href)=["'](/static/[^"']+)["']""")


async def first_load(
    base: str, path: str, token: str, times: int
) -> tuple[list[float], dict[int, int]]:
    """Seconds for the page and each static asset it references, on a fresh connection (and
    the status codes of failed loads: a page that fails is reported, not timed)."""
    out: list[float] = []
    errors: dict[int, int] = {}
    for _ in range(times):
        t0 = time.perf_counter()
        async with httpx.AsyncClient(
            base_url=base, cookies={SESSION_COOKIE: token}, timeout=60
        ) as client:
            r = await client.get(path)
            statuses = [r.status_code]
            if r.status_code == 200:
                for asset in dict.fromkeys(ASSET.findall(r.text)):
                    statuses.append((await client.get(asset)).status_code)
        failed = [code for code in statuses if code != 200]
        if failed:
            errors[failed[0]] = errors.get(failed[0], 0) + 1
        else:
            out.append(time.perf_counter() - t0)
    return out, errors


async def run_backend(
    backend: str, url: str, ds: Dataset, now: datetime, opts: dict[str, str]
) -> list[Result]:
    n_clients = int(opts.get("--clients", 50))
    seconds = float(opts.get("--seconds", 10))
    paced_seconds = float(opts.get("--paced-seconds", 30))
    lo, hi = (float(x) for x in opts.get("--think", "0.5,1.5").split(","))
    think = (lo, hi)
    warmup = float(opts.get("--warmup", 2))
    workers = int(opts.get("--workers", 1))
    results: list[Result] = []
    step = max(1, ds.members // n_clients)
    members = [1 + i * step for i in range(n_clients)]
    months = month_bounds(ds, now)
    async with serve(url, now, workers) as base:
        async with httpx.AsyncClient(base_url=base, timeout=120) as c:
            sem = asyncio.Semaphore(4)

            async def login_one(k: int) -> str:
                async with sem:
                    return await login(c, ds.username(k))

            tokens = await asyncio.gather(*(login_one(k) for k in members))
            sessions = [await page_login(base, ds.username(k)) for k in members]
            op_session = await page_login(base, OPERATOR)
            pages = {route.strip() for route in ("/member", "/operator")}
            present = {p for p in pages if (await c.get(p, follow_redirects=False)).status_code
                       in (200, 302, 303, 307, 401, 403)}  # fmt: skip

        async def health(client: httpx.AsyncClient, i: int, rng: random.Random) -> httpx.Response:
            return await client.get("/health")

        async def month(client: httpx.AsyncClient, i: int, rng: random.Random) -> httpx.Response:
            first, nxt = rng.choice(months)
            return await client.get(
                f"/api/v1/members/{ds.member_id(members[i])}/balances",
                params={"resolution": "day", "start": first.isoformat(), "end": nxt.isoformat()},
            )

        async def member_page(
            client: httpx.AsyncClient, i: int, rng: random.Random
        ) -> httpx.Response:
            return await client.get("/member")

        bearer = [{"Authorization": f"Bearer {t}"} for t in tokens]
        cookie = [{"token": t} for t in sessions]
        users = f"{n_clients} users"
        saturated = f"{n_clients} back to back"
        Scenario = tuple[str, Any, list[dict[str, str]], str, float | None, bool]
        scenarios: list[Scenario] = [
            (f"GET /health (baseline), {users}", health, [{} for _ in tokens], "", None, True),
            (f"month view (API), {users}", month, bearer, "p99 ≤ 50 ms", MONTH_P99_MS, True),
        ]
        if "/member" in present:
            scenarios.append((f"GET /member page, {users}", member_page, cookie, "", None, True))
        scenarios += [
            (f"GET /health (baseline), {saturated}", health, [{} for _ in tokens], "", None, False),
            (f"month view (API), {saturated}", month, bearer, "", None, False),
        ]
        for name, fn, clients, target, limit, paced in scenarios:
            count, errors, lat, secs = await closed_loop(
                base, clients, fn, paced_seconds if paced else seconds, warmup,
                think_s=think if paced else None,
            )  # fmt: skip
            results.append(Result(backend, name, count, errors, lat, secs, target, limit))
            print(f"  {backend}: {name}: {count} requests", flush=True)
        for path, token in (("/member", sessions[0]), ("/operator", op_session)):
            if path not in present:
                print(f"  {backend}: {path} does not exist (no api/web page yet)")
                continue
            loads, errors = await first_load(base, path, token, 10)
            results.append(
                Result(
                    backend, f"first load {path} (+ static assets)", 10, errors,
                    [x * 1000 for x in loads], sum(loads), "page < 1 s", PAGE_S * 1000,
                )
            )  # fmt: skip
    return results


def table(results: list[Result]) -> str:
    head = (
        f"{'backend':<10} {'route':<40} {'requests':>8} {'errors':>9} {'p50 ms':>8} "
        f"{'p95 ms':>8} {'p99 ms':>8} {'req/s':>7}  {'target':<12} {'':<7}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        errs = ",".join(f"{n}×{code}" for code, n in sorted(r.errors.items())) or "0"
        rate = r.requests / r.seconds if r.seconds else 0.0
        lines.append(
            f"{r.backend:<10} {r.route:<40} {r.requests:>8} {errs:>9} {r.pct(50):>8.1f} "
            f"{r.pct(95):>8.1f} {r.pct(99):>8.1f} {rate:>7.1f}  {r.target:<12} {r.met:<7}"
        )
    return "\n".join(lines)


# -- profile ----------------------------------------------------------------------------------


async def profile_month(url: str, ds: Dataset, now: datetime, n: int = 20) -> str:
    """Where a month view's time goes, in-process (no HTTP): the route's own steps timed
    (the balances read, the response model and its JSON), its two queries alone (the
    intervals summed per day, the newest statement of each day), and cProfile's top functions
    over the route's steps."""
    from api.periods import PeriodQuery
    from api.routers.members import balance_row, member_buckets
    from api.schemas.members import MemberBalancesPublic
    from store import Store
    from vpp.settlement.balances import Resolution, bucket_bounds

    months = month_bounds(ds, now)
    stages: dict[str, list[float]] = {
        "member_buckets (queries + bucketise)": [], "response model + JSON": [],
        "  store.balances.interval_sums alone": [], "  store.balances.settled_periods alone": [],
    }  # fmt: skip
    out = io.StringIO()
    rows = 0
    async with Store(url) as store:
        prof = cProfile.Profile()
        for i in range(n):
            first, nxt = months[i % len(months)]
            member = ds.member_id(1 + (i * 37) % ds.members)
            period = PeriodQuery(Resolution.DAY, first, nxt, TZ)
            prof.enable()
            t0 = time.perf_counter()
            buckets = await member_buckets(store, member, period)
            t1 = time.perf_counter()
            body = MemberBalancesPublic(
                member_id=member, resolution=period.resolution, timezone="Europe/Berlin",
                start=first, end=nxt, rows=[balance_row(b) for b in buckets],
            ).model_dump_json()  # fmt: skip
            t2 = time.perf_counter()
            prof.disable()
            bounds = bucket_bounds(period.resolution, period.start, period.end, period.tz)
            sums = await store.balances.interval_sums(member, bounds)
            t3 = time.perf_counter()
            await store.balances.settled_periods(member, period.start_utc, period.end_utc)
            t4 = time.perf_counter()
            rows = sum(s.quarter_hours for s in sums)
            for name, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                stages[name].append(dt * 1000)
            assert buckets
            assert body
        print(
            f"  month view in-process, {n} runs, medians (ms); {rows} quarter-hours/month:",
            file=out,
        )
        for name, xs in stages.items():
            print(f"    {name:<40} {statistics.median(xs):8.1f}", file=out)
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(20)
        print(s.getvalue(), file=out)
    return out.getvalue()


# -- main -------------------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    opts = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in argv if "=" in a}
    flags = {a for a in argv if "=" not in a}
    ds = Dataset(
        int(opts.get("--members", 1000)),
        int(opts.get("--days", 365)),
        provisional=int(opts.get("--provisional", 8)),
    )
    now = datetime.fromisoformat(opts.get("--now", DEFAULT_NOW)).astimezone(UTC)
    backends = opts.get("--backends", "sqlite,postgresql").split(",")
    results: list[Result] = []
    profiles: dict[str, str] = {}
    for backend in backends:
        if backend == "sqlite":
            url = asyncio.run(ensure_sqlite(ds, rebuild="--rebuild" in flags))
        elif backend == "postgresql":
            url = asyncio.run(ensure_postgres(ds, rebuild="--rebuild" in flags))
        else:
            sys.exit(f"--backends: unknown backend {backend!r} (sqlite, postgresql)")
        print(f"{backend}: {ds.members} members × {ds.days} days, clock at {now.isoformat()}")
        results += asyncio.run(run_backend(backend, url, ds, now, opts))
        if "--profile" in flags:
            profiles[backend] = asyncio.run(profile_month(url, ds, now))
    print()
    print(table(results))
    for backend, text in profiles.items():
        print(f"\nprofile ({backend}):\n{text}")


if __name__ == "__main__":
    main(sys.argv[1:])
