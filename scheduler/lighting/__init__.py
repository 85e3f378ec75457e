"""The street lighting in the one cycle: the pure ``lighting/`` core connected to nodes and
sensors over MQTT (see :mod:`scheduler.lighting.runtime`)."""

from scheduler.lighting.alarms import AlarmBook, AlarmChange, AlarmHook, Change
from scheduler.lighting.config import LightingServiceConfig, ServiceStats, next_local
from scheduler.lighting.nodes import light_schedule
from scheduler.lighting.runtime import LightingRuntime

__all__ = [
    "AlarmBook",
    "AlarmChange",
    "AlarmHook",
    "Change",
    "LightingRuntime",
    "LightingServiceConfig",
    "ServiceStats",
    "light_schedule",
    "next_local",
]
