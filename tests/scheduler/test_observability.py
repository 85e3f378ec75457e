from __future__ import annotations

import json
import logging

from scheduler.observability import JsonFormatter, Metrics


def test_metrics_render_in_prometheus_text_format() -> None:
    m = Metrics()
    m.cycle_seconds.observe(0.12)
    m.device_available.labels(device="inv-1").set(0)
    m.messages_rejected.labels(source="mqtt", reason="invalid json").inc(3)
    m.set_plan_status("optimal", ["optimal", "fallback_safe_default"])
    text = m.render().decode()
    assert 'waldstadt_device_available{device="inv-1"} 0.0' in text
    assert 'waldstadt_messages_rejected_total{reason="invalid json",source="mqtt"} 3.0' in text
    assert 'waldstadt_plan_status{status="optimal"} 1.0' in text
    assert 'waldstadt_plan_status{status="fallback_safe_default"} 0.0' in text
    assert "waldstadt_cycle_seconds_count 1.0" in text
    # a second Metrics object has its own registry
    assert "inv-1" not in Metrics().render().decode()


def test_json_log_lines_carry_extra_fields() -> None:
    record = logging.LogRecord(
        "scheduler.cycle", logging.WARNING, __file__, 1, "device %s unavailable", ("inv-7",), None
    )
    record.device = "inv-7"
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "device inv-7 unavailable"
    assert line["level"] == "WARNING"
    assert line["device"] == "inv-7"
    assert line["ts"].endswith("+00:00")
