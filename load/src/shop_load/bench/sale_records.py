"""What the sale is played against (`SaleShop`, `Shopper`) and what one burst measured (`BurstResult`);
`shop_load.bench.sale` plays it.
"""

from dataclasses import asdict, dataclass, field
from typing import Any

from shop_load.bench.sale_readiness import ProbeCount
from shop_load.core.customers import Customer
from shop_load.core.ops import Operator
from shop_load.core.records import InvariantResult
from shop_load.generators import wrk


@dataclass
class SaleShop:
    storefront: str
    payment: str
    catalog: str
    payment_database_url: str
    operator: Operator | None = None
    """The operator at the storefront's `/ops/`, where the stock invariant reads the inventory; None: no checks."""


@dataclass
class Shopper:
    customer: Customer
    user_id: str


@dataclass
class BurstResult:
    connections: int
    seconds: float
    cold_start_seconds: float | None
    """From the services' start to all of them ready; None: the shop was already running (not a cold start)."""
    browse_rate: float
    honour_retry_after: bool
    """After a 503 with Retry-After, a connection waited that long (at most 5 s) before its next checkout."""
    checkout: wrk.WrkResult
    browse: wrk.WrkResult | None
    captured: int
    """payment's captured payments during the burst (to the end of wrk's run)."""
    captured_after: int
    """... and until the shop had answered everything."""
    checkout_statuses: dict[int, int]
    browse_statuses: dict[int, int]
    payment_statuses: dict[int, int]
    readiness: dict[str, ProbeCount]
    payments: dict[str, int] = field(default_factory=dict)
    """This burst's payments in the database, by status, after the invariants finished every pending one."""
    invariants: list[InvariantResult] = field(default_factory=list)

    @property
    def captured_per_second(self) -> float:
        return self.captured / self.checkout.seconds if self.checkout.seconds else 0.0

    @property
    def server_errors_but_503(self) -> dict[int, int]:
        return {s: n for s, n in self.checkout_statuses.items() if s >= 500 and s != 503}

    def as_json(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "seconds": self.seconds,
            "cold_start_seconds": self.cold_start_seconds,
            "browse_rate": self.browse_rate,
            "honour_retry_after": self.honour_retry_after,
            "captured": self.captured,
            "captured_per_second": self.captured_per_second,
            "captured_after": self.captured_after,
            "checkout_statuses": {str(s): n for s, n in self.checkout_statuses.items()},
            "browse_statuses": {str(s): n for s, n in self.browse_statuses.items()},
            "payment_statuses": {str(s): n for s, n in self.payment_statuses.items()},
            "statuses_from": "storefront's and payment's own /metrics (http_requests_total)",
            "checkout": self.checkout.as_json(),
            "browse": self.browse.as_json() if self.browse else None,
            "readiness": {name: {**vars(count), "flips": count.flips} for name, count in self.readiness.items()},
            "payments": self.payments,
            "invariants": [asdict(result) for result in self.invariants],
        }
