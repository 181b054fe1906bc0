from __future__ import annotations

import pytest

from orderdesk.outbox.wiring import HandlerTable
from tests.fakes import InstallHandlers
from tests.integration.outbox.probes import PROBE_HANDLERS


@pytest.fixture
def probes(handler_table: InstallHandlers) -> HandlerTable:
    """The test events of `probes.py` and their handlers, instead of the production
    table, for one test."""
    return handler_table(PROBE_HANDLERS)
