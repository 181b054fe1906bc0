"""orderdesk: an order-processing backend."""

__version__ = "0.1.0"
