"""schemathesis against the app's own OpenAPI schema: every operation the schema lists (so
routes added later are covered without touching this file), with positive and negative data,
positive data on seeded ids, and every integer parameter without a maximum at 2**63 (one past
BIGINT), as each role (a token from the login route) and without a token, on SQLite and
PostgreSQL. An operation that refuses a caller (401/403) is not fuzzed further for that caller:
the role × route matrix (test_api_roles.py) tests those answers.

The checks: no 5xx (``not_a_server_error``), and every response conforms to the schema where
the schema describes it (``response_schema_conformance``, ``content_type_conformance``).

The store is real and seeded so that generated requests reach data, not only 404s: six
members ``h01``…``h06`` (the schema's example member id) with a day and a half of intervals,
a settlement run of yesterday, a plan, an alarm, a command, an audit record, an account per
role, and the demo town's street lighting as a stored configuration. The app is served through
schemathesis' ASGI transport, whose event loop runs the app's lifespan (which opens the store).

Two things are set for the run, neither of which skips a check: the per-account rate limit is
lifted (otherwise most generated requests of a role would be 429s after the first 240), and
passwords are hashed at a low argon2 cost (same code path). ``FUZZ_EXAMPLES`` sets the
examples per operation and kind of data (default 3: both backends in ~30 s of CPU; not a
``WALDSTADT_`` name, since the settings refuse unknown ones).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from api.accounts import add_user
from api.app import create_app
from api.audit import record_action
from api.auth import Principal, Role
from api.limits import RateLimit, RateLimiter
from lighting.config import LightingConfig
from sims.demo_site import demo_lighting_data
from sims.town import load_town
from store import Store
from store.audit import AuditKey
from store.commands import Command
from store.intervals import Interval
from store.lighting_config import lighting_hash
from store.settlement import Statement
from tests.api.conftest import AUDIT_KEY, FAST_HASHER, NOW, PASSWORD, TinyRuntime, settings_for
from tests.db_fixtures import create_pg_database, drop_pg_database, pg_url

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))
QH = timedelta(minutes=15)
TZ = ZoneInfo("Europe/Berlin")
MEMBERS = [f"h{i:02d}" for i in range(1, 7)]
USERS: dict[Role, tuple[str, str | None]] = {
    Role.OPERATOR: ("olga", None),
    Role.MEMBER: ("anna", "h01"),
    Role.LIGHTING_ENGINEER: ("lena", None),
    Role.AUDITOR: ("aldo", None),
}
INT64_PAST_MAX = 2**63
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@dataclass
class Target:
    app: Any
    schema: Any
    tokens: dict[Role, str] = field(default_factory=dict)
    #: a session of each role's own for the logout (which ends the session it is called with)
    spare_tokens: dict[Role, str] = field(default_factory=dict)
    seeded: dict[str, str] = field(default_factory=dict)


def plan_doc() -> dict[str, Any]:
    return {
        "plan_id": "c1-optimal",
        "status": "optimal_relaxed",
        "objective_eur": 12.5,
        "n_qh": 96,
        "violations": [
            {"constraint": "feeder_limit", "amount_wh": 120.0, "member_id": None,
             "asset_id": None, "qh": 3}
        ],
        "alarms": [],
        "assets": [{"member_id": "h01", "asset_id": "h01-battery", "power_w": [0.0] * 96}],
        "notes": ["forecast from yesterday"],
    }  # fmt: skip


async def seed(url: str, lighting: LightingConfig) -> None:
    """Accounts, intervals, a settlement run, a plan, an alarm, a command, an audit record,
    and the street lighting as a stored configuration version."""
    async with Store(url) as store:
        await store.lighting_config.append(
            lighting, base_hash=lighting_hash(None), created_by="seed", change="seed", now=NOW
        )
        for role, (username, member_id) in USERS.items():
            await add_user(
                store, username, PASSWORD, role, now=NOW, member_id=member_id, hasher=FAST_HASHER
            )
        yesterday = NOW.astimezone(TZ).date() - timedelta(days=1)
        day_start = _local_midnight(yesterday)
        day_end = _local_midnight(yesterday + timedelta(days=1))
        intervals = []
        t = day_start
        n = 0
        while t < NOW:
            for k, member in enumerate(MEMBERS):
                n += 1
                intervals.append(
                    Interval(member, "import_energy_wh", t, Decimal(100 + (n * 37) % 90))
                )
                export = Decimal((n * 53) % 300) if k % 2 == 0 else Decimal(0)
                intervals.append(Interval(member, "export_energy_wh", t, export))
            t += QH
        await store.intervals.record(intervals, now=NOW)
        statements = [
            Statement(
                member_id=m,
                consumption_wh=Decimal(5000 + 10 * k),
                generation_wh=Decimal(3000 if k % 2 == 0 else 0),
                shared_received_wh=Decimal(400),
                shared_delivered_wh=Decimal(300 if k % 2 == 0 else 0),
                grid_import_wh=Decimal(3000),
                grid_export_wh=Decimal(100),
                amount_eur=Decimal("1.23"),
                co2_g=Decimal("146.4"),
                details={"kind": "final"},
            )
            for k, m in enumerate(MEMBERS)
        ]
        await store.settlement.append(
            "c1", day_start, day_end, statements, reason="final", now=NOW,
            details={"kind": "final"},
        )  # fmt: skip
        start = NOW - (NOW - day_start) % QH
        await store.plans.insert("c1", start, plan_doc(), created_by="dispatch", now=NOW)
        await store.alarms.raise_alarm(
            "h01-meter:offline", source="h01-meter", kind="offline", severity="warning",
            message="no reading for 3 cycles", now=NOW,
        )  # fmt: skip
        await store.commands.insert(
            Command("c-1", "h01-battery", {"power_w": 500}, NOW, NOW + timedelta(minutes=10))
        )
        await record_action(
            store, AuditKey.from_text(AUDIT_KEY), Principal("olga", Role.OPERATOR, None),
            "command.override", "h01-battery",
            result="accepted", now=NOW, new_value={"power_w": 500}, command_id="c-1",
        )  # fmt: skip


def _local_midnight(day: date) -> Any:
    from vpp.settlement.balances import local_midnight

    return local_midnight(day, TZ)


def make_target(url: str) -> Target:
    lighting = LightingConfig.model_validate(demo_lighting_data(load_town()))
    asyncio.run(seed(url, lighting))
    runtime = TinyRuntime()
    settings = settings_for(url)
    app = create_app(settings, runtime=runtime)
    state = app.state.waldstadt
    state.hasher = FAST_HASHER
    state.api_limiter = RateLimiter(RateLimit(capacity=1_000_000, refill_per_s=1_000_000))
    # Loading the schema through the ASGI transport starts the app's lifespan (opens the store).
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=MAX_EXAMPLES
    )
    target = Target(app, schema, seeded=seeded_ids(lighting))
    with asgi.get_client(app) as client:  # type: ignore[arg-type]
        for role, (username, _) in USERS.items():
            for tokens in (target.tokens, target.spare_tokens):
                form = {"username": username, "password": PASSWORD}
                r = client.post("/api/v1/auth/token", data=form)
                assert r.status_code == 200, r.text
                tokens[role] = r.json()["access_token"]
    return target


def seeded_ids(lighting: LightingConfig) -> dict[str, str]:
    """Path parameter → an id that exists in the seeded store or the runtime's site."""
    return {
        "member_id": "h01",
        "plan_id": "1",
        "run_id": "1",
        "command_id": "c-1",
        "program_name": lighting.programs[0].name,
        "calendar_name": lighting.calendars[0].name,
        "segment_id": lighting.segments[0].id,
        "luminaire_id": lighting.luminaires[0].id,
    }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    pg_name: str | None = None
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("fuzz") / "waldstadt.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        pg_name = asyncio.run(create_pg_database())
        url = pg_url(pg_name)
    try:
        yield make_target(url)
    finally:
        asgi.shutdown_lifespans()  # closes the app's store
        if pg_name is not None:
            asyncio.run(drop_pg_database(pg_name))


