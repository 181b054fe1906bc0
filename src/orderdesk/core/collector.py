"""Holding off the cyclic garbage collector while a bulk operation runs.

A full collection scans every live container object with the GIL held. A 20 MB
import keeps about 250,000 validated rows (over a million such objects) alive, and
as that heap grows CPython runs full collections over it again and again: 0.2-0.9 s
each (measured), during which the event loop cannot answer anything. Those rows are
freed by reference counting, never by the collector, so there is nothing for it to
find: it is switched off until the last bulk operation ends, after its objects are
gone. Cycles other requests make meanwhile wait for the collection that follows.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0


@contextmanager
def collection_paused() -> Iterator[None]:
    """Automatic collection off while any caller is inside; nests and overlaps."""
    global _holders
    with _lock:
        _holders += 1
        if _holders == 1:
            gc.disable()
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                gc.enable()


def freeze_startup_objects() -> None:
    """Move everything alive now (modules, routes, schemas: ~150,000 objects) out of
    the collector's reach. Each full collection scanned them all, ~150 ms with the
    GIL held (measured), stalling the loop at random under load; they live as long
    as the process anyway."""
    gc.collect()
    gc.freeze()
