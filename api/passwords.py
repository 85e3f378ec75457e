"""Which passwords an account may have, and hashing them off the event loop.

**Policy** (:func:`check_password`): at least :data:`MIN_PASSWORD_LENGTH` characters, not one
of the 30,000 most common passwords (:mod:`api.data`), not such a password with digits or
symbols appended (``password1234``), not the username, not one or two characters repeated. Twelve
characters, not eight: OWASP ASVS 4.0.3 V2.1.1 asks for at least 12; with the common list and
argon2's cost an online guess is throttled and an offline one slow, and 12 is still a length
people type for a service they use daily. (NIST SP 800-63B-4 asks 15 where a password is
the only factor; raise the constant when the accounts are exposed beyond the utility.)
No composition rules (NIST and ASVS both advise against them).

**Hashing** (:class:`HashPool`): argon2id takes ~0.15–0.3 s of CPU per hash or check. Each
runs in a worker thread of the pool's own (argon2-cffi releases the GIL), at most
``concurrency`` at once, so a login storm queues instead of stalling the event loop that also
runs the controller's cycle; beyond ``max_waiting`` queued calls, or after ``max_wait_s``, the
pool refuses with :class:`PoolBusy` (the API answers 429 with Retry-After). On Linux the
workers run at the lowest CPU priority (nice 19, per thread): when the cores are busy, the
event loop and the devices' I/O come first and a login waits a little longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from importlib import resources
from typing import ParamSpec, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from kernel.errors import ConfigError, TransientError

#: Fewest characters of a password (OWASP ASVS 4.0.3 V2.1.1; see the module docstring).
MIN_PASSWORD_LENGTH = 12
#: Most characters hashed (argon2 takes any length; a megabyte "password" is a DoS).
MAX_PASSWORD_LENGTH = 1000
_TRAILING = "0123456789!?.,;:-_+*#@$%&/=()[]{}<>~^ "
P = ParamSpec("P")
T = TypeVar("T")


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list, lower case (read once)."""
    text = resources.files("api.data").joinpath("common_passwords.csv").read_text("utf-8")
    rows = csv.reader(text.splitlines())
    next(rows)  # the header
    return frozenset(row[0].lower() for row in rows if row)


def check_password(password: str, username: str = "") -> None:
    """Refuse a password the policy does not allow: :class:`ConfigError` on ``password``."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ConfigError("password", f"must be at most {MAX_PASSWORD_LENGTH} characters")
    lowered = password.lower()
    common = common_passwords()
    stem = lowered.rstrip(_TRAILING)
    if lowered in common or (len(stem) >= 4 and stem in common) or lowered == username.lower():
        raise ConfigError("password", "is one of the most common passwords; choose another")
    if len(set(password)) <= 2:
        raise ConfigError("password", "must not repeat one or two characters")


class PoolBusy(TransientError):
    """Too many password checks are waiting; try again after ``retry_after_s``."""

    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"password hashing is busy; retry after {retry_after_s} s")


def _lowest_priority() -> None:
    """Make the calling worker thread the last to get a core (Linux: nice is per thread)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def default_concurrency() -> int:
    """One core's worth less than the machine: the event loop keeps a core of its own."""
    return max(1, (os.cpu_count() or 2) - 1)


class HashPool:
    """argon2 hashing and checking in worker threads, ``concurrency`` at a time."""

    def __init__(
        self,
        hasher: PasswordHasher,
        concurrency: int | None = None,
        max_waiting: int = 32,
        max_wait_s: float = 10.0,
    ) -> None:
        self.hasher = hasher
        self.concurrency = concurrency or default_concurrency()
        self.max_waiting = max_waiting
        self.max_wait_s = max_wait_s
        self._slots = asyncio.Semaphore(self.concurrency)
        self._waiting = 0
        self._executor: ThreadPoolExecutor | None = None
        self.refused = 0

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``password_hash`` (a malformed hash: False)."""
        return await self._run(self._check, password_hash, password)

    async def hash(self, password: str) -> str:
        return await self._run(self.hasher.hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.check_needs_rehash(password_hash)

    def _check(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._waiting >= self.max_waiting:
            self.refused += 1
            raise PoolBusy(max(1, round(self.max_wait_s / 2)))
        self._waiting += 1
        try:
            async with asyncio.timeout(self.max_wait_s):
                await self._slots.acquire()
        except TimeoutError as exc:
            self.refused += 1
            raise PoolBusy(max(1, round(self.max_wait_s))) from exc
        finally:
            self._waiting -= 1
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                self.concurrency, thread_name_prefix="argon2", initializer=_lowest_priority
            )
        loop = asyncio.get_running_loop()
        # the slot is free when the thread is done, even if the caller went away before
        work = loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))
        work.add_done_callback(lambda _: self._slots.release())
        return await asyncio.shield(work)


__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "HashPool",
    "PoolBusy",
    "check_password",
    "common_passwords",
    "default_concurrency",
]
