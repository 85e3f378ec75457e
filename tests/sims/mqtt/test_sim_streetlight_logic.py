"""The simulated node's behaviour with plain instants (no broker): ramps, idempotence,
expiry, autonomous schedule and fallback, energy, faults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.streetlight import LightCommand, LightSchedule, ScheduleStep
from sims.streetlight import LuminaireSpec, NodeLogic

T0 = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
SPEC = LuminaireSpec(rated_power_w=40.0, standby_power_w=0.5, min_power_share=0.1)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def cmd(cid: str, level: float, ramp_s: float = 0.0, expires_s: float = 3600.0) -> LightCommand:
    return LightCommand(command_id=cid, level_pct=level, ramp_s=ramp_s, expires_at=at(expires_s))


def controlled_node(level: float = 0.0) -> NodeLogic:
    node = NodeLogic("n1", T0, SPEC, controller_timeout_s=900.0, fallback_level_pct=100.0)
    assert node.apply_command(cmd("boot", level), T0) == "applied"
    return node


@pytest.mark.parametrize(
    ("t_s", "level"),
    [(0, 0.0), (2.5, 25.0), (5, 50.0), (10, 100.0), (60, 100.0)],
)
def test_a_ramp_is_linear(t_s: float, level: float) -> None:
    node = controlled_node(0.0)
    node.apply_command(cmd("up", 100.0, ramp_s=10.0), T0)
    assert node.level_at(at(t_s)) == pytest.approx(level)


def test_a_new_command_interrupts_a_running_ramp_from_where_it_is() -> None:
    node = controlled_node(0.0)
    node.apply_command(cmd("up", 100.0, ramp_s=10.0), T0)
    node.apply_command(cmd("down", 0.0, ramp_s=5.0), at(5))  # at 50 %
    assert node.level_at(at(5)) == pytest.approx(50.0)
    assert node.level_at(at(7.5)) == pytest.approx(25.0)
    assert node.level_at(at(10)) == pytest.approx(0.0)


def test_a_command_id_is_applied_once() -> None:
    node = controlled_node(0.0)
    assert node.apply_command(cmd("c-1", 60.0), at(1)) == "applied"
    assert node.apply_command(cmd("c-1", 10.0), at(2)) == "duplicate"
    assert node.level_at(at(3)) == 60.0
    assert node.last_command_id == "c-1"


def test_an_expired_command_is_ignored() -> None:
    node = controlled_node(30.0)
    assert node.apply_command(cmd("late", 90.0, expires_s=10.0), at(10)) == "expired"
    assert node.apply_command(cmd("later", 90.0, expires_s=5.0), at(10)) == "expired"
    assert node.level_at(at(11)) == 30.0
    assert node.last_command_id == "boot"


def schedule(**kw: object) -> LightSchedule:
    base: dict[str, object] = {
        "issued_at": T0,
        "steps": [
            ScheduleStep(at=at(1000), level_pct=80.0, ramp_s=0.0),
            ScheduleStep(at=at(3000), level_pct=30.0, ramp_s=100.0),
        ],
        "fallback_level_pct": 70.0,
        "controller_timeout_s": 600.0,
        "valid_until": at(10_000),
    }
    base.update(kw)
    return LightSchedule.model_validate(base)


def test_node_runs_its_schedule_when_the_controller_is_silent_and_returns_to_commands() -> None:
    node = controlled_node(20.0)
    node.set_schedule(schedule(), T0)
    node.advance(at(500))  # silent 500 s < 600 s timeout
    assert node.mode == "controller"
    assert node.level_at(at(500)) == 20.0
    node.advance(at(600))  # timeout reached, no step yet → fallback
    assert node.mode == "fallback"
    assert node.level_at(at(600)) == 70.0
    node.advance(at(1000))  # the first step starts
    assert (node.mode, node.level_at(at(1000))) == ("schedule", 80.0)
    node.advance(at(3000))  # second step ramps over 100 s
    assert node.level_at(at(3050)) == pytest.approx(55.0)
    assert node.level_at(at(3100)) == pytest.approx(30.0)
    node.advance(at(10_000))  # schedule ran out → fallback
    assert (node.mode, node.level_at(at(10_000))) == ("fallback", 70.0)
    assert node.apply_command(cmd("back", 10.0, expires_s=20_000), at(10_001)) == "applied"
    assert (node.mode, node.level_at(at(10_001))) == ("controller", 10.0)
    node.advance(at(10_500))
    assert node.mode == "controller"


def test_a_booting_node_without_schedule_uses_its_fallback() -> None:
    node = NodeLogic("n", T0, SPEC, fallback_level_pct=100.0)
    assert (node.mode, node.level_at(T0)) == ("fallback", 100.0)
    node.set_schedule(schedule(), at(1500))  # retained schedule arrives after boot
    assert (node.mode, node.level_at(at(1500))) == ("schedule", 80.0)
    node.set_schedule(None, at(1600))
    assert (node.mode, node.level_at(at(1600))) == ("fallback", 100.0)


def test_schedule_steps_must_be_in_order() -> None:
    with pytest.raises(ValueError, match=r"steps\[1\]"):
        schedule(steps=[ScheduleStep(at=at(5), level_pct=1), ScheduleStep(at=at(5), level_pct=2)])


@pytest.mark.parametrize(
    ("level", "power_w"),
    [(0.0, 0.5), (100.0, 40.5), (50.0, 0.5 + 40 * 0.55), (1.0, 0.5 + 40 * (0.1 + 0.009))],
)
def test_power_follows_the_driver_curve(level: float, power_w: float) -> None:
    assert SPEC.power_w(level) == pytest.approx(power_w)


def test_energy_of_an_hour_at_full_and_of_a_ramp() -> None:
    node = controlled_node(100.0)
    node.advance(at(3600))
    assert node.energy_wh == pytest.approx(40.5)
    node.apply_command(cmd("dim", 0.0, ramp_s=3600.0, expires_s=99_999), at(3600))
    node.advance(at(7200))
    # ramp 100 → 0: mean of standby + 40 · (0.1 + 0.9 · L/100) over L uniform in (0, 100]
    assert node.energy_wh - 40.5 == pytest.approx(0.5 + 40 * (0.1 + 0.45), rel=1e-3)


def test_faults_lamp_failure_and_stuck_on() -> None:
    node = controlled_node(80.0)
    node.faults.lamp_failure = True
    state = node.state(at(10))
    assert (state.power_w, state.status, state.failures) == (0.0, "fault", ["lamp_failure"])
    node.faults.lamp_failure = False
    node.faults.stuck_on = True
    node.apply_command(cmd("off", 0.0), at(20))
    state = node.state(at(30))
    assert state.level_pct == 0.0
    assert state.power_w == pytest.approx(40.5)  # burning by day, and it cannot tell
    assert state.failures == []


commands = st.lists(
    st.tuples(
        st.floats(0, 600),  # gap before the command in s
        st.floats(0, 100),  # level
        st.floats(0, 120),  # ramp
        st.sampled_from(["a", "b", "c", "d"]),  # ids repeat on purpose
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(commands)
def test_level_stays_in_range_and_energy_never_decreases(
    cmds: list[tuple[float, float, float, str]],
) -> None:
    node = NodeLogic("p", T0, SPEC, controller_timeout_s=300.0)
    node.set_schedule(schedule(controller_timeout_s=300.0), T0)
    t = 0.0
    last_energy = 0.0
    for gap, level, ramp, cid in cmds:
        for probe in (t + gap / 3, t + gap):
            state = node.state(at(probe))
            assert 0.0 <= state.level_pct <= 100.0
            assert state.energy_wh >= last_energy
            last_energy = state.energy_wh
        t += gap
        node.apply_command(cmd(f"{cid}{int(level)}", level, ramp, expires_s=t + 60), at(t))
