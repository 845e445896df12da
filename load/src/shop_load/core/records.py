"""The raw records a run collects and its report is built from: the marks of what happened to the pods, every
request and checkout of the customers, the servers' counter and ReplicaSet samples, and each invariant's result.
Every time is in seconds since the run started.
"""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Mark:
    t: float
    kind: str
    pod: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RequestRecord:
    t: float
    """When it was sent."""
    endpoint: str
    status: int | None
    """None: no answer (connection error or timeout)."""
    latency_ms: float
    ok: bool
    """An answer the shop should give: 2xx, a declined card (402) or insufficient stock (409)."""
    error: str | None = None


FINAL_OUTCOMES = frozenset({"captured", "declined", "out_of_stock"})
"""A checkout's outcomes that are the shop's final answer (the others: failed, rejected, pending)."""


@dataclass(slots=True)
class Checkout:
    """One customer's payment attempt under one Idempotency-Key, however many requests it took."""

    key: str
    customer: int
    body: dict[str, Any]
    t: float
    outcome: str = "pending"
    """captured, declined, out_of_stock (final answers), failed (gave up), rejected (refused request)."""
    status: int | None = None
    payment_id: str | None = None
    attempts: int = 0
    finished: float | None = None
    """When the customer got the final answer or gave up."""


@dataclass(frozen=True, slots=True)
class CounterSample:
    """A server's request counts by status, cumulative since the first sample."""

    t: float
    counts: dict[int, float]


@dataclass(frozen=True, slots=True)
class ReplicaSetSample:
    t: float
    name: str
    desired: int
    ready: int
    available: int


@dataclass(frozen=True, slots=True)
class InvariantResult:
    name: str
    description: str
    ok: bool
    detail: str
    problems: list[str] = field(default_factory=list)
