from __future__ import annotations

import dataclasses

import httpx
import pytest

from orderdesk.container import Container
from tests.fakes import RecordingMailer
from tests.integration.notifications.shop import Customer, Shop, new_customer, open_shop


@pytest.fixture
def container(container: Container, mailer: RecordingMailer) -> Container:
    """The test container, sending mail to the recording mailer (`mailer`)."""
    return dataclasses.replace(container, mailer=mailer)


@pytest.fixture
async def shop(client: httpx.AsyncClient, container: Container) -> Shop:
    return await open_shop(client, container)


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> Customer:
    return await new_customer(client)
