"""Public ids are UUIDv7: unique without coordination and ordered by creation time,
which keeps B-tree inserts local and lets keyset pagination sort by id alone."""

from uuid import UUID

from uuid_utils.compat import uuid7


def new_id() -> UUID:
    return uuid7()
