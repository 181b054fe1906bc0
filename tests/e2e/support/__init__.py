"""Helpers for the end-to-end background tests: real processes, an HTTP driver,
mail tallies and a look at the outbox."""
