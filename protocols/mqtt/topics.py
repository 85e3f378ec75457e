"""MQTT topic filters: validation and matching, without a broker.

The bus routes every message to the handlers whose filter matches its topic. Matching is done
here (not with ``aiomqtt.Topic``) because it sits on the hot path of ingestion: a filter is
split once, and the answer per concrete topic is cached (devices reuse their topics).
"""

from __future__ import annotations

from collections.abc import Sequence

from kernel.errors import ConfigError


def validate_filter(topic_filter: str) -> tuple[str, ...]:
    """Split a subscription filter into levels, refusing what MQTT refuses.

    ``+`` must fill a whole level; ``#`` must fill the last level. A shared subscription
    (``$share/{group}/{filter}``) is accepted and its group prefix is stripped for matching.
    """
    if not topic_filter:
        raise ConfigError("topic_filter", "empty topic filter")
    levels = topic_filter.split("/")
    if levels[0] == "$share":
        if len(levels) < 3 or not levels[1]:
            raise ConfigError("topic_filter", f"bad shared subscription {topic_filter!r}")
        levels = levels[2:]
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ConfigError("topic_filter", f"'#' must be the whole last level: {topic_filter!r}")
        if "+" in level and level != "+":
            raise ConfigError("topic_filter", f"'+' must be a whole level: {topic_filter!r}")
    return tuple(levels)


def filter_matches(levels: Sequence[str], topic: str) -> bool:
    """Whether a topic (no wildcards) matches a filter split by :func:`validate_filter`.

    Topics starting with ``$`` (broker internals) never match a leading wildcard.
    """
    parts = topic.split("/")
    if parts[0].startswith("$") and levels and levels[0] in ("+", "#"):
        return False
    for i, level in enumerate(levels):
        if level == "#":
            return True
        if i >= len(parts):
            return False
        if level != "+" and level != parts[i]:
            return False
    return len(parts) == len(levels)


def topic_levels(topic: str, prefix: str) -> list[str] | None:
    """Levels of ``topic`` below ``prefix`` (``None`` if the topic is not under it)."""
    if not topic.startswith(prefix + "/"):
        return None
    return topic[len(prefix) + 1 :].split("/")
