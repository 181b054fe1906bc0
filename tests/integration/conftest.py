"""Fixtures the catalog, order and idempotency tests share: a staff member and a
customer, signed in over the API."""

from __future__ import annotations

import httpx
import pytest

from orderdesk.core.container import Container
from tests.integration.catalog_fixtures import Headers, customer, staff_headers


@pytest.fixture
async def staff(client: httpx.AsyncClient, container: Container) -> Headers:
    return await staff_headers(client, container)


@pytest.fixture
async def shopper(client: httpx.AsyncClient) -> Headers:
    _, headers = await customer(client)
    return headers
