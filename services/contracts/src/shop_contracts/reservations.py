"""A stock reservation's states, as catalog keeps them and payment reads them from its answers."""

import enum


class ReservationStatus(enum.StrEnum):
    HELD = "held"
    """Its units are taken out of stock, waiting for the payment's outcome (or the reservation's expiry)."""
    COMMITTED = "committed"
    """Sold: the only state in which payment captures the charge."""
    RELEASED = "released"
    EXPIRED = "expired"
