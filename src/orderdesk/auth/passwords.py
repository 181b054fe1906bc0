"""Password hashing and strength.

Hashing is argon2id with at least OWASP's parameters and always runs in a worker
thread: at ~20-50 ms of CPU per hash it would otherwise stall every other request on
the event loop. The threads are a pool of their own, one per CPU by default: a burst
of sign-ins queues there instead of putting forty hashes on two cores at once, which
starved the event loop's thread of CPU (p99 of `/health/live` over 3 s) for no gain
in throughput.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import anyio.to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from orderdesk.core.settings import Settings

T = TypeVar("T")


def usable_cpus() -> int:
    """The CPUs this process may run on (a container's share, where the OS says so),
    not the host's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class PasswordHasher:
    def __init__(
        self, *, memory_kib: int, time_cost: int, parallelism: int, concurrency: int | None = None
    ) -> None:
        # An executor, not an anyio limiter: it serves every event loop (tests run
        # many), and waiting hashes hold no thread of the loop's default pool.
        self._pool = ThreadPoolExecutor(
            max_workers=concurrency or usable_cpus(), thread_name_prefix="password-hash"
        )
        self._hash = PasswordHash(
            (Argon2Hasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=parallelism),)
        )
        # Verified against when the account does not exist, so an unknown email costs
        # the same time as a wrong password and answers the same.
        self._dummy_hash = self._hash.hash(secrets.token_urlsafe(16))

    @classmethod
    def from_settings(cls, settings: Settings) -> PasswordHasher:
        return cls(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
            concurrency=settings.password_hash_concurrency,
        )

    async def hash(self, password: str) -> str:
        return await self._in_pool(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        """Check a password; the second value is a new hash when the stored one uses
        outdated parameters and should be replaced."""
        target = password_hash or self._dummy_hash
        valid, new_hash = await self._in_pool(self._hash.verify_and_update, password, target)
        if password_hash is None:
            return False, None
        return valid, new_hash

    async def _in_pool(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)


MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
# zxcvbn refuses input over 72 characters (its cost grows with length); a prefix
# this long already decides the score. Hashing always uses the whole password.
_STRENGTH_PREFIX = 72


def _personal_words(user_inputs: list[str]) -> list[str]:
    """zxcvbn matches whole inputs only; split an email and a name into the pieces a
    person would build a password from (local part, its words, the domain's first
    label, each name word and the name run together)."""
    words: set[str] = set()
    for text in user_inputs:
        lowered = text.lower().strip()
        local, _, domain = lowered.partition("@")
        words.update({lowered, local, domain.split(".")[0], "".join(lowered.split())})
        words.update(re.split(r"[\s._+\-@]+", lowered))
    return sorted(word for word in words if len(word) >= 3)


def _weakness(password: str, user_inputs: list[str], min_score: int) -> str | None:
    from zxcvbn import zxcvbn

    result = zxcvbn(password[:_STRENGTH_PREFIX], user_inputs=_personal_words(user_inputs))
    if int(result["score"]) >= min_score:
        return None
    feedback = result.get("feedback") or {}
    hint = feedback.get("warning") or " ".join(feedback.get("suggestions") or [])
    return ("This password is too easy to guess. " + hint).strip()


async def password_weakness(password: str, *, user_inputs: list[str], min_score: int) -> str | None:
    """Why a password is refused (too common, too guessable, built from the user's own
    name or email), or None when it is acceptable."""
    return await anyio.to_thread.run_sync(_weakness, password, user_inputs, min_score)
