"""The power-sharing dispatch: the community linear program, renewed every quarter-hour.

Values in, plan out: build a :class:`DispatchProblem` (members, assets, forecasts, prices,
feeder limits, measured states of charge), call :func:`solve` (or :func:`rolling_round`, which
keeps the model between rounds), and command :func:`setpoints` of the quarter-hour, as the
kernel's one :class:`~kernel.commands.Command` type. The runtime calls ``solve`` in a worker thread
(``asyncio.to_thread``); the time limit is the solver's own. Street lighting joins as a
:class:`Member` with only a ``load_w`` series.
"""

from vpp.dispatch.commands import command_id, setpoints
from vpp.dispatch.community import (
    P14A_MIN_POWER_W,
    QH_H,
    Asset,
    Battery,
    DispatchProblem,
    EvCharger,
    Member,
    Prices,
    Pv,
    StorageHeater,
    Weights,
    p14a_min_power_w,
)
from vpp.dispatch.decompose import DecompositionOptions
from vpp.dispatch.errors import InvalidAssetConfig, InvalidDispatchInput, InvalidForecast
from vpp.dispatch.highs import Algorithm, HighsOptions
from vpp.dispatch.plan import (
    Alarm,
    AssetKind,
    AssetSchedule,
    MemberFlows,
    Plan,
    PlanStatus,
    Timings,
    Violation,
)
from vpp.dispatch.rolling import ModelCache, rolling_round
from vpp.dispatch.solve import Engine, SolveOptions, solve
from vpp.dispatch.validate import validate_problem

__all__ = [
    "P14A_MIN_POWER_W",
    "QH_H",
    "Alarm",
    "Algorithm",
    "Asset",
    "AssetKind",
    "AssetSchedule",
    "Battery",
    "DecompositionOptions",
    "DispatchProblem",
    "Engine",
    "EvCharger",
    "HighsOptions",
    "InvalidAssetConfig",
    "InvalidDispatchInput",
    "InvalidForecast",
    "Member",
    "MemberFlows",
    "ModelCache",
    "Plan",
    "PlanStatus",
    "Prices",
    "Pv",
    "SolveOptions",
    "StorageHeater",
    "Timings",
    "Violation",
    "Weights",
    "command_id",
    "p14a_min_power_w",
    "rolling_round",
    "setpoints",
    "solve",
    "validate_problem",
]
