"""Protocol layer: canonical readings, capabilities, transports (Modbus TCP, MQTT), LoRaWAN
decoders and device drivers.

This ``__init__`` imports nothing on purpose: the pure data modules (``model``, ``errors``,
``clock``, ``capabilities``) must stay importable without pulling in pymodbus or aiomqtt.
"""
