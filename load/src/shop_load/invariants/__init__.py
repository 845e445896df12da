"""The drill's invariants: what must hold after any fault (`ledger` fetches what it needs and judges, `checks` are the
pure checks)."""

from shop_load.invariants.ledger import Ledger, verify

__all__ = ["Ledger", "verify"]
