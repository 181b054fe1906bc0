"""Two customers signed in over the API, for the order tests."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import Headers, customer


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> tuple[dict[str, Any], Headers]:
    return await customer(client)


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> tuple[dict[str, Any], Headers]:
    return await customer(client)
