"""SunSpec over Modbus TCP: model chain discovery, decoding from the pysunspec2 definitions,
canonical readings, power-limit writes and the keeper that refreshes them in time.

Start with :func:`protocols.sunspec.device.open_sunspec`.
"""
