from orderdesk.core.errors import Conflict, DomainError, InvalidInput


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was used with a different request"

    def __init__(self) -> None:
        super().__init__(self.title, field=["Idempotency-Key"])


class IdempotencyKeyInFlight(Conflict):
    code = "idempotency_key_in_flight"
    title = "A request with this Idempotency-Key is still being processed; retry later"


class IdempotencyKeyMissing(DomainError):
    status = 400
    code = "idempotency_key_required"
    title = "This request needs an Idempotency-Key header"
