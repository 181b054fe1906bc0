import httpx

from tests.factories import bearer, signed_up


async def test_a_customer_can_register_sign_in_and_read_their_profile(
    client: httpx.AsyncClient,
) -> None:
    user, tokens = await signed_up(client)

    response = await client.get("/api/v1/users/me", headers=bearer(tokens))

    assert response.status_code == 200
    assert response.json()["id"] == user["id"]
    assert response.json()["role"] == "customer"