@dataclass(frozen=True)
class Finding:
    """The first failure of one check on one operation, for one caller and kind of data."""

    caller: str
    operation: str
    kind: str
    check: str
    message: str

    def __str__(self) -> str:
        return f"[{self.caller}] {self.operation} ({self.kind} data), {self.check}:\n{self.message}"


def strategies(op: Any, seeded: dict[str, str]) -> list[tuple[str, Any]]:
    """Positive and negative cases of ``op``; positive ones with the path parameters set to
    seeded ids (generated ids almost never name a stored member, plan or luminaire); and,
    for each integer parameter without a maximum, positive ones with it at 2**63 (random
    integers reach that range only by luck)."""
    out = [
        ("positive", op.as_strategy(GenerationMode.POSITIVE)),
        ("negative", op.as_strategy(GenerationMode.NEGATIVE)),
    ]
    names = {p.name for p in op.path_parameters}
    if names and names <= seeded.keys():
        ids = {name: seeded[name] for name in names}
        out.append(("seeded", op.as_strategy(GenerationMode.POSITIVE, path_parameters=ids)))
    # Integers without a maximum reach the database as ids: one past the largest BIGINT.
    for location, params in (("path_parameters", op.path_parameters), ("query", op.query)):
        for p in params:
            spec = p.definition.get("schema", {})
            if spec.get("type") == "integer" and "maximum" not in spec:
                fixed = {location: {p.name: INT64_PAST_MAX}}
                strategy = op.as_strategy(GenerationMode.POSITIVE, **fixed)
                out.append((f"{p.name}={INT64_PAST_MAX}", strategy))
    return out


