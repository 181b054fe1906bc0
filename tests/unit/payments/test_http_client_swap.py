"""The `http_client` swap: the SDK's `HTTPXClient` sends through the client given
(its private `_client_async`, as stripe 16.1 names it), and a future SDK without
that attribute fails loudly instead of silently using its own client."""

from __future__ import annotations

from typing import Any, cast

import httpx
import pytest
import stripe

from orderdesk.payments.stripe_gateway import use_http_client


async def test_the_sdks_async_client_is_replaced_by_the_one_given() -> None:
    sdk_http = stripe.HTTPXClient(timeout=1.0)
    own = sdk_http._client_async
    given = httpx.AsyncClient()

    use_http_client(sdk_http, given)

    assert sdk_http._client_async is given
    await own.aclose()
    await given.aclose()


def test_an_sdk_without_the_private_attribute_is_refused() -> None:
    class FutureHTTPXClient:
        pass

    with pytest.raises(RuntimeError, match="_client_async"):
        use_http_client(cast(Any, FutureHTTPXClient()), cast(Any, object()))
