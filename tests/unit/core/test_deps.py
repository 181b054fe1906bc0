"""The request dependencies shared by every domain."""

from __future__ import annotations

from typing import get_args

from fastapi import params

from orderdesk.container import ContainerDep
from orderdesk.core.deps import AdaptersDep


def _dependency(annotation: object) -> object:
    marker = get_args(annotation)[1]
    assert isinstance(marker, params.Depends)
    return marker.dependency


def test_the_container_and_the_core_adapters_are_one_dependency() -> None:
    # FastAPI caches a dependency per callable within a request: one callable means
    # one resolution, whether a route asks for the container or the core's view of it.
    assert _dependency(ContainerDep) is _dependency(AdaptersDep)
