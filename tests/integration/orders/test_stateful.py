"""A Hypothesis state machine driving the real order and catalog services on a real
database: whatever sequence of placing, cancelling, paying, fulfilling and expiring
happens, stock is conserved and never negative.

Hypothesis runs state machines synchronously, so every step's coroutine is handed to
one event loop that lives in a helper thread for the whole run, together with the one
engine (connection pool) created on it. Each example gets products of its own, so
examples never see each other's stock.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlmodel import col, func, select

from orderdesk.auth import service as auth_service
from orderdesk.auth.permissions import Role
from orderdesk.bootstrap import build_container
from orderdesk.catalog import service as catalog_service
from orderdesk.catalog.models import Product
from orderdesk.catalog.schemas import ProductCreate
from orderdesk.container import Container
from orderdesk.core.money import Money
from orderdesk.core.uow import unit_of_work
from orderdesk.orders import service as order_service
from orderdesk.orders.errors import IllegalTransition, InsufficientStock, OrderNotFound
from orderdesk.orders.models import HOLDS_STOCK, Order, OrderLine, OrderStatus
from orderdesk.orders.schemas import OrderCreate, OrderLineCreate
from orderdesk.users.models import User
from orderdesk.users.schemas import UserCreate
from tests.factories import STRONG_PASSWORD, unique_email
from tests.helpers import DatabaseFactory, make_settings

T = TypeVar("T")
STEP_TIMEOUT_SECONDS = 30.0
MAX_AGE = timedelta(hours=1)
MACHINE_SETTINGS = settings(
    max_examples=15,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class LoopThread:
    """One event loop in a helper thread; `run` blocks the caller until a coroutine
    finishes on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout=STEP_TIMEOUT_SECONDS)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=STEP_TIMEOUT_SECONDS)
        self.loop.close()


@dataclass
class World:
    """What every example shares: the loop, the container and some accounts."""

    runner: LoopThread
    container: Container
    customers: list[User]
    staff: User

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coroutine)


@dataclass
class ModelOrder:
    owner: User
    quantities: dict[UUID, int]
    status: OrderStatus = OrderStatus.PENDING_PAYMENT


@dataclass
class Model:
    initial: dict[UUID, int] = field(default_factory=dict)
    stock: dict[UUID, int] = field(default_factory=dict)
    orders: dict[UUID, ModelOrder] = field(default_factory=dict)

    def with_status(self, *statuses: OrderStatus) -> list[UUID]:
        return sorted(oid for oid, order in self.orders.items() if order.status in statuses)


async def _account(container: Container, role: Role) -> User:
    data = UserCreate(email=unique_email(role.value), password=STRONG_PASSWORD, full_name="M")
    async with unit_of_work(container.database) as uow:
        return await auth_service.register(uow, container, data=data, role=role)


async def _build_world(database_url: str, runner: LoopThread) -> World:
    container = build_container(make_settings(database_url))
    customers = [await _account(container, Role.CUSTOMER) for _ in range(2)]
    staff = await _account(container, Role.STAFF)
    return World(runner=runner, container=container, customers=customers, staff=staff)


@pytest.fixture(scope="module")
async def stateful_database_url(backend: str, database_factory: DatabaseFactory) -> str:
    return await database_factory.create_migrated(backend)


@pytest.fixture(scope="module")
def world(stateful_database_url: str) -> Iterator[World]:
    runner = LoopThread()
    try:
        built = runner.run(_build_world(stateful_database_url, runner))
        try:
            yield built
        finally:
            runner.run(built.container.close())
    finally:
        runner.close()


