"""The baseline: the authenticated order read with no framework at all.

A plain ASGI callable on an asyncpg pool, served by uvicorn with the settings
`orderdesk serve` uses (uvloop, httptools, no access log, no server header). Per
request it does the work orderdesk does for `GET /api/v1/orders/{id}`:

1. verify the bearer JWT with PyJWT: same key, algorithm, issuer, audience, leeway
   and required claims as `orderdesk.core.security.TokenCodec`;
2. load the user row by id (all columns) and check it is live and that the token
   version matches;
3. load the order row by id (all columns) and check the caller owns it;
4. load its lines (all columns, ordered by position);
5. serialise the same JSON shape as `OrderPublic` (orjson).

Routes (GET only; anything else is a 404):

- `/api/v1/orders/{id}` — steps 1-5, the three SELECTs in autocommit (no
  transaction), which is all the read needs;
- `/tx/api/v1/orders/{id}` — the same inside BEGIN ... COMMIT, the statement
  sequence orderdesk's unit of work sends (less its pool pre-ping);
- `/nojwt/api/v1/orders/{id}` — steps 2-5 only: the caller's id comes from the
  `X-User-Id` header, so the difference to the first route is the JWT's cost.

The asyncpg pool is told not to run its reset query (`RESET ALL; UNLISTEN *; …`, one
more round trip) when a connection goes back: this app keeps no session state, and
orderdesk's SQLAlchemy pool sends nothing on return either.

Settings come from the environment: `ORDERDESK_DATABASE_URL` (a SQLAlchemy URL or
a plain `postgresql://` DSN), `ORDERDESK_SECRET_KEY` (required), `ORDERDESK_JWT_ISSUER`,
`ORDERDESK_JWT_AUDIENCE`, and `BENCH_RAW_POOL_SIZE` (default 20, the most
connections one orderdesk worker's pool opens: 20, no overflow).

Run: `.venv/bin/python bench/raw_app.py --port 8001 [--workers N]`.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg  # type: ignore[import-untyped]
import jwt
import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# The same verification options as orderdesk.core.security.TokenCodec.decode_access_token.
REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat", "nbf", "jti", "role", "typ", "ver"]
LEEWAY_SECONDS = 5

# The columns SQLAlchemy selects for session.get(User), session.get(Order) and the
# lines query in orderdesk.orders.repository.lines_for.
USER_SQL = (
    "SELECT id, created_at, updated_at, created_by, updated_by, version, deleted_at, email,"
    " full_name, password_hash, role, is_active, email_verified_at, token_version"
    " FROM users WHERE id = $1"
)
ORDER_SQL = (
    "SELECT id, created_at, updated_at, created_by, updated_by, version, user_id, status,"
    " currency, total_amount FROM orders WHERE id = $1"
)
LINES_SQL = (
    "SELECT id, order_id, position, product_id, sku, name, unit_price_amount, quantity,"
    " line_total_amount FROM order_lines WHERE order_id = ANY($1::uuid[])"
    " ORDER BY order_id, position"
)
_ROUTE = re.compile(r"^(?P<prefix>/tx|/nojwt)?/api/v1/orders/(?P<id>[0-9a-fA-F-]{32,36})$")
JSON_HEADERS = [(b"content-type", b"application/json")]
_NOT_FOUND = orjson.dumps({"status": 404, "code": "not_found"})
_UNAUTHORIZED = orjson.dumps({"status": 401, "code": "invalid_token"})


def _dsn(url: str) -> str:
    """`postgresql+asyncpg://…` (orderdesk's setting) as a DSN asyncpg accepts."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def _iso(value: datetime) -> str:
    # Pydantic's rendering of an aware UTC datetime, so both bodies match.
    return value.isoformat().replace("+00:00", "Z")


def _money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


def render_order(order: Any, lines: list[Any]) -> bytes:
    currency = order["currency"]
    return orjson.dumps(
        {
            "id": str(order["id"]),
            "status": order["status"],
            "lines": [
                {
                    "product_id": str(line["product_id"]),
                    "sku": line["sku"],
                    "name": line["name"],
                    "unit_price": _money(line["unit_price_amount"], currency),
                    "quantity": line["quantity"],
                    "line_total": _money(line["line_total_amount"], currency),
                }
                for line in lines
            ],
            "total": _money(order["total_amount"], currency),
            "user_id": str(order["user_id"]),
            "version": order["version"],
            "created_at": _iso(order["created_at"]),
            "updated_at": _iso(order["updated_at"]),
        }
    )


class RawApp:
    def __init__(self) -> None:
        self.dsn = _dsn(os.environ["ORDERDESK_DATABASE_URL"])
        self.secret = os.environ["ORDERDESK_SECRET_KEY"]  # required: no key in the source
        self.issuer = os.environ.get("ORDERDESK_JWT_ISSUER", "orderdesk")
        self.audience = os.environ.get("ORDERDESK_JWT_AUDIENCE", "orderdesk-api")
        self.pool_size = int(os.environ.get("BENCH_RAW_POOL_SIZE", "20"))
        self.pool: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            status, body = await self._handle(scope)
            await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS})
            await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self.pool_size)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _handle(self, scope: Scope) -> tuple[int, bytes]:
        match = _ROUTE.match(scope["path"])
        if scope["method"] != "GET" or match is None:
            return 404, _NOT_FOUND
        prefix = match["prefix"]
        try:
            order_id = UUID(match["id"])
            if prefix == "/nojwt":
                user_id, token_version = UUID(_header(scope, b"x-user-id")), None
            else:
                user_id, token_version = self._verify(_header(scope, b"authorization"))
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            return 401, _UNAUTHORIZED
        async with self.pool.acquire() as connection:
            if prefix == "/tx":
                async with connection.transaction():
                    return await _read(connection, user_id, token_version, order_id)
            return await _read(connection, user_id, token_version, order_id)

    def _verify(self, authorization: str) -> tuple[UUID, int]:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ValueError("no bearer token")
        claims = jwt.decode(
            token,
            self.secret,
            algorithms=["HS256"],
            audience=self.audience,
            issuer=self.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS, "verify_signature": True},
        )
        if claims["typ"] != "access":
            raise ValueError("not an access token")
        return UUID(claims["sub"]), int(claims["ver"])


async def _read(
    connection: Any, user_id: UUID, token_version: int | None, order_id: UUID
) -> tuple[int, bytes]:
    user = await connection.fetchrow(USER_SQL, user_id)
    if (
        user is None
        or not user["is_active"]
        or user["deleted_at"] is not None
        or (token_version is not None and user["token_version"] != token_version)
    ):
        return 401, _UNAUTHORIZED
    order = await connection.fetchrow(ORDER_SQL, order_id)
    if order is None or (order["user_id"] != user_id and user["role"] == "customer"):
        return 404, _NOT_FOUND
    lines = await connection.fetch(LINES_SQL, [order_id])
    return 200, render_order(order, lines)


async def _keep_session(connection: Any) -> None:
    """Passed as the pool's `reset`: replaces the default reset query with nothing
    (an open transaction is still rolled back by asyncpg)."""


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    raise KeyError(name.decode())


def create_app() -> RawApp:
    return RawApp()


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    # The same uvicorn settings as `orderdesk serve` (orderdesk/cli.py).
    uvicorn.run(
        "raw_app:create_app",
        factory=True,
        app_dir=str(Path(__file__).resolve().parent),
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        access_log=False,
        log_config=None,
        server_header=False,
    )


if __name__ == "__main__":
    main()
