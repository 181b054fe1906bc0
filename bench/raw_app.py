"""The baseline: the authenticated order read with no framework at all.

A plain ASGI callable on an asyncpg pool, served by uvicorn with the settings
`orderdesk serve` uses (uvloop, httptools, no access log, no server header). Per
request it computes the answer orderdesk gives for `GET /api/v1/orders/{id}`, in the
fewest steps that still do the same checks:

1. verify the bearer JWT with PyJWT: same key, algorithm, issuer, audience, leeway
   and required claims as orderdesk's `TokenCodec` (`core/security.py`), on every
   request (orderdesk keeps verified tokens; "no jwt" below is that ceiling);
2. acquire one connection from the pool and send ONE statement (a prepared
   statement, which asyncpg caches per connection): the caller's row, only if it is
   active, not deleted and its token version is the token's, joined with the order
   and its lines (one row per line);
3. no row: 401 (the caller may not act); no order, or someone else's order for a
   customer: 404, as orderdesk does;
4. serialise the same JSON as `OrderPublic` with orjson, with a Content-Length
   (as Starlette sends; without it uvicorn would chunk the body).

Routes (GET only; anything else is a 404):

- `/api/v1/orders/{id}` — steps 1-4, the statement in autocommit: "raw read (jwt)",
  the baseline;
- `/two/api/v1/orders/{id}` — the same with two statements on the same connection
  (the caller's row, then the order joined with its lines), as orderdesk splits it;
- `/tx/api/v1/orders/{id}` — the baseline inside BEGIN ... COMMIT: what a read
  transaction costs;
- `/nojwt/api/v1/orders/{id}` — steps 2-4 only: the caller's id and token version
  come from the `X-User-Id` and `X-Token-Version` headers, so the difference to the
  first route is the JWT's cost.

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
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
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

# The same verification options as orderdesk's TokenCodec.decode_access_token.
REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat", "nbf", "jti", "role", "typ", "ver"]
LEEWAY_SECONDS = 5
# Roles that may read every order (orderdesk's Permission.ORDERS_READ_ALL).
READ_ALL_ROLES = frozenset({"staff", "admin"})

# Everything the read needs in one round trip and one snapshot. The caller's
# conditions are in the WHERE clause (no row: 401); the order is LEFT JOINed, so a
# missing order still returns the caller's row with NULL order columns (404), and an
# order without lines one row with NULL line columns.
READ_SQL = (
    "SELECT u.role, o.id, o.status, o.user_id, o.currency, o.total_amount, o.version,"
    " o.created_at, o.updated_at, l.product_id, l.sku, l.name, l.unit_price_amount,"
    " l.quantity, l.line_total_amount"
    " FROM users AS u"
    " LEFT JOIN orders AS o ON o.id = $2"
    " LEFT JOIN order_lines AS l ON l.order_id = o.id"
    " WHERE u.id = $1 AND u.is_active AND u.deleted_at IS NULL AND u.token_version = $3"
    " ORDER BY l.position"
)
# The two-statement variant: orderdesk's split (principal, then order with lines).
PRINCIPAL_SQL = (
    "SELECT role FROM users"
    " WHERE id = $1 AND is_active AND deleted_at IS NULL AND token_version = $2"
)
ORDER_SQL = (
    "SELECT o.id, o.status, o.user_id, o.currency, o.total_amount, o.version,"
    " o.created_at, o.updated_at, l.product_id, l.sku, l.name, l.unit_price_amount,"
    " l.quantity, l.line_total_amount"
    " FROM orders AS o LEFT JOIN order_lines AS l ON l.order_id = o.id"
    " WHERE o.id = $1 ORDER BY l.position"
)
_ROUTE = re.compile(r"^(?P<prefix>/tx|/two|/nojwt)?/api/v1/orders/(?P<id>[0-9a-fA-F-]{32,36})$")
_NOT_FOUND = orjson.dumps({"status": 404, "code": "not_found"})
_UNAUTHORIZED = orjson.dumps({"status": 401, "code": "invalid_token"})


def _dsn(url: str) -> str:
    """`postgresql+asyncpg://…` (orderdesk's setting) as a DSN asyncpg accepts."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def _iso(value: datetime) -> str:
    # Pydantic's rendering of an aware UTC datetime, so both bodies match.
    return value.isoformat().replace("+00:00", "Z")


def render_order(rows: Sequence[Any]) -> bytes:
    """The order's columns from the first row, a line from each row that has one."""
    order = rows[0]
    currency = order["currency"]
    return orjson.dumps(
        {
            "id": str(order["id"]),
            "status": order["status"],
            "lines": [
                {
                    "product_id": str(row["product_id"]),
                    "sku": row["sku"],
                    "name": row["name"],
                    "unit_price": {"amount": row["unit_price_amount"], "currency": currency},
                    "quantity": row["quantity"],
                    "line_total": {"amount": row["line_total_amount"], "currency": currency},
                }
                for row in rows
                if row["product_id"] is not None
            ],
            "total": {"amount": order["total_amount"], "currency": currency},
            "user_id": str(order["user_id"]),
            "version": order["version"],
            "created_at": _iso(order["created_at"]),
            "updated_at": _iso(order["updated_at"]),
        }
    )


def _answer(role: str, user_id: UUID, rows: Sequence[Any]) -> tuple[int, bytes]:
    """404 for a missing order and for someone else's, unless the role reads all."""
    if rows[0]["id"] is None or (rows[0]["user_id"] != user_id and role not in READ_ALL_ROLES):
        return 404, _NOT_FOUND
    return 200, render_order(rows)


async def read_one_statement(
    connection: Any, user_id: UUID, token_version: int, order_id: UUID
) -> tuple[int, bytes]:
    rows = await connection.fetch(READ_SQL, user_id, order_id, token_version)
    if not rows:
        return 401, _UNAUTHORIZED
    return _answer(rows[0]["role"], user_id, rows)


async def read_two_statements(
    connection: Any, user_id: UUID, token_version: int, order_id: UUID
) -> tuple[int, bytes]:
    role = await connection.fetchval(PRINCIPAL_SQL, user_id, token_version)
    if role is None:
        return 401, _UNAUTHORIZED
    rows = await connection.fetch(ORDER_SQL, order_id)
    if not rows:
        return 404, _NOT_FOUND
    return _answer(role, user_id, rows)


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
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.pool = await asyncpg.create_pool(
                    self.dsn, min_size=1, max_size=self.pool_size, reset=_keep_session
                )
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
                user_id = UUID(_header(scope, b"x-user-id"))
                token_version = int(_header(scope, b"x-token-version"))
            else:
                user_id, token_version = self._verify(_header(scope, b"authorization"))
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            return 401, _UNAUTHORIZED
        async with self.pool.acquire() as connection:
            if prefix == "/two":
                return await read_two_statements(connection, user_id, token_version, order_id)
            if prefix == "/tx":
                async with connection.transaction():
                    return await read_one_statement(connection, user_id, token_version, order_id)
            return await read_one_statement(connection, user_id, token_version, order_id)

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
