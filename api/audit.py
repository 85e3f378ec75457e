"""Writing audit records: one call per control action or configuration change.

::

    await record_action(store, state.audit_key, caller, "command.override", f"asset:{target}",
                        result="accepted", old_value=old, new_value=new,
                        command_id=cmd.command_id, now=clock.now())

The record carries the UTC time, the actor and role, the action, the target, the old and the
new value, the result and the command id; :class:`store.audit.AuditRepository` chains it
under the audit key (:func:`api.state.audit_key_of`).
Other parts of the service (lighting edits, the CLI) call :func:`record` with an actor that is
not a web account. Values must be JSON (str, int, float, bool, None, lists, dicts): they are
hashed as written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from api.auth import Principal
from store import Store
from store.audit import AuditEntry, AuditKey, AuditRecord


async def record(
    store: Store,
    key: AuditKey,
    *,
    actor: str,
    role: str,
    action: str,
    target: str,
    result: str,
    now: datetime,
    old_value: Any = None,
    new_value: Any = None,
    command_id: str | None = None,
) -> AuditRecord:
    """Append one audit record (any actor: a web account, the CLI, the service itself)."""
    entry = AuditEntry(
        ts=now,
        actor=actor,
        role=role,
        action=action,
        target=target,
        result=result,
        old_value=old_value,
        new_value=new_value,
        command_id=command_id,
    )
    return await store.audit.append(entry, key)


async def record_action(
    store: Store,
    key: AuditKey,
    caller: Principal,
    action: str,
    target: str,
    *,
    result: str,
    now: datetime,
    old_value: Any = None,
    new_value: Any = None,
    command_id: str | None = None,
) -> AuditRecord:
    """Append one audit record for an action of a web account."""
    return await record(
        store,
        key,
        actor=caller.username,
        role=caller.role.value,
        action=action,
        target=target,
        result=result,
        now=now,
        old_value=old_value,
        new_value=new_value,
        command_id=command_id,
    )


__all__ = ["record", "record_action"]
