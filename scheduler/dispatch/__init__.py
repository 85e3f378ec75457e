"""The rolling dispatch of each community, as the runtime runs it.

* :mod:`.job` — :class:`DispatchJob`: a plan every quarter-hour (solved off the event loop,
  stored once per community and interval), the cycle's setpoints from it;
* :mod:`.problem` — the round's problem from the site file, a snapshot and stored readings;
* :mod:`.history` — quarter-hour means of stored readings, read incrementally;
* :mod:`.profiles` — the round's BDEW profile windows with the site's holidays;
* :mod:`.alarms` — the fallback and violation alarms of a community.

The logic that needs no I/O lives in the pure core: the LP and its fallbacks, the setpoints as
commands, sessions, tariff prices and the plan's JSON document in :mod:`vpp.dispatch`; the
profiles and the PV ratio in :mod:`vpp.forecast`.
"""

from scheduler.dispatch.job import DispatchJob
from scheduler.dispatch.problem import RoundInputs

__all__ = ["DispatchJob", "RoundInputs"]
