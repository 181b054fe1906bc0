from __future__ import annotations

from tests.servers import receiver  # noqa: F401 - the loopback webhook receiver fixture
