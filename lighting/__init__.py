"""Street lighting core (pure): sun anchors, programs and calendars, lighting classes,
traffic adaptation, presence corridors, overrides, energy and savings. No I/O, no clock."""
