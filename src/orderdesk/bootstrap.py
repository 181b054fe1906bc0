"""The composition root: what a process is made of, wired in one place.

`build_container` chooses the adapters from settings; this is the one place where
tiers differ: which database, whether throttling state (sign-in failures, sign-ups,
resets, verification re-sends) is shared through Redis, which mailer. Importing
this module also imports every table model, so the metadata is complete for Alembic
and tests.
"""

from __future__ import annotations

from redis.asyncio import Redis
from sqlmodel import SQLModel

from orderdesk.auth import models as auth_models
from orderdesk.auth.passwords import PasswordHasher
from orderdesk.auth.throttle import (
    ActionLimits,
    MemoryFailureCounter,
    RedisFailureCounter,
    SigninThrottle,
)
from orderdesk.auth.tokens import TokenCodec
from orderdesk.catalog import models as catalog_models
from orderdesk.container import Container, outbound_http_client
from orderdesk.core import audit
from orderdesk.core.clock import SystemClock
from orderdesk.core.database import Database
from orderdesk.core.settings import Settings
from orderdesk.idempotency import models as idempotency_models
from orderdesk.notifications.mailer import mailer_from_url
from orderdesk.orders import models as order_models
from orderdesk.outbox import models as outbox_models
from orderdesk.users import models as user_models
from orderdesk.webhooks import models as webhook_models

metadata = SQLModel.metadata
TABLE_MODULES = (
    audit,
    auth_models,
    catalog_models,
    idempotency_models,
    order_models,
    outbox_models,
    user_models,
    webhook_models,
)


def build_container(settings: Settings) -> Container:
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    counter = RedisFailureCounter(redis) if redis else MemoryFailureCounter()
    return Container(
        settings=settings,
        database=Database.from_settings(settings),
        clock=SystemClock(),
        hasher=PasswordHasher.from_settings(settings),
        tokens=TokenCodec(settings),
        throttle=SigninThrottle.from_settings(settings, counter),
        limits=ActionLimits.from_settings(settings, counter),
        mailer=mailer_from_url(settings.smtp_url),
        redis=redis,
        http=outbound_http_client(),
    )
