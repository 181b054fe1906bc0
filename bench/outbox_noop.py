"""The baseline for bench/outbox.py: Celery executing a no-op task sent straight from
the producer, with the delivery settings of orderdesk's `make_celery` (acks late,
reject on worker loss, prefetch 1, JSON, no results, the same visibility timeout
and publish confirms).

The task records when it ran: it appends "<sent at> <done at>" (Unix seconds) to a
Redis list, one round trip, which stands for orderdesk's "mark the event done".

    BENCH_BROKER_URL=redis://127.0.0.1:6379/7 celery -A outbox_noop worker  # cwd bench/
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/7")
RECORD_URL = os.environ.get("BENCH_RECORD_URL", BROKER_URL)
RECORD_KEY = "bench:outbox:noop"
NOOP = "bench.noop"
# make_celery: max(3600, 4 x ORDERDESK_EVENT_BACKOFF_MAX_SECONDS), 600 by default.
VISIBILITY_TIMEOUT = 3600

_records: redis.Redis | None = None


def noop(sent_at: float) -> None:
    global _records
    if _records is None:
        _records = redis.Redis.from_url(RECORD_URL)
    _records.rpush(RECORD_KEY, f"{sent_at!r} {time.time()!r}")


def make_app(broker_url: str) -> Celery:
    app = Celery("bench_outbox_noop", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": VISIBILITY_TIMEOUT,
            "confirm_publish": True,
        },
    )
    app.task(name=NOOP)(noop)
    return app


app = make_app(BROKER_URL)
