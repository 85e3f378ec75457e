"""The lighting runtime: the pure ``lighting/`` core connected to streetlight nodes and
sensors over MQTT (see :mod:`scheduler.lighting.service`)."""

from scheduler.lighting.alarms import AlarmBook, AlarmChange, AlarmHook, Change
from scheduler.lighting.config import LightingServiceConfig, ServiceStats, next_local
from scheduler.lighting.nodes import light_schedule
from scheduler.lighting.service import LightingService

__all__ = [
    "AlarmBook",
    "AlarmChange",
    "AlarmHook",
    "Change",
    "LightingService",
    "LightingServiceConfig",
    "ServiceStats",
    "light_schedule",
    "next_local",
]
