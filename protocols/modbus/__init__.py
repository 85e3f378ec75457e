"""Modbus TCP: the transport, register templates and the generic template driver.

* ``connection`` -- one shared, lock-protected connection per gateway (``host:port``),
  per-request timeouts, capped jittered reconnect backoff, pymodbus errors translated;
* ``availability`` -- a device's up/down state, logged once each way, with its own backoff;
* ``blocks`` -- block reads of at most 125 registers, nearby registers merged;
* ``codec`` -- 16-bit registers ⇄ numbers (word order, SunSpec "not implemented" values);
* ``template`` / ``driver`` -- YAML register maps (``protocols/templates/``) and the one
  driver that reads any of them.
"""
