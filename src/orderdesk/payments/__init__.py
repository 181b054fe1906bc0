"""Payments: the gateway port (`gateway.py`), its Stripe adapter
(`stripe_gateway.py`), webhook signatures (`signatures.py`) and the circuit breaker
that keeps new payments from queueing behind a gateway that is down (`breaker.py`)."""
