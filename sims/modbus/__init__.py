"""Simulated Modbus devices on real pymodbus servers (127.0.0.1, free ports), driven by one
injected clock: SunSpec PV inverter, SDM630 and SunSpec 203 meters, battery inverter, wallbox
and storage heater (:mod:`sims.modbus.loads`), and any register template. Start a set of them
with :class:`sims.modbus.fleet.ModbusFleet`.
"""
