"""Fixtures the catalog, order and idempotency tests share: a staff member and a
customer, signed in over the API, and clients from chosen addresses."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from orderdesk.container import Container
from tests.factories import Headers, customer, staff_headers
from tests.helpers import AddressedClients


@pytest.fixture
async def staff(client: httpx.AsyncClient, container: Container) -> Headers:
    return await staff_headers(client, container)


@pytest.fixture
async def shopper(client: httpx.AsyncClient) -> Headers:
    _, headers = await customer(client)
    return headers


@pytest.fixture
async def clients() -> AsyncIterator[AddressedClients]:
    opened = AddressedClients()
    yield opened
    await opened.aclose()