class Fuzzer:
    """Sends generated cases and runs each check on each response separately, so one failing
    check neither hides another nor stops the examples; keeps the first finding per caller,
    operation, kind of data, check and status code."""

    def __init__(self) -> None:
        self.calls = 0
        self.findings: dict[tuple[str, str, str, str, int], Finding] = {}

    def run(
        self, strategy: Any, caller: str, headers: dict[str, str], label: str, kind: str
    ) -> set[int]:
        """Up to :data:`MAX_EXAMPLES` cases; the status codes seen."""
        statuses: set[int] = set()

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate],
        )
        @given(case=strategy)
        def send(case: schemathesis.Case[Any]) -> None:
            self.calls += 1
            try:
                response = case.call(headers=headers)
            except Exception as exc:
                # An exception escaped the app: Starlette answered 500 and raised it again.
                key = (caller, label, kind, not_a_server_error.__name__, 500)
                if key not in self.findings:
                    message = (
                        f"500: the app raised {type(exc).__name__}: {exc}\n"
                        f"Reproduce with:\n    {case.as_curl_command(headers)}"
                    )
                    self.findings[key] = Finding(
                        caller, label, kind, not_a_server_error.__name__, message
                    )
                return
            statuses.add(response.status_code)
            for check in CHECKS:
                key = (caller, label, kind, check.__name__, response.status_code)
                if key in self.findings:
                    continue
                try:
                    case.validate_response(response, checks=[check], headers=headers)
                except (AssertionError, FailureGroup) as exc:
                    self.findings[key] = Finding(caller, label, kind, check.__name__, str(exc))

        try:
            send()
        except Unsatisfiable:
            if kind != "negative":
                raise
            # nothing to break: the operation takes no parameters and no body (GET /health)
        return statuses


LOGOUT = "POST /api/v1/auth/logout"


def fuzz(target: Target) -> tuple[int, list[Finding]]:
    """Every operation × {anonymous, each role} × {positive, negative, seeded}: the number of
    requests sent and the findings. An operation that refused the caller every positive case
    (401/403; the role × route matrix tests those answers) is not fuzzed further for it."""
    fuzzer = Fuzzer()
    callers: list[tuple[str, dict[str, str], dict[str, str]]] = [("anonymous", {}, {})]
    callers += [
        (r.value, {"Authorization": f"Bearer {t}"},
         {"Authorization": f"Bearer {target.spare_tokens[r]}"})
        for r, t in target.tokens.items()
    ]  # fmt: skip
    for caller, own, spare in callers:
        for result in target.schema.get_all_operations():
            op = result.ok()
            label = f"{op.method.upper()} {op.path}"
            # the logout ends the session it is sent with: a spare one, not the fuzzer's own
            headers = spare if label == LOGOUT else own
            for kind, strategy in strategies(op, target.seeded):
                seen = fuzzer.run(strategy, caller, headers, label, kind)
                if kind == "positive" and seen <= {401, 403}:
                    break
    return fuzzer.calls, list(fuzzer.findings.values())


@pytest.fixture(scope="module")
def fuzzed(fuzz_target: Target) -> tuple[int, list[Finding]]:
    return fuzz(fuzz_target)


def test_no_server_error(fuzzed: tuple[int, list[Finding]]) -> None:
    calls, findings = fuzzed
    assert calls > 0
    errors = [f for f in findings if f.check == not_a_server_error.__name__]
    assert not errors, f"{len(errors)} server error(s):\n\n" + "\n\n".join(map(str, errors))


def test_responses_match_the_schema(fuzzed: tuple[int, list[Finding]]) -> None:
    _, findings = fuzzed
    wrong = [f for f in findings if f.check != not_a_server_error.__name__]
    assert not wrong, f"{len(wrong)} non-conforming response(s):\n\n" + "\n\n".join(map(str, wrong))


def test_the_fuzzed_schema_has_the_routes_of_the_app(fuzz_target: Target) -> None:
    """Nothing the app serves escapes the fuzzing: the schema's operations are the app's."""
    app_ops = {
        (method.upper(), path)
        for path, ops in fuzz_target.app.openapi()["paths"].items()
        for method in ops
    }
    fuzzed = {
        (op.ok().method.upper(), op.ok().path) for op in fuzz_target.schema.get_all_operations()
    }
    assert fuzzed == app_ops
    assert ("GET", "/api/v1/members/{member_id}/balances") in fuzzed
