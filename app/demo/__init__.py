"""``waldstadt demo``: the simulated town run by the same service a Stadtwerk runs.

What it starts, all on this machine: an MQTT broker (a Mosquitto with the credentials and ACL
``waldstadt broker-config`` writes for the town, unless ``--broker`` names one:
:mod:`app.demo.broker`), the simulated town of ``sims/default_town.yaml`` (or ``--town``) in
a process of its own (:mod:`app.demo.town`) on a simulated clock shared with the controller
(default 144×: one simulated day in ten real minutes), the site document of that town
(:func:`sims.demo_site.demo_site_data`, devices on their loopback ports), then
:class:`app.service.Service` with SQLite and the web app on http://127.0.0.1:8000
(:mod:`app.demo.run`). It creates one demo login per role and prints them, then every few
seconds a compact readout (:mod:`app.demo.readout`): the community now (generation,
consumption, shared, grid), the plan (marked stale when it was made for an earlier
quarter-hour), the settlement of the day so far (marked when behind), and the lights per
street with how many lamps follow their command. When the controller cannot keep up, the
clock slows down by itself and the readout says so (:mod:`app.demo.pace`). Ctrl-C stops
everything.
"""

from app.demo.pace import Pace
from app.demo.readout import (
    CommunityNow,
    DemoStatus,
    PlanNow,
    SettlementNow,
    StreetNow,
    collect,
    community_now,
    render,
)
from app.demo.run import REFRESH_S, Demo, demo_service, demo_start, run_demo
from app.demo.town import TownInfo, TownProcess

__all__ = [
    "REFRESH_S",
    "CommunityNow",
    "Demo",
    "DemoStatus",
    "Pace",
    "PlanNow",
    "SettlementNow",
    "StreetNow",
    "TownInfo",
    "TownProcess",
    "collect",
    "community_now",
    "demo_service",
    "demo_start",
    "render",
    "run_demo",
]
