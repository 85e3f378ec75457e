"""The runtime's clock: re-exported from :mod:`protocols.clock`, where the simulators share it."""

from protocols.clock import Clock, ManualClock, RealClock, SimClock

__all__ = ["Clock", "ManualClock", "RealClock", "SimClock"]