class OrderMachine(RuleBasedStateMachine):
    world: World

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()

    # --- the database side of each step ---------------------------------------------

    async def _create_products(self, stocks: list[int]) -> list[UUID]:
        ids = []
        async with unit_of_work(self.world.container.database) as uow:
            for stock in stocks:
                product = await catalog_service.create_product(
                    uow,
                    data=ProductCreate(
                        sku=f"SM-{uuid.uuid4().hex[:16]}",
                        name="Stateful product",
                        price=Money(amount=250, currency="EUR"),
                        stock=stock,
                    ),
                )
                ids.append(product.id)
        return ids

    async def _place(self, customer: User, quantities: dict[UUID, int]) -> UUID:
        data = OrderCreate(
            lines=[OrderLineCreate(product_id=pid, quantity=q) for pid, q in quantities.items()]
        )
        async with unit_of_work(self.world.container.database) as uow:
            order = await order_service.place_order(uow, customer=customer, data=data)
        return order.id

    async def _cancel(self, order_id: UUID, actor: User) -> OrderStatus:
        async with unit_of_work(self.world.container.database) as uow:
            order = await order_service.cancel_order(uow, order_id=order_id, actor=actor)
        return order.status

    async def _fulfill(self, order_id: UUID) -> OrderStatus:
        async with unit_of_work(self.world.container.database) as uow:
            order = await order_service.fulfill_order(uow, order_id=order_id)
        return order.status

    async def _mark_paid(self, order_id: UUID) -> None:
        # Stand-in for the payment flow, which has no service yet: the same guarded,
        # version-bumping update a payment would make.
        async with self.world.container.database.sessions() as session:
            result = await session.exec(
                sa.update(Order)
                .where(
                    col(Order.id) == order_id,
                    col(Order.status) == OrderStatus.PENDING_PAYMENT,
                )
                .values(status=OrderStatus.PAID, version=col(Order.version) + 1)
            )
            assert result.rowcount == 1
            await session.commit()

    async def _age_and_expire(self, order_ids: list[UUID]) -> int:
        async with unit_of_work(self.world.container.database) as uow:
            # Sweep anything an earlier (failed, shrunk) example may have left old.
            await order_service.expire_unpaid_orders(uow, max_age=MAX_AGE)
        async with self.world.container.database.sessions() as session:
            if order_ids:
                await session.exec(
                    sa.update(Order)
                    .where(col(Order.id).in_(order_ids))
                    .values(created_at=datetime.now(UTC) - 2 * MAX_AGE)
                )
            await session.commit()
        async with unit_of_work(self.world.container.database) as uow:
            return await order_service.expire_unpaid_orders(uow, max_age=MAX_AGE)

    async def _snapshot(self) -> tuple[dict[UUID, int], dict[UUID, int], dict[UUID, OrderStatus]]:
        products = list(self.model.initial)
        async with self.world.container.database.sessions() as session:
            stock_rows = await session.exec(
                select(Product.id, Product.stock).where(col(Product.id).in_(products))
            )
            stock = {pid: int(units) for pid, units in stock_rows.all()}
            held_rows = await session.exec(
                select(OrderLine.product_id, func.sum(OrderLine.quantity))
                .join(Order, col(Order.id) == col(OrderLine.order_id))
                .where(
                    col(Order.status).in_(list(HOLDS_STOCK)),
                    col(OrderLine.product_id).in_(products),
                )
                .group_by(col(OrderLine.product_id))
            )
            held = {pid: int(units) for pid, units in held_rows.all()}
            status_rows = await session.exec(
                select(Order.id, Order.status).where(col(Order.id).in_(list(self.model.orders)))
            )
            statuses = {oid: OrderStatus(status) for oid, status in status_rows.all()}
        return stock, held, statuses

    # --- rules ----------------------------------------------------------------------

    @initialize(stocks=st.lists(st.integers(min_value=0, max_value=8), min_size=2, max_size=4))
    def create_products(self, stocks: list[int]) -> None:
        ids = self.world.run(self._create_products(stocks))
        self.model.initial = dict(zip(ids, stocks, strict=True))
        self.model.stock = dict(self.model.initial)

    @rule(data=st.data())
    def place_order(self, data: st.DataObject) -> None:
        products = data.draw(
            st.lists(st.sampled_from(sorted(self.model.initial)), min_size=1, unique=True),
            label="products",
        )
        quantities = {
            pid: data.draw(st.integers(min_value=1, max_value=4), label="quantity")
            for pid in products
        }
        owner = data.draw(st.sampled_from(self.world.customers), label="customer")
        short = {pid for pid, q in quantities.items() if self.model.stock[pid] < q}
        if short:
            with pytest.raises(InsufficientStock) as refused:
                self.world.run(self._place(owner, quantities))
            assert {UUID(s["product_id"]) for s in refused.value.shortages} == short
            return
        order_id = self.world.run(self._place(owner, quantities))
        for pid, q in quantities.items():
            self.model.stock[pid] -= q
        self.model.orders[order_id] = ModelOrder(owner=owner, quantities=quantities)

    @precondition(lambda self: bool(self.model.orders))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.model.orders)), label="order")
        order = self.model.orders[order_id]
        actor = data.draw(
            st.sampled_from([order.owner, self.world.staff, *self.world.customers]),
            label="actor",
        )
        if actor.id != order.owner.id and actor.role is Role.CUSTOMER:
            with pytest.raises(OrderNotFound):
                self.world.run(self._cancel(order_id, actor))
            return
        if order.status is not OrderStatus.PENDING_PAYMENT:
            with pytest.raises(IllegalTransition):
                self.world.run(self._cancel(order_id, actor))
            return
        assert self.world.run(self._cancel(order_id, actor)) is OrderStatus.CANCELLED
        order.status = OrderStatus.CANCELLED
        for pid, q in order.quantities.items():
            self.model.stock[pid] += q

    @precondition(lambda self: bool(self.model.with_status(OrderStatus.PENDING_PAYMENT)))
    @rule(data=st.data())
    def mark_paid(self, data: st.DataObject) -> None:
        pending = self.model.with_status(OrderStatus.PENDING_PAYMENT)
        order_id = data.draw(st.sampled_from(pending), label="order")
        self.world.run(self._mark_paid(order_id))
        self.model.orders[order_id].status = OrderStatus.PAID

    @precondition(lambda self: bool(self.model.orders))
    @rule(data=st.data())
    def fulfill(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.model.orders)), label="order")
        order = self.model.orders[order_id]
        if order.status is not OrderStatus.PAID:
            with pytest.raises(IllegalTransition):
                self.world.run(self._fulfill(order_id))
            return
        assert self.world.run(self._fulfill(order_id)) is OrderStatus.FULFILLED
        order.status = OrderStatus.FULFILLED

    @rule(data=st.data())
    def expire(self, data: st.DataObject) -> None:
        aged = data.draw(
            st.lists(st.sampled_from(sorted(self.model.orders)), unique=True)
            if self.model.orders
            else st.just([]),
            label="aged orders",
        )
        due = [oid for oid in aged if self.model.orders[oid].status is OrderStatus.PENDING_PAYMENT]

        expired = self.world.run(self._age_and_expire(aged))

        assert expired == len(due)
        for order_id in due:
            order = self.model.orders[order_id]
            order.status = OrderStatus.CANCELLED
            for pid, q in order.quantities.items():
                self.model.stock[pid] += q

    # --- invariants -------------------------------------------------------------------

    @invariant()
    def stock_is_conserved_and_never_negative(self) -> None:
        if not self.model.initial:
            return
        stock, held, statuses = self.world.run(self._snapshot())
        for pid, initial in self.model.initial.items():
            assert stock[pid] >= 0, f"negative stock for {pid}"
            assert stock[pid] + held.get(pid, 0) == initial, (pid, stock[pid], held.get(pid))
        assert stock == self.model.stock
        assert statuses == {oid: order.status for oid, order in self.model.orders.items()}


# Passing runs take seconds. A failing one spends up to Hypothesis's five-minute cap
# shrinking it, and the default test timeout would cut that short mid-step (and turn
# the report into a confusing "flaky" one).
@pytest.mark.timeout(420)
def test_stock_is_conserved_whatever_happens_to_orders(world: World) -> None:
    machine = type("BoundOrderMachine", (OrderMachine,), {"world": world})
    run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)
