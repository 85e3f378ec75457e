"""Load YAML into pydantic models with errors that name the key, the reason, the file and the line.

Used by register templates and the site file. Unknown keys are errors because every model used
here sets ``extra="forbid"``; this module only makes the message point at the right line::

    ConfigError: devices.0.drivr: unknown key (site.yaml, line 12)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from kernel.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

Path_ = tuple[str | int, ...]


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines)


def parse_yaml(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML text; return the data and a map from key path to 1-based line number."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}, line {mark.line + 1}" if mark is not None else source
        raise ConfigError(
            "<file>", f"not valid YAML: {getattr(exc, 'problem', exc)}", where
        ) from exc
    lines: dict[Path_, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def _line_for(loc: Path_, lines: dict[Path_, int]) -> int | None:
    probe = tuple(loc)
    while probe:
        if probe in lines:
            return lines[probe]
        probe = probe[:-1]
    return lines.get(())


def _describe(err: ErrorDetails) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    return str(err["msg"])


def validate_data(
    model: type[M], data: Any, source: str, lines: dict[Path_, int] | None = None
) -> M:
    """Validate ``data`` against ``model``; the first error becomes a :class:`ConfigError`.

    All errors are listed in the message so that a file can be fixed in one go.
    """
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        errors = exc.errors()
        parts = []
        for err in errors:
            loc: Path_ = tuple(err["loc"])
            # pydantic puts the discriminator tag or function name into loc; keep the data path
            field = ".".join(str(p) for p in loc) or "<root>"
            line = _line_for(loc, lines or {})
            parts.append((field, _describe(err), f"{source}, line {line}" if line else source))
        field, reason, where = parts[0]
        if len(parts) > 1:
            more = "; ".join(f"{f}: {r} ({w})" for f, r, w in parts[1:6])
            reason = f"{reason} — also: {more}" + (" …" if len(parts) > 6 else "")
        raise ConfigError(field, reason, where) from exc


def load_yaml_text(model: type[M], text: str, source: str = "<string>") -> M:
    data, lines = parse_yaml(text, source)
    return validate_data(model, data, source, lines)


def load_yaml_file(model: type[M], path: Path | str) -> M:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("<file>", f"cannot read {p}: {exc.strerror}", str(p)) from exc
    return load_yaml_text(model, text, p.name)
